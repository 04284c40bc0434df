"""Changing how an account signs in or gets its password reset, from its settings: the current
password is needed (a recent sign-in without one), wrong guesses are limited, the old verified
address is told by mail (a real SMTP server receives it), and a new password ends the other
sessions."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from chaoshub.auth import mail_links
from chaoshub.auth import service as auth_service
from chaoshub.auth.models import SignInSession
from chaoshub.auth.schemas import ProviderProfile
from chaoshub.core import mail
from chaoshub.core.db import transaction
from chaoshub.core.errors import Forbidden, HubError
from chaoshub.core.models import utcnow
from chaoshub.core.web import SESSION_COOKIE
from tests.conftest import PASSWORD, csrf, post_json, sign_in, sign_up, signed_up_client
from tests.mail_server import LINK, bodies, link_in, mail_settings
from tests.test_audit_events import auth_events
from tests.test_email_addresses import path_of, set_email

NEW_PASSWORD = "another fine passphrase"


@pytest.fixture
def app(settings, inbox):
    from chaoshub import create_app
    from chaoshub.core import db

    hub = create_app({**settings, **mail_settings(inbox.port)})
    yield hub
    db.dispose(hub)


def verified(app, inbox, username: str, address: str):
    """A signed-in browser of a new account whose address is verified."""
    browser = signed_up_client(app, username)
    assert set_email(browser, address).status_code == 303
    assert browser.get(path_of(link_in(inbox.messages[-1]))).status_code == 303
    return browser


def change_password(browser, new: str = NEW_PASSWORD, current: str | None = PASSWORD):
    data = {"password": new, "csrf_token": csrf(browser)}
    if current is not None:
        data["current_password"] = current
    return browser.post("/settings/password", data=data)


def put_email(browser, body: dict):
    return browser.put("/api/v1/me/email", json=body, headers={"X-CSRF-Token": csrf(browser)})


def address_of(browser) -> dict:
    return browser.get("/api/v1/me/email").get_json()


def provider_browser(app, subject: str, hint: str, email: str | None = None,
                     minutes_ago: int = 0):
    """A browser signed in through a provider (an account without a password), its session
    begun `minutes_ago`."""
    with app.test_request_context():
        grant = auth_service.sign_in_with_identity(ProviderProfile(
            provider="oidc", subject=subject, username_hint=hint, email=email,
            email_verified=email is not None))
    if minutes_ago:
        with app.app_context(), transaction("auth") as session:
            session.execute(update(SignInSession).where(
                SignInSession.account_id == grant.account.id)
                .values(created_at=utcnow() - timedelta(minutes=minutes_ago)))
    browser = app.test_client()
    browser.set_cookie(SESSION_COOKIE, grant.token)
    return browser


def test_a_wrong_or_missing_current_password_changes_nothing(app, inbox):
    alice = verified(app, inbox, "alice", "alice@example.com")
    sent = len(inbox.messages)
    for current in (None, "", "not my password at all"):
        refused = change_password(alice, current=current)
        assert refused.status_code == 422
        page = refused.get_data(as_text=True)
        # Beside its field, which points at it.
        assert 'id="password-current-error"' in page
        assert 'aria-describedby="password-current-error"' in page
        assert "current password" in page

        form = set_email(alice, "mallory@example.com", current_password=current or "")
        assert form.status_code == 422 and 'id="email-current-error"' in form.get_data(
            as_text=True)
        body = {"email": "mallory@example.com"}
        if current is not None:
            body["current_password"] = current
        api = put_email(alice, body)
        assert api.status_code == 422
        assert api.get_json()["details"][0]["pointer"] == "/current_password"
        removed = put_email(alice, {**body, "email": ""})
        assert removed.status_code == 422

    assert address_of(alice) == {"email": "alice@example.com", "verified": True,
                                 "mail_enabled": True, "notifications": False}
    assert sign_in(app.test_client(), "alice", PASSWORD).status_code == 303
    assert sign_in(app.test_client(), "alice", NEW_PASSWORD).status_code == 401
    assert len(inbox.messages) == sent  # no notice, no link
    # The opt-in alone needs no password; a refused change leaves it as it was.
    assert put_email(alice, {"notifications": True}).status_code == 200
    assert put_email(alice, {"email": "x@example.com", "notifications": False}
                     ).status_code == 422
    assert address_of(alice)["notifications"] is True


def test_guessing_the_current_password_is_limited(app, inbox):
    alice = signed_up_client(app, "alice")
    for i in range(auth_service.SIGN_IN_LIMIT):
        wrong = f"wrong guess number {i}"
        answer = change_password(alice, current=wrong) if i % 2 else put_email(
            alice, {"email": "mallory@example.com", "current_password": wrong})
        assert answer.status_code == 422
    # Past the limit even the right one waits: the page and the API alike.
    page = change_password(alice)
    assert page.status_code == 429 and int(page.headers["Retry-After"]) > 0
    assert "too many failed attempts" in page.get_data(as_text=True)
    api = put_email(alice, {"email": "alice@example.com", "current_password": PASSWORD})
    assert api.status_code == 429 and api.headers["Retry-After"]
    assert api.get_json()["error"] == "rate_limited"
    # Per account, whatever the address the guesses come from.
    other = app.test_client()
    assert sign_in(other, "alice").status_code == 303
    elsewhere = other.post("/settings/password", data={
        "password": NEW_PASSWORD, "current_password": PASSWORD, "csrf_token": csrf(other)},
        environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert elsewhere.status_code == 429
    assert sign_in(app.test_client(), "alice", NEW_PASSWORD).status_code == 401
    assert address_of(alice)["email"] is None and inbox.messages == []


def test_a_good_current_password_clears_earlier_failures(app, inbox):
    alice = signed_up_client(app, "alice")
    for _ in range(auth_service.SIGN_IN_LIMIT - 1):
        assert change_password(alice, current="a wrong password").status_code == 422
    assert change_password(alice).status_code == 303
    for _ in range(auth_service.SIGN_IN_LIMIT - 1):
        assert change_password(alice, current="a wrong password").status_code == 422
    assert change_password(alice, new=PASSWORD, current=NEW_PASSWORD).status_code == 303


def test_without_a_password_an_old_session_must_sign_in_again(app, inbox):
    stale = provider_browser(app, "s-1", "carol", minutes_ago=11)
    page = stale.get("/settings").get_data(as_text=True)
    assert 'data-testid="password-needs-sign-in"' in page
    assert 'data-testid="email-needs-sign-in"' in page
    assert 'href="/signin?next=/settings"' in page

    refused = stale.post("/settings/password", data={"password": NEW_PASSWORD,
                                                     "csrf_token": csrf(stale)})
    assert refused.status_code == 403
    html = refused.get_data(as_text=True)
    assert "sign in again" in html and 'data-testid="sign-in-again"' in html
    form = stale.post("/settings/email", data={"email": "carol@example.com",
                                               "csrf_token": csrf(stale)})
    assert form.status_code == 403 and 'data-testid="sign-in-again"' in form.get_data(
        as_text=True)
    api = put_email(stale, {"email": "carol@example.com"})
    assert api.status_code == 403
    assert api.get_json()["details"] == {"sign_in": "/signin?next=/settings"}
    assert "recent sign-in" in api.get_json()["message"]
    assert address_of(stale)["email"] is None and inbox.messages == []
    assert stale.get("/api/v1/me").get_json()["username"] == "carol"
    # No password came of it: the account still signs in through its provider only.
    assert sign_in(app.test_client(), "carol", NEW_PASSWORD).status_code == 401


def test_without_a_password_a_fresh_session_sets_the_address_and_a_first_password(app, inbox):
    fresh = provider_browser(app, "s-2", "dave", minutes_ago=9)
    page = fresh.get("/settings").get_data(as_text=True)
    assert 'data-testid="password-needs-sign-in"' not in page
    assert 'name="current_password"' not in page  # there is none to give
    assert put_email(fresh, {"email": "dave@example.com"}).status_code == 202
    assert inbox.messages[-1]["To"] == "dave@example.com"
    assert fresh.post("/settings/password", data={"password": NEW_PASSWORD,
                                                  "csrf_token": csrf(fresh)}
                      ).status_code == 303
    assert sign_in(app.test_client(), "dave", NEW_PASSWORD).status_code == 303
    # From now on the password is asked.
    assert put_email(fresh, {"email": "dave@example.org"}).status_code == 422
    assert put_email(fresh, {"email": "dave@example.org", "current_password": NEW_PASSWORD}
                     ).status_code == 202


def test_the_old_verified_address_is_told_and_gets_no_secret(app, inbox):
    alice = verified(app, inbox, "alice", "alice@example.com")
    before = len(inbox.messages)
    assert change_password(alice).status_code == 303
    [notice] = inbox.messages[before:]
    assert notice["To"] == "alice@example.com"
    assert notice["Subject"] == "Your ChaosHub password was changed"
    text, html = bodies(notice)
    for body in (text, html):
        assert "alice" in body and "UTC" in body and "127.0.0.1" in body
        assert "http://localhost/password/forgot" in body  # a page, not a link that resets
        # A session someone held could have made an API token, which outlives the password.
        assert "http://localhost/settings/tokens" in body and "API token" in body
        assert "administrators" in body
        assert NEW_PASSWORD not in body and PASSWORD not in body
        assert not LINK.search(body) and "chreset_" not in body and "chverify_" not in body

    assert set_email(alice, "alice@example.org", current_password=NEW_PASSWORD
                     ).status_code == 303
    notice, verify = inbox.messages[before + 1:]
    assert notice["To"] == "alice@example.com" and verify["To"] == "alice@example.org"
    assert notice["Subject"] == "Your ChaosHub email address was changed"
    for body in bodies(notice):
        assert "was changed" in body and "alice@example.org" not in body
        assert "http://localhost/settings/tokens" in body
        assert not LINK.search(body) and "chverify_" not in body
    assert LINK.search(bodies(verify)[0])  # the link went to the new address only

    # The new address is not verified: removing it tells nobody.
    assert set_email(alice, "", current_password=NEW_PASSWORD).status_code == 303
    assert len(inbox.messages) == before + 3
    assert address_of(alice)["email"] is None


def test_removing_a_verified_address_tells_it(app, inbox):
    alice = verified(app, inbox, "alice", "alice@example.com")
    before = len(inbox.messages)
    answer = put_email(alice, {"email": "", "current_password": PASSWORD})
    assert answer.status_code == 200 and answer.get_json()["email"] is None
    [notice] = inbox.messages[before:]
    assert notice["To"] == "alice@example.com"
    assert notice["Subject"] == "Your ChaosHub email address was removed"
    assert "was removed" in bodies(notice)[0]


def test_no_notice_without_a_verified_address_or_without_mail(app, inbox, settings):
    bob = signed_up_client(app, "bob")
    assert set_email(bob, "bob@example.com").status_code == 303  # never verified
    assert change_password(bob).status_code == 303
    assert [m["Subject"] for m in inbox.messages] == ["Verify your email address for ChaosHub"]

    from chaoshub import create_app
    from chaoshub.core import db

    hub = create_app(settings)  # no SMTP_HOST
    try:
        carol = signed_up_client(hub, "carol")
        assert change_password(carol).status_code == 303
        assert sign_in(hub.test_client(), "carol", NEW_PASSWORD).status_code == 303
        with hub.app_context():
            assert mail_links.outbox.pending() == 0
    finally:
        db.dispose(hub)


def test_a_new_password_ends_the_other_sessions_and_is_audited(app, inbox):
    alice = signed_up_client(app, "alice")
    laptop, phone = app.test_client(), app.test_client()
    for browser in (laptop, phone):
        assert sign_in(browser, "alice").status_code == 303
        assert browser.get("/api/v1/me").status_code == 200
    token = post_json(alice, "/api/v1/tokens", {"name": "ci", "scopes": ["read-only"]}
                      ).get_json()["secret"]

    answer = change_password(alice)
    assert answer.status_code == 303 and answer.headers["Location"] == "/settings?password=set"
    assert alice.get("/api/v1/me").status_code == 200  # this browser stays signed in
    page = alice.get("/settings?password=set").get_data(as_text=True)
    assert "other sessions have ended" in page and "API tokens keep working" in page
    for browser in (laptop, phone):
        assert browser.get("/api/v1/me").status_code == 401
        assert browser.get("/settings").headers["Location"] == "/signin?next=/settings"
    # API tokens are not sessions: they keep working, as after a reset.
    bearer = {"Authorization": f"Bearer {token}"}
    assert app.test_client().get("/api/v1/me", headers=bearer).status_code == 200

    assert set_email(alice, "alice@example.com", current_password=NEW_PASSWORD
                     ).status_code == 303
    entries = auth_events(alice, "alice")
    changes = [e for e in entries if e["event"] in ("auth.password_changed",
                                                    "auth.email_changed")]
    assert [(e["event"], e["details"]) for e in changes] == [
        # The laptop's, the phone's, and the sign-up's own (its browser signed in again).
        ("auth.password_changed", {"first_password": False, "sessions_ended": 3,
                                   "ip": "127.0.0.1"}),
        ("auth.email_changed", {"removed": False, "was_verified": False,
                                "ip": "127.0.0.1"})]
    assert "alice@example.com" not in str(entries)  # the address stays out of the log


def test_tokens_still_cannot_change_either(app, inbox):
    alice = signed_up_client(app, "alice")
    secret = post_json(alice, "/api/v1/tokens", {"name": "ci", "scopes": ["full"]}
                       ).get_json()["secret"]
    bearer = {"Authorization": f"Bearer {secret}"}
    api = app.test_client()
    refused = api.put("/api/v1/me/email", headers=bearer,
                      json={"email": "evil@example.com", "current_password": PASSWORD})
    assert refused.status_code == 403 and "API token" in refused.get_json()["message"]
    with app.test_request_context():
        claim = auth_service.resolve_credentials(bearer_token=secret)
        with pytest.raises(Forbidden, match="API token"):
            auth_service.set_password(claim, NEW_PASSWORD, current_password=PASSWORD)
    assert sign_in(app.test_client(), "alice", NEW_PASSWORD).status_code == 401
    assert address_of(alice)["email"] is None and inbox.messages == []



def test_linking_an_identity_needs_a_recent_sign_in_and_the_address_is_told(app, inbox):
    # A linked identity signs in whatever the password becomes: a session someone else holds
    # (a browser left signed in) must not add theirs.
    verified(app, inbox, "lena", "lena@example.com")
    browser = app.test_client()
    assert sign_in(browser, "lena").status_code == 303
    token = browser.get_cookie(SESSION_COOKIE).value
    profile = ProviderProfile(provider="github", subject="gh-mallory", username_hint="mallory",
                              email="mallory@example.com", email_verified=True)

    def sessions_begun(minutes_ago: int) -> None:
        with transaction("auth") as session:
            session.execute(update(SignInSession).values(
                created_at=utcnow() - timedelta(minutes=minutes_ago)))

    sent = len(inbox.messages)
    with app.test_request_context():
        claim = auth_service.resolve_credentials(session_token=token)
        sessions_begun(11)
        with pytest.raises(Forbidden, match="recent sign-in"):
            auth_service.link_identity(claim, profile, session_token=token)
        with pytest.raises(Forbidden, match="recent sign-in"):
            auth_service.link_identity(claim, profile)  # no session named: none recent
        assert auth_service.list_identities(claim) == []
        sessions_begun(9)
        linked = auth_service.link_identity(claim, profile, session_token=token,
                                            client_ip="198.51.100.7",
                                            base_url="https://hub.example.com",
                                            provider_label="GitHub")
        assert linked.provider == "github"
        assert [i.provider for i in auth_service.list_identities(claim)] == ["github"]
        assert mail.deliver_all()
    assert len(inbox.messages) == sent + 1
    told = inbox.messages[-1]
    assert told["To"] == "lena@example.com"
    assert told["Subject"] == "A sign-in was linked to your ChaosHub account"
    for text in bodies(told):
        assert "A GitHub account was linked" in text and "198.51.100.7" in text
        assert "mallory" not in text and "https://hub.example.com/settings" in text


def linked_identity(app, browser, subject: str = "gh-1") -> str:
    """Link a GitHub identity to the browser's account (its session made recent) and return
    the identity's id."""
    token = browser.get_cookie(SESSION_COOKIE).value
    with app.test_request_context():
        claim = auth_service.resolve_credentials(session_token=token)
        return auth_service.link_identity(claim, ProviderProfile(
            provider="github", subject=subject, username_hint="gh"), session_token=token).id


