"""Accounts' email addresses: set on the settings page or through the API, verified by a link
mailed to them (a real SMTP server receives it) and followed while signed in."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from chaoshub.auth import service as auth_service
from chaoshub.auth.models import EmailToken
from chaoshub.auth.schemas import ProviderProfile
from chaoshub.core.db import transaction
from chaoshub.core.models import utcnow
from tests.conftest import PASSWORD, csrf, post_json, sign_in, signed_up_client
from tests.mail_server import MAIL_FROM, bodies, link_in, mail_settings


@pytest.fixture
def app(settings, inbox):
    from chaoshub import create_app
    from chaoshub.core import db

    hub = create_app({**settings, **mail_settings(inbox.port)})
    yield hub
    db.dispose(hub)


def set_email(browser, address: str, current_password: str = PASSWORD):
    """Post the settings page's address form, with the account's current password."""
    return browser.post("/settings/email", data={"email": address, "csrf_token": csrf(browser),
                                                 "current_password": current_password})


def path_of(link: str) -> str:
    """The path of an absolute link, as the test client follows it."""
    return "/" + link.split("://", 1)[1].split("/", 1)[1]


def test_an_address_set_on_the_settings_page_is_verified_by_the_mailed_link(app, inbox):
    alice = signed_up_client(app, "alice")
    answer = set_email(alice, "Alice@Example.COM")
    assert answer.status_code == 303 and answer.headers["Location"] == "/settings?email=sent"
    page = alice.get("/settings?email=sent").get_data(as_text=True)
    assert "not verified" in page and "Alice@example.com" in page

    [message] = inbox.messages
    assert message["To"] == "Alice@example.com" and message["From"] == MAIL_FROM
    assert message["Subject"] == "Verify your email address for ChaosHub"
    assert message.get_content_type() == "multipart/alternative"
    text, html = bodies(message)
    assert "alice" in text and "24 hours" in text and "<a href=" in html
    link = link_in(message)
    assert link.startswith("http://localhost/settings/email/verify/chverify_")

    followed = alice.get(path_of(link))
    assert followed.status_code == 303
    assert followed.headers["Location"] == "/settings?email=verified"
    page = alice.get("/settings?email=verified").get_data(as_text=True)
    assert ">verified<" in page and "is verified" in page
    assert alice.get("/api/v1/me/email").get_json() == {
        "email": "Alice@example.com", "verified": True, "mail_enabled": True,
        "notifications": False}
    # The link works once.
    again = alice.get(path_of(link))
    assert again.status_code == 410 and "used already" in again.get_data(as_text=True)


def test_a_link_followed_signed_out_asks_to_sign_in_and_then_verifies(app, inbox):
    alice = signed_up_client(app, "alice")
    set_email(alice, "alice@example.com")
    path = path_of(link_in(inbox.messages[0]))
    browser = app.test_client()
    answer = browser.get(path)
    assert answer.status_code == 303 and answer.headers["Location"] == f"/signin?next={path}"
    signed = browser.post("/signin", data={"username": "alice", "password": PASSWORD,
                                           "next": path, "csrf_token": csrf(browser)})
    assert signed.headers["Location"] == path
    assert browser.get(path).headers["Location"] == "/settings?email=verified"
    assert alice.get("/api/v1/me/email").get_json()["verified"] is True


def test_another_account_cannot_verify_the_address(app, inbox):
    alice = signed_up_client(app, "alice")
    set_email(alice, "alice@example.com")
    path = path_of(link_in(inbox.messages[0]))
    mallory = signed_up_client(app, "mallory")
    answer = mallory.get(path)
    assert answer.status_code == 403 and "another account" in answer.get_data(as_text=True)
    assert alice.get("/api/v1/me/email").get_json()["verified"] is False
    assert mallory.get("/api/v1/me/email").get_json()["email"] is None
    # The refusal did not use the link up: alice still can.
    assert alice.get(path).headers["Location"] == "/settings?email=verified"


def test_changing_the_address_unverifies_it_and_old_links_stop_working(app, inbox):
    alice = signed_up_client(app, "alice")
    set_email(alice, "alice@example.com")
    alice.get(path_of(link_in(inbox.messages[0])))
    assert alice.get("/api/v1/me/email").get_json()["verified"] is True
    set_email(alice, "alice@example.org")
    assert alice.get("/api/v1/me/email").get_json() == {
        "email": "alice@example.org", "verified": False, "mail_enabled": True,
        "notifications": False}
    set_email(alice, "alice@example.net")
    # The verified address it replaced was told; the unverified one after it was not.
    notice, first_new, second_new = inbox.messages[1:]
    assert notice["To"] == "alice@example.com"
    assert notice["Subject"] == "Your ChaosHub email address was changed"
    assert first_new["To"] == "alice@example.org" and second_new["To"] == "alice@example.net"
    stale = alice.get(path_of(link_in(first_new)))
    assert stale.status_code == 410
    assert alice.get("/api/v1/me/email").get_json()["verified"] is False
    assert alice.get(path_of(link_in(second_new))).status_code == 303
    assert alice.get("/api/v1/me/email").get_json()["verified"] is True
    # Removing it leaves none.
    assert set_email(alice, "").headers["Location"] == "/settings?email=removed"
    assert alice.get("/api/v1/me/email").get_json()["email"] is None


def test_an_expired_link_is_refused_with_a_clear_page(app, inbox):
    alice = signed_up_client(app, "alice")
    set_email(alice, "alice@example.com")
    with app.app_context(), transaction("auth") as session:
        session.execute(update(EmailToken).values(expires_at=utcnow()))
    answer = alice.get(path_of(link_in(inbox.messages[0])))
    assert answer.status_code == 410
    assert "expired" in answer.get_data(as_text=True)
    assert alice.get("/api/v1/me/email").get_json()["verified"] is False


def test_the_api_sets_the_address_for_a_session_only_and_refuses_bad_ones(app, inbox):
    alice = signed_up_client(app, "alice")
    put = alice.put("/api/v1/me/email", json={"email": "alice@example.com",
                                              "current_password": PASSWORD},
                    headers={"X-CSRF-Token": csrf(alice)})
    assert put.status_code == 202
    assert put.get_json() == {"email": "alice@example.com", "verified": False,
                              "mail_enabled": True, "notifications": False}
    assert len(inbox.messages) == 1
    bad = alice.put("/api/v1/me/email", json={"email": "not an address",
                                              "current_password": PASSWORD},
                    headers={"X-CSRF-Token": csrf(alice)})
    assert bad.status_code == 422 and bad.get_json()["details"][0]["pointer"] == "/email"
    assert alice.put("/api/v1/me/email", json={"email": 5},
                     headers={"X-CSRF-Token": csrf(alice)}).status_code == 422
    token = post_json(alice, "/api/v1/tokens", {"name": "ci", "scopes": ["full"]}).get_json()
    bearer = {"Authorization": f"Bearer {token['secret']}"}
    api = app.test_client()
    assert api.get("/api/v1/me/email", headers=bearer).status_code == 403
    refused = api.put("/api/v1/me/email", json={"email": "evil@example.com",
                                                "current_password": PASSWORD}, headers=bearer)
    assert refused.status_code == 403
    assert alice.get("/api/v1/me/email").get_json()["email"] == "alice@example.com"
    assert len(inbox.messages) == 1
    assert app.test_client().get("/api/v1/me/email").status_code == 401


def test_verification_mails_are_limited_per_account(app, inbox):
    alice = signed_up_client(app, "alice")
    for _ in range(auth_service.VERIFY_MAIL_LIMIT):
        assert set_email(alice, "alice@example.com").status_code == 303
    refused = set_email(alice, "alice@example.com")
    assert refused.status_code == 429 and refused.headers["Retry-After"]
    assert len(inbox.messages) == auth_service.VERIFY_MAIL_LIMIT


def test_others_never_see_the_address(app, inbox):
    alice = signed_up_client(app, "alice")
    set_email(alice, "alice@example.com")
    alice.get(path_of(link_in(inbox.messages[0])))
    bob = signed_up_client(app, "bob")
    with app.test_request_context():
        claim = auth_service.resolve_credentials(session_token=bob.get_cookie(
            "chaoshub_session").value)
        seen = auth_service.find_account(claim, "alice")
    assert seen.email is None and seen.email_verified is False
    assert "alice@example.com" not in bob.get("/alice").get_data(as_text=True)


def test_a_provider_that_vouches_for_the_address_makes_it_verified(app):
    with app.test_request_context():
        grant = auth_service.sign_in_with_identity(ProviderProfile(
            provider="oidc", subject="s-1", username_hint="carol", email="carol@example.com",
            email_verified=True))
        other = auth_service.sign_in_with_identity(ProviderProfile(
            provider="oidc", subject="s-2", username_hint="dave", email="dave@example.com",
            email_verified=False))
    assert grant.account.email == "carol@example.com" and grant.account.email_verified
    assert other.account.email is None and not other.account.email_verified


def test_without_smtp_pages_say_mail_is_off_and_nothing_fails(settings):
    from chaoshub import create_app
    from chaoshub.core import db

    hub = create_app(settings)  # no SMTP_HOST
    try:
        alice = signed_up_client(hub, "alice")
        page = alice.get("/settings")
        assert page.status_code == 200 and 'data-testid="mail-off"' in page.get_data(as_text=True)
        refused = alice.put("/api/v1/me/email", json={"email": "alice@example.com",
                                                      "current_password": PASSWORD},
                            headers={"X-CSRF-Token": csrf(alice)})
        assert refused.status_code == 409 and "sends no mail" in refused.get_json()["message"]
        form = set_email(alice, "alice@example.com")
        assert form.status_code == 409 and "sends no mail" in form.get_data(as_text=True)
        assert alice.get("/api/v1/me/email").get_json() == {
            "email": None, "verified": False, "mail_enabled": False,
            "notifications": False}
        forgot = hub.test_client().get("/password/forgot")
        assert forgot.status_code == 200 and 'data-testid="mail-off"' in forgot.get_data(
            as_text=True)
        asked = hub.test_client()
        answer = asked.post("/password/forgot", data={"login": "alice",
                                                      "csrf_token": csrf(asked)})
        assert answer.status_code == 200
        browser = hub.test_client()
        assert sign_in(browser, "alice").status_code == 303
        assert browser.get("/api/v1/me").status_code == 200
    finally:
        db.dispose(hub)
