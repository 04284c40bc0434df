"""Mail: messages of text and HTML, kept in the sending service's mail outbox until the SMTP
server has taken them.

Why an outbox, as experiment's feed outbox does it: a message is queued (`MailOutbox.queue`) in
the transaction of the change it tells of (a verification link exists exactly when its token
does), so a web request never waits for SMTP, never fails because of it, and takes as long
whether it queued a message or not (nobody learns whether an account exists). What the SMTP
server does not take stays, due again after a backoff, for a day; a thread of each process
(started with its first request) sends what is due, MAIL_DELIVERY_SECONDS after a commit woke
it and every POLL_SECONDS anyway. With MAIL_DELIVERY_SECONDS = 0 there is no thread: a
request's messages go right after its answer is sent, and a command's or worker's at once.

Two processes never send one message twice: each claims a message (pushes its due time past
a lease) before it connects, and deletes it once sent. A sent message leaves no copy behind.
Mail is off while SMTP_HOST is empty: nothing is queued (`enabled` says so to the pages).
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from typing import Any

from flask import Flask, current_app, has_app_context
from sqlalchemy import Integer, String, Text, delete, func, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from chaoshub.core import events
from chaoshub.core.courier import Courier
from chaoshub.core.db import transaction
from chaoshub.core.errors import first_line
from chaoshub.core.models import UTCDateTime, new_id, utcnow

log = logging.getLogger(__name__)

EXTENSION = "chaoshub.mail"
BATCH = 50  # messages one round sends at most, per outbox
LEASE = timedelta(minutes=5)  # a claimed message is not claimed again before this
FIRST_RETRY_SECONDS = 30  # then doubled after each failure
MAX_RETRY_SECONDS = 3600
GIVE_UP_AFTER = timedelta(days=1)  # a message still not taken then is dropped (logged)
POLL_SECONDS = 15.0  # the delivery thread looks for due retries at least this often
ERROR_CHARS = 300


def enabled(config: Any = None) -> bool:
    """True when the hub sends mail (SMTP_HOST is set)."""
    config = config if config is not None else current_app.config
    return bool(config.get("SMTP_HOST"))


# The table: each sending service maps it on its own DeclarativeBase, as <service>_mail_outbox.


class MailOutboxColumns:
    """A message waiting for the SMTP server: to whom, what, and when it is due again."""

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(40))  # what it is for, for logs ("verify"...)
    to_address: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(200))
    text_body: Mapped[str] = mapped_column(Text)
    html_body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(ERROR_CHARS))


# Composing and sending -----------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    """A message ready to queue: its recipient, subject, and text and HTML bodies."""

    to: str
    subject: str
    text: str
    html: str


def render(template: str, to: str, subject: str, **context: Any) -> Message:
    """A message from the templates mail/<template>.txt and .html (the app's Jinja)."""
    env = current_app.jinja_env
    context = {"subject": subject, "to": to, **context}
    return Message(to=to, subject=subject,
                   text=env.get_template(f"mail/{template}.txt").render(context),
                   html=env.get_template(f"mail/{template}.html").render(context))


def compose(found: Message, sender: str) -> EmailMessage:
    """The MIME message: multipart/alternative, text first, then HTML."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = found.to
    message["Subject"] = found.subject
    message["Date"] = formatdate(localtime=False)
    domain = parseaddr(sender)[1].rpartition("@")[2] or None
    message["Message-ID"] = make_msgid(domain=domain)
    message.set_content(found.text)
    message.add_alternative(found.html, subtype="html")
    return message


def connect(config: Any) -> smtplib.SMTP:
    """A connection to the SMTP server, secured and logged in as the settings say."""
    host, port = config["SMTP_HOST"], int(config["SMTP_PORT"])
    timeout = float(config["SMTP_TIMEOUT_SECONDS"])
    context = ssl.create_default_context()
    if config["SMTP_SECURITY"] == "ssl":
        smtp: smtplib.SMTP = smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
    else:
        smtp = smtplib.SMTP(host, port, timeout=timeout)
    try:
        if config["SMTP_SECURITY"] == "starttls":
            smtp.starttls(context=context)
        if config["SMTP_USERNAME"]:
            smtp.login(config["SMTP_USERNAME"], config["SMTP_PASSWORD"])
    except BaseException:
        smtp.close()  # refused: the socket goes now, not when it is collected
        raise
    return smtp


# The outbox ----------------------------------------------------------------------------------


class MailOutbox:
    """A service's mail outbox: queue messages in its transactions, deliver what is due."""

    def __init__(self, service: str, model: type):
        self.service = service
        self.model = model

    def queue(self, session: Session, kind: str, message: Message) -> None:
        """Queue a message inside the caller's transaction; it goes once that commits. Nothing
        is queued while mail is off."""
        if not enabled():
            return
        now = utcnow()
        session.add(self.model(id=new_id(), kind=kind, to_address=message.to,
                               subject=message.subject[:200], text_body=message.text,
                               html_body=message.html, created_at=now, due_at=now,
                               attempts=0))
        events.after_commit(session, committed)

    def pending(self) -> int:
        """How many messages wait in the outbox."""
        with transaction(self.service) as session:
            return session.scalar(select(func.count()).select_from(self.model)) or 0

    def deliver(self, now: datetime | None = None) -> int:
        """Send what is due at `now` over one connection; how many went. A failure to reach
        the server leaves the rest for the next round."""
        config = current_app.config
        if not enabled(config):
            return 0
        now = now or utcnow()
        model = self.model
        with transaction(self.service) as session:
            ids = list(session.scalars(select(model.id).where(model.due_at <= now)
                                       .order_by(model.due_at, model.id).limit(BATCH)))
        sent, smtp = 0, None
        try:
            for message_id in ids:
                row = self._claim(message_id, now)
                if row is None:
                    continue  # another process took it
                try:
                    if smtp is None:
                        smtp = connect(config)
                    smtp.send_message(compose(row, config["MAIL_FROM"]))
                except smtplib.SMTPRecipientsRefused as exc:
                    self._drop(row, reason(exc))  # the server will never take it
                except (smtplib.SMTPException, OSError) as exc:
                    self._retry(row, now, reason(exc))
                    break  # the server is away or refuses us: the rest waits too
                else:
                    self._sent(row)
                    sent += 1
        finally:
            if smtp is not None:
                try:
                    smtp.quit()
                except (smtplib.SMTPException, OSError):
                    pass
        return sent

    def _claim(self, message_id: str, now: datetime) -> Any:
        model = self.model
        # The lease runs from the claim, not from the round's start: a round slowed down by
        # the server would otherwise claim messages whose lease had already run out.
        until = max(now, utcnow()) + LEASE
        with transaction(self.service) as session:
            claimed = session.execute(
                update(model).where(model.id == message_id, model.due_at <= now)
                .values(due_at=until)).rowcount
            if claimed != 1:
                return None
            row = session.get(model, message_id)
            return _Claimed(id=row.id, kind=row.kind, to=row.to_address, subject=row.subject,
                            text=row.text_body, html=row.html_body, created_at=row.created_at,
                            attempts=row.attempts)

    def _sent(self, row: _Claimed) -> None:
        with transaction(self.service) as session:
            session.execute(delete(self.model).where(self.model.id == row.id))
        log.info("mail %s (%s) sent", row.id, row.kind)

    def _drop(self, row: _Claimed, reason: str) -> None:
        with transaction(self.service) as session:
            session.execute(delete(self.model).where(self.model.id == row.id))
        log.error("mail %s (%s) dropped after %d attempt(s): %s", row.id, row.kind,
                  row.attempts + 1, reason)

    def _retry(self, row: _Claimed, now: datetime, reason: str) -> None:
        attempts = row.attempts + 1
        if now - row.created_at >= GIVE_UP_AFTER:
            self._drop(row, reason)
            return
        wait = min(MAX_RETRY_SECONDS, FIRST_RETRY_SECONDS * 2 ** (attempts - 1))
        with transaction(self.service) as session:
            session.execute(update(self.model).where(self.model.id == row.id).values(
                attempts=attempts, due_at=now + timedelta(seconds=wait),
                last_error=reason[:ERROR_CHARS]))
        log.warning("mail %s (%s) not sent yet (attempt %d), again in %ds: %s", row.id,
                    row.kind, attempts, wait, reason)


@dataclass(frozen=True)
class _Claimed(Message):
    id: str = ""
    kind: str = ""
    created_at: datetime | None = None
    attempts: int = 0


def reason(exc: BaseException) -> str:
    """What went wrong, for a log: the server's answer or the socket's error (neither holds
    the password)."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:ERROR_CHARS]


# When: after the answer, or from a thread ---------------------------------------------------


@dataclass
class _Delivery:
    """One app's mail outboxes, and what delivers them after its answers."""

    courier: Courier
    outboxes: list[MailOutbox]


def register(app: Flask, outbox: MailOutbox) -> None:
    """Deliver this outbox's messages from this app (from its service's init_app)."""
    state = app.extensions.get(EXTENSION)
    if state is None:
        # What is queued within MAIL_DELIVERY_SECONDS goes over the same connection.
        courier = Courier("chaoshub-mail", float(app.config["MAIL_DELIVERY_SECONDS"]),
                          POLL_SECONDS, deliver_all)
        state = app.extensions[EXTENSION] = _Delivery(courier, [])
        courier.init_app(app)
    state.outboxes.append(outbox)


def deliver_all(now: datetime | None = None) -> bool:
    """Deliver what every outbox of this app holds that is due; False when one failed."""
    state = current_app.extensions.get(EXTENSION)
    ok = True
    for outbox in state.outboxes if state else []:
        try:
            outbox.deliver(now)
        except Exception as exc:  # a database away: the messages wait for the next round
            log.warning("mail of %s stays in its outbox until the next round: %s",
                        outbox.service, first_line(exc))
            ok = False
    return ok


def committed() -> None:
    """Have the messages a commit just queued delivered, as MAIL_DELIVERY_SECONDS says."""
    state = current_app.extensions.get(EXTENSION) if has_app_context() else None
    if state is not None:
        state.courier.committed()


def stop(app: Flask) -> None:
    """Stop this process's delivery thread and wait for its round to end."""
    state = app.extensions.get(EXTENSION)
    if state is not None:
        state.courier.stop()