def unlink(browser, identity_id: str, current: str | None = None):
    data = {"csrf_token": csrf(browser)}
    if current is not None:
        data["current_password"] = current
    return browser.post(f"/settings/identities/{identity_id}/unlink", data=data)


def test_unlinking_needs_the_current_password_and_the_address_is_told(app, inbox):
    # A session someone else holds must not take away the owner's way to sign in (signing in
    # with it again would make a new, empty account).
    verified(app, inbox, "una", "una@example.com")
    browser = app.test_client()
    assert sign_in(browser, "una").status_code == 303
    identity = linked_identity(app, browser)
    with app.app_context():
        mail.deliver_all()  # the linking's own notice
    sent = len(inbox.messages)
    for current in (None, "", "not my password at all"):
        refused = unlink(browser, identity, current)
        assert refused.status_code == 422
        assert 'id="unlink-current-error"' in refused.get_data(as_text=True)
    page = browser.get("/settings").get_data(as_text=True)
    assert page.count('data-testid="identity"') == 1
    assert 'name="current_password"' in page.split('/unlink"')[1].split("</form>")[0]

    assert unlink(browser, identity, PASSWORD).status_code == 303
    assert browser.get("/settings").get_data(as_text=True).count('data-testid="identity"') == 0
    with app.app_context():
        assert mail.deliver_all()
    assert len(inbox.messages) == sent + 1
    told = inbox.messages[-1]
    assert told["To"] == "una@example.com"
    assert told["Subject"] == "A sign-in was removed from your ChaosHub account"
    for text in bodies(told):
        assert "github account was unlinked" in text.lower() and "gh-1" not in text
    events = [(e["event"], e["details"]) for e in auth_events(browser, "una")
              if e["event"].startswith("auth.identity_")]
    assert events == [("auth.identity_linked", {"provider": "github", "ip": None}),
                      ("auth.identity_unlinked", {"provider": "github", "ip": "127.0.0.1"})]


