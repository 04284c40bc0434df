"""Mail through a real SMTP server on 127.0.0.1: composed as text and HTML, queued in the
sending service's outbox, sent after the answer or by a thread, retried while the server is
away, and never a secret in a log."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from chaoshub import create_app
from chaoshub.auth import mail_links
from chaoshub.auth.models import MailOutboxEntry
from chaoshub.core import db, mail
from chaoshub.core.config import ConfigError, load_settings
from chaoshub.core.db import transaction
from chaoshub.core.models import utcnow
from tests.conftest import PASSWORD, csrf, signed_up_client
from tests.helpers import free_port
from tests.mail_server import (
    MAIL_FROM,
    SMTP_PASSWORD,
    bodies,
    link_in,
    mail_settings,
    smtp_server,
)


@pytest.fixture
def hub_for(settings):
    made = []

    def make(**overrides):
        made.append(create_app({**settings, **overrides}))
        return made[-1]

    yield make
    for hub in made:
        mail.stop(hub)
        db.dispose(hub)


def queue(app, to: str = "ops@example.com", subject: str = "Run deviated") -> None:
    with app.app_context(), transaction("auth") as session:
        mail_links.outbox.queue(session, "test", mail.Message(
            to=to, subject=subject, text="The run deviated: https://hub.test/r/1",
            html='<p>The run <a href="https://hub.test/r/1">deviated</a>.</p>'))


def outbox_rows(app) -> list[MailOutboxEntry]:
    with app.app_context(), transaction("auth") as session:
        return list(session.scalars(select(MailOutboxEntry)))


def test_a_message_goes_as_text_and_html_after_a_login_and_leaves_no_copy(hub_for):
    with smtp_server() as (inbox, port):
        app = hub_for(**mail_settings(port))
        queue(app)  # outside a request: sent at its commit
        [message] = inbox.messages
    assert message["From"] == MAIL_FROM and message["To"] == "ops@example.com"
    assert message["Subject"] == "Run deviated" and message["Message-ID"].endswith(
        "@chaoshub.test>")
    assert message.get_content_type() == "multipart/alternative"
    text, html = bodies(message)
    assert "https://hub.test/r/1" in text and '<a href="https://hub.test/r/1">' in html
    assert outbox_rows(app) == []


def test_smtp_down_the_request_answers_and_the_mail_is_retried_later(hub_for, caplog):
    port = free_port()  # nothing listens there yet
    app = hub_for(**mail_settings(port))
    alice = signed_up_client(app, "alice")
    caplog.set_level(logging.DEBUG)
    answer = alice.put("/api/v1/me/email", json={"email": "alice@example.com",
                                                 "current_password": PASSWORD},
                       headers={"X-CSRF-Token": csrf(alice)})
    assert answer.status_code == 202  # answered as usual; the mail waits
    [row] = outbox_rows(app)
    assert row.attempts == 1 and row.due_at > utcnow() and "Connection" in row.last_error
    assert "not sent yet" in caplog.text
    with smtp_server(port) as (inbox, _):
        with app.app_context():
            assert mail.deliver_all() is True  # not due yet: nothing goes
            assert inbox.messages == []
            mail_links.outbox.deliver(utcnow() + timedelta(minutes=1))
        [message] = inbox.messages
    assert link_in(message).startswith("http://localhost/settings/email/verify/")
    assert outbox_rows(app) == []
    assert SMTP_PASSWORD not in caplog.text


def test_a_wrong_smtp_password_is_retried_and_never_logged(hub_for, caplog):
    caplog.set_level(logging.DEBUG)
    with smtp_server() as (inbox, port):
        app = hub_for(**{**mail_settings(port), "SMTP_PASSWORD": SMTP_PASSWORD + "-wrong"})
        queue(app)
        assert inbox.messages == []
    [row] = outbox_rows(app)
    assert row.attempts == 1 and "SMTPAuthenticationError" in row.last_error
    assert SMTP_PASSWORD not in caplog.text and SMTP_PASSWORD not in row.last_error


def test_a_message_still_refused_after_a_day_is_dropped(hub_for, caplog):
    app = hub_for(**mail_settings(free_port()))
    queue(app)
    with app.app_context():
        mail_links.outbox.deliver(utcnow() + mail.GIVE_UP_AFTER + timedelta(minutes=1))
    assert outbox_rows(app) == []
    assert "dropped after 2 attempt(s)" in caplog.text


def test_the_delivery_thread_sends_what_a_commit_queued(hub_for):
    with smtp_server() as (inbox, port):
        app = hub_for(**mail_settings(port), MAIL_DELIVERY_SECONDS=0.05)
        alice = signed_up_client(app, "alice")
        assert alice.put("/api/v1/me/email", json={"email": "alice@example.com",
                                                   "current_password": PASSWORD},
                         headers={"X-CSRF-Token": csrf(alice)}).status_code == 202
        [message] = inbox.wait_for(1)
    assert message["To"] == "alice@example.com"


def test_without_smtp_host_nothing_is_queued(hub_for):
    app = hub_for()
    queue(app)
    assert outbox_rows(app) == []
    with app.app_context():
        assert mail.enabled() is False


@pytest.mark.parametrize("overrides, complaint", [
    ({"SMTP_HOST": "smtp.example.com"}, "MAIL_FROM is required"),
    ({"SMTP_SECURITY": "tls"}, "SMTP_SECURITY must be one of starttls, ssl, none"),
    ({"SMTP_PORT": "smtp"}, "SMTP_PORT must be a number"),
    ({"MAIL_DELIVERY_SECONDS": -1}, "MAIL_DELIVERY_SECONDS must be 0"),
])
def test_mail_settings_are_checked(tmp_path, overrides, complaint):
    with pytest.raises(ConfigError, match=complaint):
        load_settings({"CHAOSHUB_INSTANCE_PATH": str(tmp_path), **overrides})


def test_a_message_claimed_late_in_a_long_round_stays_claimed_for_a_whole_lease(hub_for):
    # A round that began long ago (a slow SMTP server took minutes over the messages before
    # this one) claims it now: another process's round must not take it too while it is sent.
    app = hub_for(**mail_settings(free_port()))
    queue(app)
    [row] = outbox_rows(app)
    round_began = utcnow() - mail.LEASE - timedelta(minutes=1)
    with app.app_context(), transaction("auth") as session:
        session.execute(update(MailOutboxEntry).values(due_at=round_began))
    with app.app_context():
        assert mail_links.outbox._claim(row.id, round_began) is not None
        assert mail_links.outbox._claim(row.id, utcnow()) is None
        assert mail_links.outbox.deliver() == 0  # nothing is due: it is being sent
