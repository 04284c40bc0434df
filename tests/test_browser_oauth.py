"""Sign-in through a provider in a real Chromium: the button, the provider's page, the dashboard,
linking a second identity, and signing out."""

from __future__ import annotations

import pytest

from chaoshub import create_app
from chaoshub.core import migrate
from tests.providers import OAuthStandIn, OIDCProvider, ServedApp

pytestmark = pytest.mark.e2e


@pytest.fixture
def hub(settings, monkeypatch):
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")  # the test providers speak plain HTTP
    with OIDCProvider(client_id="hub-e2e") as corp, OAuthStandIn("github") as github:
        app = create_app({**settings, **corp.hub_settings("corp", "Corp SSO"),
                          **github.hub_settings()})
        migrate.upgrade(app)
        server = ServedApp(app)
        corp.redirect_uris.append(f"{server.url}/auth/callback/corp")
        github.redirect_uris.append(f"{server.url}/auth/callback/github")
        github.add_user("ada-gh", name="Ada on GitHub", email="ada@github.example")
        try:
            yield server.url
        finally:
            server.stop()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_provider_sign_in_link_and_sign_out(page, hub, backend):
    page.goto(f"{hub}/")
    page.get_by_role("link", name="Continue with Corp SSO").click()

    # The provider's own sign-in page.
    page.get_by_label("Username (sub)").fill("ada-1815")
    page.get_by_label("Email").fill("ada@corp.example")
    page.get_by_label("Name", exact=True).fill("Ada Lovelace")
    page.get_by_role("button", name="Sign in").click()

    page.wait_for_url(f"{hub}/")
    assert page.get_by_role("heading", level=1).inner_text() == "Hello, Ada Lovelace"
    assert page.get_by_test_id("workspace").count() == 2

    page.get_by_role("link", name="Settings").click()
    page.wait_for_url(f"{hub}/settings")
    assert page.get_by_test_id("identity").count() == 1
    page.get_by_role("button", name="Link GitHub").click()
    page.get_by_label("Username").fill("ada-gh")
    page.get_by_role("button", name="Authorize").click()

    page.wait_for_url(f"{hub}/settings?linked=github")
    assert "GitHub is now linked" in page.get_by_test_id("settings-notice").inner_text()
    identities = page.get_by_test_id("identity")
    assert identities.count() == 2
    assert "ada@github.example" in identities.nth(1).inner_text()

    page.get_by_role("button", name="Sign out", exact=True).click()
    page.wait_for_url(f"{hub}/signin")
    page.goto(f"{hub}/settings")
    assert page.url == f"{hub}/signin?next=/settings"

    # The linked GitHub identity signs in to the same account.
    page.get_by_role("link", name="Continue with GitHub").click()
    page.get_by_label("Username").fill("ada-gh")
    page.get_by_role("button", name="Authorize").click()
    page.wait_for_url(f"{hub}/settings")
    assert page.get_by_test_id("viewer").inner_text() == "Ada Lovelace"