def test_unlinking_without_a_password_needs_a_recent_sign_in(app, inbox):
    stale = provider_browser(app, "u-2", "uma", minutes_ago=11)
    with app.app_context(), transaction("auth") as session:
        session.execute(update(SignInSession).values(created_at=utcnow()))
    second = linked_identity(app, stale, "gh-2")
    with app.app_context(), transaction("auth") as session:
        session.execute(update(SignInSession).values(
            created_at=utcnow() - timedelta(minutes=11)))
    refused = unlink(stale, second)
    assert refused.status_code == 403 and 'data-testid="sign-in-again"' in refused.get_data(
        as_text=True)
    assert stale.get("/settings").get_data(as_text=True).count('data-testid="identity"') == 2
    with app.app_context(), transaction("auth") as session:
        session.execute(update(SignInSession).values(created_at=utcnow()))
    assert unlink(stale, second).status_code == 303
    assert stale.get("/settings").get_data(as_text=True).count('data-testid="identity"') == 1


def test_a_new_password_also_ends_a_copy_of_this_browsers_session(app, inbox):
    # A cookie taken from this very browser is the thief's copy of this session: the browser
    # that changes the password gets a new session, and the old one ends for whoever holds it.
    alice = signed_up_client(app, "alice")
    before = alice.get_cookie(SESSION_COOKIE).value
    thief = app.test_client()
    thief.set_cookie(SESSION_COOKIE, before)
    assert thief.get("/api/v1/me").status_code == 200

    answer = change_password(alice)
    assert answer.status_code == 303
    after = alice.get_cookie(SESSION_COOKIE)
    assert after is not None and after.value != before
    assert after.http_only and after.same_site == "Lax"
    assert alice.get("/api/v1/me").status_code == 200
    assert thief.get("/api/v1/me").status_code == 401
    with app.app_context(), transaction("auth") as session:
        rows = session.execute(select(SignInSession.token_hash)).scalars().all()
    assert len(rows) == 1  # only the new one: none of the old ones left behind


