"""Password reset for local accounts: a link mailed to the verified address (a real SMTP
server receives it), one use within an hour, every session ended, the same answer whether an
account matches or not."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, text, update

from chaoshub import create_app
from chaoshub.auth import mail_links
from chaoshub.auth import service as auth_service
from chaoshub.auth.models import EmailToken
from chaoshub.auth.schemas import ProviderProfile
from chaoshub.core import db
from chaoshub.core.db import transaction
from chaoshub.core.models import utcnow
from chaoshub.core.web import SESSION_COOKIE
from tests.conftest import PASSWORD, csrf, post_json, sign_in, signed_up_client
from tests.helpers import free_port
from tests.mail_server import link_in, mail_settings, smtp_server
from tests.test_email_addresses import path_of, set_email

NEW_PASSWORD = "another fine passphrase"


@pytest.fixture
def app(settings, inbox):
    hub = create_app({**settings, **mail_settings(inbox.port)})
    yield hub
    db.dispose(hub)


def verified(app, inbox, username: str, address: str):
    """A signed-in browser of a new account whose address is verified."""
    browser = signed_up_client(app, username)
    set_email(browser, address)
    assert browser.get(path_of(link_in(inbox.messages[-1]))).status_code == 303
    return browser


def ask_reset(app, login: str, ip: str = "127.0.0.1"):
    browser = app.test_client()
    token = csrf(browser)
    return browser.post("/password/forgot", data={"login": login, "csrf_token": token},
                        environ_base={"REMOTE_ADDR": ip})


def main_text(response) -> str:
    html = response.get_data(as_text=True)
    return html[html.index('<main'):html.index('</main>')]


def test_a_reset_from_request_to_new_password(app, inbox):
    alice = verified(app, inbox, "alice", "alice@example.com")
    other_browser = app.test_client()
    assert sign_in(other_browser, "alice").status_code == 303
    token = post_json(alice, "/api/v1/tokens", {"name": "ci", "scopes": ["read-only"]})
    secret = token.get_json()["secret"]

    page = app.test_client().get("/signin").get_data(as_text=True)
    assert 'href="/password/forgot"' in page
    answer = ask_reset(app, "alice")
    assert answer.status_code == 200
    assert "If an account matches, we sent a link" in answer.get_data(as_text=True)
    message = inbox.messages[-1]
    assert message["To"] == "alice@example.com"
    assert message["Subject"] == "Reset your ChaosHub password"
    link = path_of(link_in(message))
    assert link.startswith("/password/reset/chreset_")

    form = app.test_client().get(link)
    assert form.status_code == 200 and 'data-testid="reset-username">alice<' in form.get_data(
        as_text=True)
    assert form.headers["Referrer-Policy"] == "no-referrer"
    assert form.headers["Cache-Control"] == "no-store"
    weak = app.test_client()
    refused = weak.post(link, data={"password": "password123", "csrf_token": csrf(weak)})
    assert refused.status_code == 422 and "too common" in refused.get_data(as_text=True)

    browser = app.test_client()
    done = browser.post(link, data={"password": NEW_PASSWORD, "csrf_token": csrf(browser)})
    assert done.status_code == 303 and done.headers["Location"] == "/signin?reset=1"
    assert 'data-testid="reset-done"' in browser.get("/signin?reset=1").get_data(as_text=True)

    # The new password works, the old one does not.
    assert sign_in(app.test_client(), "alice", NEW_PASSWORD).status_code == 303
    assert sign_in(app.test_client(), "alice", PASSWORD).status_code == 401
    # Every session ended; the API token still works.
    assert alice.get("/api/v1/me").status_code == 401
    assert other_browser.get("/api/v1/me").status_code == 401
    me = app.test_client().get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"})
    assert me.status_code == 200 and me.get_json()["username"] == "alice"
    # The link works once.
    again = app.test_client()
    used = again.post(link, data={"password": "yet another passphrase", "csrf_token": csrf(again)})
    assert used.status_code == 410 and "used already" in used.get_data(as_text=True)
    assert app.test_client().get(link).status_code == 410
    assert sign_in(app.test_client(), "alice", NEW_PASSWORD).status_code == 303
    # The audit log tells of it (auth's event, through dashboard).
    fresh = app.test_client()
    sign_in(fresh, "alice", NEW_PASSWORD)
    entries = fresh.get("/api/v1/orgs/alice/audit?event=auth.password_reset").get_json()["entries"]
    assert [e["event"] for e in entries] == ["auth.password_reset"]
    assert entries[0]["details"] == {"sessions_ended": 3, "ip": "127.0.0.1"}


def test_the_answer_is_the_same_whatever_matches_and_only_verified_addresses_get_mail(
        app, inbox):
    verified(app, inbox, "alice", "alice@example.com")
    bob = signed_up_client(app, "bob")
    set_email(bob, "bob@example.com")  # never verified
    sent = len(inbox.messages)
    answers = {login: main_text(ask_reset(app, login, ip=f"10.0.0.{n}"))
               for n, login in enumerate(["nobody", "nobody@example.com", "bob",
                                          "bob@example.com", "ALICE"])}
    assert len(set(answers.values())) == 1, answers
    # Only alice (named in any case) got a link: bob's address is not known to be his.
    assert len(inbox.messages) == sent + 1 and inbox.messages[-1]["To"] == "alice@example.com"
    ask_reset(app, "Alice@Example.com", ip="10.0.0.9")
    assert len(inbox.messages) == sent + 2 and inbox.messages[-1]["To"] == "alice@example.com"


def test_an_expired_link_gets_a_clear_page_and_changes_nothing(app, inbox):
    verified(app, inbox, "alice", "alice@example.com")
    ask_reset(app, "alice")
    link = path_of(link_in(inbox.messages[-1]))
    with app.app_context(), transaction("auth") as session:
        session.execute(update(EmailToken).where(EmailToken.purpose == "reset")
                        .values(expires_at=utcnow()))
    page = app.test_client().get(link)
    assert page.status_code == 410
    html = page.get_data(as_text=True)
    assert "This link has expired" in html and 'href="/password/forgot"' in html
    browser = app.test_client()
    post = browser.post(link, data={"password": NEW_PASSWORD, "csrf_token": csrf(browser)})
    assert post.status_code == 410
    assert sign_in(app.test_client(), "alice").status_code == 303  # the old password stands
    assert app.test_client().get("/password/reset/chreset_nothing-like-it").status_code == 404


def test_a_newer_link_replaces_the_older_one_and_links_are_kept_hashed(app, inbox):
    verified(app, inbox, "alice", "alice@example.com")
    ask_reset(app, "alice")
    first = path_of(link_in(inbox.messages[-1]))
    ask_reset(app, "alice")
    second = path_of(link_in(inbox.messages[-1]))
    assert app.test_client().get(first).status_code == 410
    assert app.test_client().get(second).status_code == 200
    with app.app_context(), transaction("auth") as session:
        kept = list(session.scalars(select(EmailToken.token_hash)))
    secret = second.rsplit("/", 1)[1]
    assert secret not in kept and all(len(h) == 64 for h in kept)


def test_reset_mail_is_limited_per_account_and_asks_per_address(app, inbox):
    verified(app, inbox, "alice", "alice@example.com")
    sent = len(inbox.messages)
    for n in range(auth_service.RESET_MAIL_LIMIT + 2):
        assert ask_reset(app, "alice", ip=f"10.0.1.{n}").status_code == 200
    assert len(inbox.messages) == sent + auth_service.RESET_MAIL_LIMIT
    for _ in range(auth_service.RESET_ASK_LIMIT):
        assert ask_reset(app, "nobody", ip="10.0.2.1").status_code == 200
    limited = ask_reset(app, "nobody", ip="10.0.2.1")
    assert limited.status_code == 429 and limited.headers["Retry-After"]


def test_an_account_without_a_password_gets_no_reset_mail(app, inbox):
    with app.test_request_context():
        auth_service.sign_in_with_identity(ProviderProfile(
            provider="oidc", subject="s-1", username_hint="carol", email="carol@example.com",
            email_verified=True))
    answer = ask_reset(app, "carol@example.com")
    assert answer.status_code == 200 and inbox.messages == []


def test_a_reset_while_smtp_is_down_answers_alike_and_the_mail_goes_later(settings):
    port = free_port()
    hub = create_app({**settings, **mail_settings(port)})
    try:
        with smtp_server(port) as (inbox, _):
            alice = verified(hub, inbox, "alice", "alice@example.com")
        answer = ask_reset(hub, "alice")
        assert answer.status_code == 200
        assert "If an account matches" in answer.get_data(as_text=True)
        assert alice.get_cookie(SESSION_COOKIE) is not None
        with smtp_server(port) as (inbox, _), hub.app_context():
            assert mail_links.outbox.pending() == 1
            mail_links.outbox.deliver(utcnow() + timedelta(minutes=1))
            assert inbox.messages[0]["Subject"] == "Reset your ChaosHub password"
    finally:
        db.dispose(hub)


def test_a_password_set_in_the_settings_voids_a_reset_link_sent_before(app, inbox):
    # A link someone else read (a shared or forwarded mailbox) must not outlive the password
    # its owner chose since.
    alice = verified(app, inbox, "alice", "alice@example.com")
    ask_reset(app, "alice")
    link = path_of(link_in(inbox.messages[-1]))
    changed = alice.post("/settings/password",
                         data={"password": NEW_PASSWORD, "current_password": PASSWORD,
                               "csrf_token": csrf(alice)})
    assert changed.status_code == 303
    assert app.test_client().get(link).status_code == 410
    browser = app.test_client()
    post = browser.post(link, data={"password": "yet another passphrase",
                                    "csrf_token": csrf(browser)})
    assert post.status_code == 410
    assert sign_in(app.test_client(), "alice", NEW_PASSWORD).status_code == 303


def test_whether_an_account_matches_is_found_out_once_the_answer_is_sent(app, inbox):
    # The answer cannot take longer for a known account: looking it up, making its link and
    # queueing the mail all wait until the answer has gone.
    verified(app, inbox, "alice", "alice@example.com")
    sent = len(inbox.messages)
    browser = app.test_client()
    answer = browser.post("/password/forgot", data={"login": "alice", "csrf_token": csrf(browser)},
                          buffered=False)
    assert answer.status_code == 200
    assert "If an account matches" in answer.get_data(as_text=True)
    with app.app_context(), transaction("auth") as session:
        assert list(session.scalars(select(EmailToken).where(EmailToken.purpose == "reset"))) == []
    assert len(inbox.messages) == sent
    answer.close()  # the server has sent it all
    assert len(inbox.messages) == sent + 1 and inbox.messages[-1]["To"] == "alice@example.com"
    assert app.test_client().get(path_of(link_in(inbox.messages[-1]))).status_code == 200


def test_a_reset_that_fails_after_the_answer_is_logged_without_the_mail(app, inbox, caplog):
    verified(app, inbox, "alice", "alice@example.com")
    with app.app_context(), transaction("auth") as session:
        session.execute(text("ALTER TABLE auth_mail_outbox RENAME TO auth_mail_outbox_away"))
    try:
        assert ask_reset(app, "alice").status_code == 200
        assert "a password reset link could not be made" in caplog.text
        assert "alice@example.com" not in caplog.text and "Reset your" not in caplog.text
    finally:
        with app.app_context(), transaction("auth") as session:
            session.execute(text("ALTER TABLE auth_mail_outbox_away RENAME TO auth_mail_outbox"))
