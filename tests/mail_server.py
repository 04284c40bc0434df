"""A real SMTP server (aiosmtpd) on 127.0.0.1 that asks for a login and keeps what it receives,
and the hub settings that send to it."""

from __future__ import annotations

import email
import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email import policy
from email.message import EmailMessage

from tests.helpers import free_port

SMTP_USERNAME = "hub-mailer"
# Distinctive, so that the log check (tests/log_secrets.py) finds it anywhere it leaks.
SMTP_PASSWORD = "smtp-pw-Zq81vKx3Lm"
MAIL_FROM = "ChaosHub <hub@chaoshub.test>"
LINK = re.compile(r"https?://[^\s\"<>]+/(?:settings/email/verify|password/reset)/[\w-]+")


class Inbox:
    """What the server received, oldest first (aiosmtpd's handler)."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[list[str]] = []  # each message's envelope recipients
        self.arrived = threading.Condition()

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 (aiosmtpd's)
        """Keep the message."""
        message = email.message_from_bytes(envelope.content, policy=policy.default)
        with self.arrived:
            self.messages.append(message)
            self.envelopes.append(list(envelope.rcpt_tos))
            self.arrived.notify_all()
        return "250 OK"

    def wait_for(self, count: int, timeout: float = 20.0) -> list[EmailMessage]:
        """The messages once `count` have arrived (a delivery thread sends them)."""
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.messages) >= count, timeout)
        assert len(self.messages) >= count, f"{len(self.messages)} message(s) arrived"
        return list(self.messages)


def _authenticator(server, session, envelope, mechanism, auth_data):
    from aiosmtpd.smtp import AuthResult, LoginPassword

    ok = isinstance(auth_data, LoginPassword) and auth_data.login == SMTP_USERNAME.encode() \
        and auth_data.password == SMTP_PASSWORD.encode()
    return AuthResult(success=ok, handled=False)  # a failure answers 535


@contextmanager
def smtp_server(port: int | None = None) -> Iterator[tuple[Inbox, int]]:
    """An SMTP server on 127.0.0.1 (`port`, or a free one) for the block; (inbox, port)."""
    from aiosmtpd.controller import Controller

    # The server's own chatter (each SMTP line) is not the hub's log.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port or free_port(),
                            authenticator=_authenticator, auth_required=True,
                            auth_require_tls=False)
    controller.start()
    try:
        yield inbox, controller.port
    finally:
        controller.stop()


def mail_settings(port: int) -> dict[str, str | int | float]:
    """Hub settings that send to the test server on `port` (plain SMTP with a login)."""
    return {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": port, "SMTP_SECURITY": "none",
            "SMTP_USERNAME": SMTP_USERNAME, "SMTP_PASSWORD": SMTP_PASSWORD,
            "MAIL_FROM": MAIL_FROM, "SMTP_TIMEOUT_SECONDS": 5.0}


def bodies(message: EmailMessage) -> tuple[str, str]:
    """The text and HTML parts of a message."""
    return (message.get_body(("plain",)).get_content(),
            message.get_body(("html",)).get_content())


def link_in(message: EmailMessage) -> str:
    """The link a hub message carries (the same in its text and its HTML)."""
    text, html = bodies(message)
    found = LINK.search(text).group(0)
    assert found in html
    return found