def test_guesses_sent_at_once_get_no_more_than_the_limit(app, inbox, monkeypatch):
    # Each guess takes its place in the count before its hash is checked: a burst sent at once
    # cannot all pass a count read before any of them failed.
    alice = signed_up_client(app, "alice")
    for _ in range(auth_service.SIGN_IN_LIMIT - 1):
        assert change_password(alice, current="a wrong guess").status_code == 422
    token = alice.get_cookie(SESSION_COOKIE).value
    real, inner = auth_service.passwords.matches, []

    def matches(stored: str | None, given: str) -> bool:
        if not inner:  # another guess arrives while this one's hash is being checked
            inner.append(None)
            with app.test_request_context():
                claim = auth_service.resolve_credentials(session_token=token)
                try:
                    auth_service.set_password(claim, NEW_PASSWORD, session_token=token,
                                              current_password="another wrong guess")
                except HubError as error:
                    inner[0] = error.status
        return real(stored, given)

    monkeypatch.setattr(auth_service.passwords, "matches", matches)
    assert change_password(alice, current="a wrong guess").status_code == 422
    assert inner == [429]
    assert change_password(alice).status_code == 429  # the limit holds for the right one too


def test_a_reset_link_lifts_the_limit_someone_else_ran_into(app, inbox):
    # Someone holding a session guessed the current password until the limit: the owner who
    # chose a new one through a mailed link can then change the address at once.
    from tests.test_password_reset import ask_reset

    verified(app, inbox, "alice", "alice@example.com")
    thief = app.test_client()
    assert sign_in(thief, "alice").status_code == 303
    for _ in range(auth_service.SIGN_IN_LIMIT):
        assert change_password(thief, current="a wrong guess").status_code == 422
    assert change_password(thief).status_code == 429

    assert ask_reset(app, "alice").status_code == 200
    reset = app.test_client()
    path = path_of(link_in(inbox.messages[-1]))
    assert reset.post(path, data={"password": NEW_PASSWORD, "csrf_token": csrf(reset)}
                      ).status_code == 303
    owner = app.test_client()
    assert sign_in(owner, "alice", NEW_PASSWORD).status_code == 303
    assert set_email(owner, "alice@example.org", current_password=NEW_PASSWORD
                     ).status_code == 303


