"""The web UI in a real Chromium: sign up, land signed in on the dashboard, sign out."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD
from tests.helpers import running_hub

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def hub_url(tmp_path_factory):
    with running_hub(tmp_path_factory.mktemp("browser-hub")) as url:
        yield url


def test_sign_up_then_sign_in_lands_on_the_dashboard(page, hub_url, tmp_path):
    page.goto(f"{hub_url}/")
    assert page.url == f"{hub_url}/signin"
    page.get_by_role("link", name="Create an account").click()

    page.get_by_label("Username").fill("grace")
    page.get_by_label("Display name").fill("Grace Hopper")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()

    page.wait_for_url(f"{hub_url}/")  # signed in already: no second sign-in
    assert page.get_by_role("heading", level=1).inner_text() == "Hello, Grace Hopper"
    assert page.get_by_test_id("viewer").inner_text() == "Grace Hopper"
    org = page.get_by_test_id("org")
    assert org.get_by_role("heading").inner_text() == "grace"
    workspaces = page.get_by_test_id("workspace")
    assert workspaces.count() == 2
    assert "Personal" in workspaces.nth(0).inner_text()
    assert "private" in workspaces.nth(0).inner_text()
    assert "public" in workspaces.nth(1).inner_text()
    page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{hub_url}/signin")
    page.goto(f"{hub_url}/")
    assert page.url == f"{hub_url}/signin"


def test_sign_up_errors_are_shown_next_to_the_field(page, hub_url):
    page.goto(f"{hub_url}/signup")
    # Within the rules the form states (the browser checks those), but refused by the hub.
    page.get_by_label("Username").fill("newcomer")
    page.get_by_label("Password").fill("password123")
    page.get_by_role("button", name="Create account").click()
    page.wait_for_load_state()
    assert page.get_by_role("alert").is_visible()
    assert "too common" in page.locator(".field-error").first.inner_text()
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_load_state()
    assert "reserved" in page.locator(".field-error").first.inner_text()


def test_a_wrong_password_says_so_without_saying_which(page, hub_url):
    page.goto(f"{hub_url}/signin")
    page.get_by_label("Username").fill("nobody")
    page.get_by_label("Password").fill("definitely wrong password")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
    assert page.get_by_role("alert").inner_text() == "The username or the password is wrong"
