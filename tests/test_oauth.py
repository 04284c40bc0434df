"""Sign-in through real OAuth 2 / OpenID Connect providers served over HTTP on 127.0.0.1.

The hub runs as a real HTTP server; a `requests` session plays the browser, following the
redirects to the provider's sign-in form and back.
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests
from sqlalchemy import func, select, update

from chaoshub import create_app
from chaoshub.auth.models import Account, Identity, SignInSession
from chaoshub.core.db import transaction
from chaoshub.core.models import utcnow
from tests.conftest import PASSWORD
from tests.providers import OAuthStandIn, OIDCProvider, ServedApp, complete_sign_in


@pytest.fixture(scope="module")
def corp():
    with OIDCProvider(client_id="hub-corp") as provider:
        yield provider


@pytest.fixture(scope="module")
def github():
    with OAuthStandIn("github") as provider:
        yield provider


@pytest.fixture
def hub_factory(settings, monkeypatch, corp, github):
    """Serve a hub configured with the given providers; registers its callbacks with them."""
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")  # the test providers speak plain HTTP
    served = []

    def serve(*providers, **extra):
        config = dict(settings)
        for provider in providers:
            config.update(provider.hub_settings())
        config.update(extra)
        app = create_app(config)
        server = ServedApp(app)
        for provider in providers:
            name = "github" if provider is github else getattr(provider, "kind", "corp")
            provider.redirect_uris.append(f"{server.url}/auth/callback/{name}")
        served.append(server)
        return app, server.url

    yield serve
    for server in served:
        server.stop()


def browser(hub: str) -> requests.Session:
    session = requests.Session()
    session.get(f"{hub}/signin")  # picks up the CSRF cookie, as a browser would
    return session


def accounts(app) -> int:
    with app.app_context(), transaction("auth") as session:
        return session.scalar(select(func.count()).select_from(Account))


def test_first_oidc_sign_in_creates_the_account_and_personal_org(hub_factory, corp):
    app, hub = hub_factory(corp)
    corp.add_user("u-1001", email="ada@corp.example", name="Ada Lovelace", email_verified=True,
                  preferred_username="ada", picture="https://corp.example/ada.png")
    session = browser(hub)
    page = session.get(f"{hub}/signin").text
    assert "Continue with Corp" in page

    answer = complete_sign_in(session, f"{hub}/auth/login/corp", "u-1001")
    assert answer.status_code == 303 and answer.headers["Location"] == "/"
    dashboard = session.get(f"{hub}/")
    assert "Hello, Ada Lovelace" in dashboard.text
    assert 'class="ws-name">Personal<' in dashboard.text
    me = session.get(f"{hub}/api/v1/me").json()
    assert me["username"] == "ada" and me["credential"] == "session"
    with app.app_context(), transaction("auth") as db:
        account = db.scalar(select(Account))
        assert (account.email, account.avatar_url) == ("ada@corp.example",
                                                        "https://corp.example/ada.png")
        assert account.password_hash is None
        identity = db.scalar(select(Identity))
        assert (identity.provider, identity.subject) == ("corp", "u-1001")

    # Signing in again finds the same account.
    again = browser(hub)
    assert complete_sign_in(again, f"{hub}/auth/login/corp", "u-1001").status_code == 303
    assert again.get(f"{hub}/api/v1/me").json()["id"] == me["id"]
    assert accounts(app) == 1


def test_a_taken_username_gets_a_suffix(hub_factory, corp):
    app, hub = hub_factory(corp)
    local = browser(hub)
    local.post(f"{hub}/signup", data={"username": "grace", "password": PASSWORD,
                                      "csrf_token": local.cookies["chaoshub_csrf"]})
    corp.add_user("u-2002", preferred_username="grace", email="grace@corp.example",
                  email_verified=True)
    session = browser(hub)
    assert complete_sign_in(session, f"{hub}/auth/login/corp", "u-2002").status_code == 303
    assert session.get(f"{hub}/api/v1/me").json()["username"].startswith("grace-")
    assert accounts(app) == 2


def test_a_forged_state_changes_nothing(hub_factory, corp):
    app, hub = hub_factory(corp)
    session = browser(hub)
    session.get(f"{hub}/auth/login/corp", allow_redirects=False)
    forged = session.get(f"{hub}/auth/callback/corp?code=abc&state=forged",
                         allow_redirects=False)
    assert forged.status_code == 400
    assert "did not complete" in forged.text
    assert "chaoshub_session" not in session.cookies
    assert accounts(app) == 0


def test_a_replayed_callback_is_refused(hub_factory, corp):
    app, hub = hub_factory(corp)
    session = browser(hub)
    start = session.get(f"{hub}/auth/login/corp", allow_redirects=False)
    from tests.providers import submit_sign_in

    to_hub = submit_sign_in(session, start.headers["Location"], "u-3003")
    callback = urljoin(to_hub.url, to_hub.headers["Location"])
    assert session.get(callback, allow_redirects=False).status_code == 303
    replay = requests.Session()
    replay.cookies.update(session.cookies)
    replay.cookies.pop("chaoshub_session")
    replayed = replay.get(callback, allow_redirects=False)
    assert replayed.status_code == 400
    assert accounts(app) == 1


def test_a_missing_code_and_a_provider_error_are_clear(hub_factory, corp):
    app, hub = hub_factory(corp)
    session = browser(hub)
    session.get(f"{hub}/auth/login/corp", allow_redirects=False)
    missing = session.get(f"{hub}/auth/callback/corp?state=x", allow_redirects=False)
    assert missing.status_code == 400 and "no authorization code" in missing.text

    corp.deny_next()
    denied = complete_sign_in(browser(hub), f"{hub}/auth/login/corp", "u-4004")
    assert denied.status_code == 400
    assert "cancelled" in denied.text and "did not allow" in denied.text
    assert accounts(app) == 0


def test_an_unreachable_provider_is_a_clear_503(hub_factory, settings):
    dead = OIDCProvider(client_id="gone")
    dead_settings = dead.hub_settings("gone")
    dead.stop()
    app, hub = hub_factory(**dead_settings)
    answer = browser(hub).get(f"{hub}/auth/login/gone", allow_redirects=False)
    assert answer.status_code == 503
    assert "cannot be reached" in answer.text


def test_unknown_providers_are_404(hub_factory, corp):
    _, hub = hub_factory(corp)
    assert requests.get(f"{hub}/auth/login/nope", allow_redirects=False).status_code == 404


def test_sign_in_never_redirects_off_site(hub_factory, corp):
    _, hub = hub_factory(corp)
    for target, expected in (("https://evil.example/", "/"), ("//evil.example", "/"),
                             ("/settings", "/settings")):
        session = browser(hub)
        answer = complete_sign_in(session, f"{hub}/auth/login/corp?next={target}", "u-5005")
        assert answer.headers["Location"] == expected


@pytest.mark.parametrize("target", ["/%09/evil.example", "/%0A/evil.example", "/%5Cevil.example",
                                    "/%252F/evil.example", "/%2F/evil.example"])
def test_open_redirect_through_a_provider_sign_in_lands_at_home(hub_factory, corp, target):
    # Werkzeug drops a tab from a Location: "/<tab>/evil" once became "//evil".
    _, hub = hub_factory(corp)
    answer = complete_sign_in(browser(hub), f"{hub}/auth/login/corp?next={target}", "u-5006")
    assert answer.status_code == 303 and answer.headers["Location"] == "/"


def test_providers_appear_only_when_configured(hub_factory, github):
    _, hub = hub_factory(github)
    answer = requests.get(f"{hub}/signin")
    assert "Continue with GitHub" in answer.text and "Continue with Corp" not in answer.text
    # Forms may lead to the provider (browsers check form-action on redirects too), nowhere else.
    policy = answer.headers["Content-Security-Policy"]
    assert f"form-action 'self' {github.base_url};" in policy
    _, bare = hub_factory()
    assert "Continue with" not in requests.get(f"{bare}/signin").text


def test_github_email_comes_from_the_emails_api_when_private(hub_factory, github):
    app, hub = hub_factory(github)
    github.add_user("octo", name="Octo Cat", email=None,
                    emails=[{"email": "octo@users.example", "primary": True, "verified": True}])
    session = browser(hub)
    assert complete_sign_in(session, f"{hub}/auth/login/github", "octo").status_code == 303
    with app.app_context(), transaction("auth") as db:
        account = db.scalar(select(Account))
        assert (account.username, account.display_name, account.email) == (
            "octo", "Octo Cat", "octo@users.example")


@pytest.mark.parametrize("kind", ["gitlab", "bitbucket"])
def test_gitlab_and_bitbucket_profiles(hub_factory, kind, settings, monkeypatch):
    with OAuthStandIn(kind) as provider:
        app, hub = hub_factory(provider)
        provider.add_user("dev1", name="Dev One", email="dev1@example.org")
        session = browser(hub)
        assert complete_sign_in(session, f"{hub}/auth/login/{kind}", "dev1").status_code == 303
        me = session.get(f"{hub}/api/v1/me").json()
        assert me["username"] == "dev1" and me["display_name"] == "Dev One"
        with app.app_context(), transaction("auth") as db:
            assert db.scalar(select(Account.email)) == "dev1@example.org"
            assert db.scalar(select(Identity.provider)) == kind


def test_google_is_an_openid_issuer(hub_factory):
    with OIDCProvider(client_id="google-client") as google:
        google.kind = "google"
        google.hub_settings = lambda name="google": OIDCProvider.hub_settings(google, "google")
        _, hub = hub_factory(google)
        google.add_user("g-1", email="g1@gmail.example", email_verified=True, name="Gee One")
        session = browser(hub)
        assert "Continue with Google" in session.get(f"{hub}/signin").text
        assert complete_sign_in(session, f"{hub}/auth/login/google", "g-1").status_code == 303
        assert session.get(f"{hub}/api/v1/me").json()["display_name"] == "Gee One"


def test_sign_up_restricted_to_email_domains(hub_factory, corp):
    app, hub = hub_factory(corp, SIGNUP_ALLOWED_DOMAINS="corp.example")
    corp.add_user("out-1", email="eve@other.example", email_verified=True)
    corp.add_user("unverified-1", email="mallory@corp.example", email_verified=False)
    corp.add_user("in-1", email="bob@corp.example", email_verified=True)
    for outsider in ("out-1", "unverified-1"):
        answer = complete_sign_in(browser(hub), f"{hub}/auth/login/corp", outsider)
        assert answer.status_code == 403 and "corp.example" in answer.text
    assert accounts(app) == 0
    assert complete_sign_in(browser(hub), f"{hub}/auth/login/corp", "in-1").status_code == 303
    assert accounts(app) == 1
    form = browser(hub)
    local = form.post(f"{hub}/signup", data={"username": "x1", "password": PASSWORD,
                                             "csrf_token": form.cookies["chaoshub_csrf"]})
    assert local.status_code == 403 and "sign-in provider" in local.text
    assert accounts(app) == 1


def test_link_a_second_identity_then_unlink_all_but_the_last(hub_factory, corp, github):
    app, hub = hub_factory(corp, github)
    corp.add_user("u-7007", email="lin@corp.example", email_verified=True,
                  preferred_username="lin")
    session = browser(hub)
    complete_sign_in(session, f"{hub}/auth/login/corp", "u-7007")

    start = session.post(f"{hub}/auth/link/github", allow_redirects=False,
                         data={"csrf_token": session.cookies["chaoshub_csrf"]})
    assert start.status_code == 302
    github.add_user("lin-gh", email="lin@github.example")
    from tests.providers import submit_sign_in

    to_hub = submit_sign_in(session, start.headers["Location"], "lin-gh")
    linked = session.get(urljoin(to_hub.url, to_hub.headers["Location"]), allow_redirects=False)
    assert linked.status_code == 303 and linked.headers["Location"] == "/settings?linked=github"
    settings_page = session.get(f"{hub}/settings").text
    assert "GitHub is now linked" not in settings_page  # only on the redirect target
    assert settings_page.count('data-testid="identity"') == 2

    # The GitHub identity now signs in to the same account.
    other = browser(hub)
    complete_sign_in(other, f"{hub}/auth/login/github", "lin-gh")
    assert other.get(f"{hub}/api/v1/me").json()["username"] == "lin"

    ids = _identity_ids(app)
    csrf = {"csrf_token": session.cookies["chaoshub_csrf"]}
    assert session.post(f"{hub}/settings/identities/{ids['github']}/unlink", data=csrf,
                        allow_redirects=False).status_code == 303
    last = session.post(f"{hub}/settings/identities/{ids['corp']}/unlink", data=csrf,
                        allow_redirects=False)
    assert last.status_code == 409 and "last way to sign in" in last.text
    assert set(_identity_ids(app)) == {"corp"}


def test_a_session_begun_long_ago_signs_in_again_before_linking(hub_factory, corp, github):
    app, hub = hub_factory(corp, github)
    session = browser(hub)
    complete_sign_in(session, f"{hub}/auth/login/corp", "u-8008")
    with app.app_context(), transaction("auth") as db:
        db.execute(update(SignInSession).values(created_at=utcnow() - timedelta(minutes=30)))
    refused = session.post(f"{hub}/auth/link/github", allow_redirects=False,
                           data={"csrf_token": session.cookies["chaoshub_csrf"]})
    # Told here, not after the trip to the provider; and never sent there.
    assert refused.status_code == 403 and "Location" not in refused.headers
    assert "recent sign-in" in refused.text and 'data-testid="sign-in-again"' in refused.text
    assert set(_identity_ids(app)) == {"corp"}


def test_an_identity_of_another_account_cannot_be_linked(hub_factory, corp):
    app, hub = hub_factory(corp)
    complete_sign_in(browser(hub), f"{hub}/auth/login/corp", "owner-1")
    session = browser(hub)
    session.post(f"{hub}/signup", data={"username": "second", "password": PASSWORD,
                                        "csrf_token": session.cookies["chaoshub_csrf"]})
    session.post(f"{hub}/signin", data={"username": "second", "password": PASSWORD,
                                        "csrf_token": session.cookies["chaoshub_csrf"]})
    start = session.post(f"{hub}/auth/link/corp", allow_redirects=False,
                         data={"csrf_token": session.cookies["chaoshub_csrf"]})
    from tests.providers import submit_sign_in

    to_hub = submit_sign_in(session, start.headers["Location"], "owner-1")
    answer = session.get(urljoin(to_hub.url, to_hub.headers["Location"]), allow_redirects=False)
    assert answer.status_code == 409 and "another account" in answer.text


def test_the_authorization_request_uses_state_pkce_and_nonce(hub_factory, corp):
    _, hub = hub_factory(corp)
    start = browser(hub).get(f"{hub}/auth/login/corp", allow_redirects=False)
    query = parse_qs(urlsplit(start.headers["Location"]).query)
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"][0]
    assert query["state"][0] and query["nonce"][0]
    assert query["redirect_uri"] == [f"{hub}/auth/callback/corp"]


def _identity_ids(app) -> dict[str, str]:
    with app.app_context(), transaction("auth") as db:
        return {i.provider: i.id for i in db.scalars(select(Identity))}


def test_a_provider_gone_during_the_token_exchange_is_a_clear_503(hub_factory, settings):
    from tests.providers import submit_sign_in

    provider = OIDCProvider(client_id="flaky")
    app, hub = hub_factory(provider)
    provider.redirect_uris.append(f"{hub}/auth/callback/corp")
    session = browser(hub)
    start = session.get(f"{hub}/auth/login/corp", allow_redirects=False)
    back = submit_sign_in(session, start.headers["Location"], "u-9009")
    provider.stop()
    answer = session.get(urljoin(back.url, back.headers["Location"]), allow_redirects=False)
    assert answer.status_code == 503 and "cannot be reached" in answer.text
    assert accounts(app) == 0