# API tokens: one outlives the session and a password change -------------------------------------

TOKEN_BODY = {"name": "ci", "scopes": ["experiments:read"]}


def test_an_old_session_makes_a_token_only_with_the_password(app, inbox):
    dora = app.test_client()
    assert sign_up(dora, "dora").status_code == 303
    assert sign_in(dora, "dora").status_code == 303
    with app.app_context(), transaction("auth") as session:  # before any request reads it
        session.execute(update(SignInSession).values(
            created_at=utcnow() - timedelta(hours=2, minutes=1)))
    missing = post_json(dora, "/api/v1/tokens", TOKEN_BODY)
    assert missing.status_code == 422
    assert [d["pointer"] for d in missing.get_json()["details"]] == ["/current_password"]
    wrong = post_json(dora, "/api/v1/tokens", {**TOKEN_BODY, "current_password": "not-it-at-all"})
    assert wrong.status_code == 422 and "secret" not in wrong.get_json()
    assert dora.get("/api/v1/tokens").get_json()["tokens"] == []
    made = post_json(dora, "/api/v1/tokens", {**TOKEN_BODY, "current_password": PASSWORD})
    assert made.status_code == 201 and made.get_json()["secret"]

    page = dora.get("/settings/tokens").get_data(as_text=True)
    assert 'name="current_password"' in page
    refused = dora.post("/settings/tokens", data={"name": "page", "preset": "read-only",
                                                   "csrf_token": csrf(dora)})
    assert refused.status_code == 422
    assert "type your current password" in refused.get_data(as_text=True)
    shown = dora.post("/settings/tokens", data={"name": "page", "preset": "read-only",
                                                 "current_password": PASSWORD,
                                                 "csrf_token": csrf(dora)})
    assert shown.status_code == 201
    # The first-run guide's button, asked for the password, keeps the guide's next step.
    post_json(dora, "/api/v1/orgs/dora/workspaces", {"name": "lab", "visibility": "private"})
    guided = {"name": "chaos CLI for dora/lab", "preset": "cli", "workspace": "dora/lab",
              "guide": "dora/lab", "csrf_token": csrf(dora)}
    asked = dora.post("/settings/tokens", data=guided)
    assert asked.status_code == 422
    assert 'name="guide" value="dora/lab"' in asked.get_data(as_text=True)
    done = dora.post("/settings/tokens", data={**guided, "current_password": PASSWORD})
    assert done.status_code == 201 and 'data-testid="guide-next"' in done.get_data(as_text=True)
    assert len(dora.get("/api/v1/tokens").get_json()["tokens"]) == 3


def test_a_fresh_session_makes_a_token_without_the_password(app, inbox):
    erin = signed_up_client(app, "erin")
    assert 'name="current_password"' not in erin.get("/settings/tokens").get_data(as_text=True)
    assert post_json(erin, "/api/v1/tokens", TOKEN_BODY).status_code == 201


def test_without_a_password_an_old_session_signs_in_again_to_make_a_token(app, inbox):
    stale = provider_browser(app, "s-7", "fran", minutes_ago=121)
    refused = post_json(stale, "/api/v1/tokens", TOKEN_BODY)
    assert refused.status_code == 403
    assert refused.get_json()["details"] == {"sign_in": "/signin?next=/settings/tokens"}
    assert "recent sign-in" in refused.get_json()["message"]
    shown = stale.get("/settings/tokens").get_data(as_text=True)
    assert 'name="current_password"' not in shown  # it has none to type
    assert 'data-testid="token-needs-sign-in"' in shown
    assert 'href="/signin?next=/settings/tokens"' in shown
    page = stale.post("/settings/tokens", data={"name": "page", "preset": "read-only",
                                                 "csrf_token": csrf(stale)})
    assert page.status_code == 403
    assert 'href="/signin?next=/settings/tokens"' in page.get_data(as_text=True)
    assert stale.get("/api/v1/tokens").get_json()["tokens"] == []
    fresh = provider_browser(app, "s-7", "fran")
    assert post_json(fresh, "/api/v1/tokens", TOKEN_BODY).status_code == 201
