"""Links auth sends by mail (verify an address, reset a password): their secrets, of which only
a hash is kept, and the mail outbox they go through."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from chaoshub.auth.models import Account, EmailToken, MailOutboxEntry
from chaoshub.core import mail
from chaoshub.core.errors import Gone, NotFound, ValidationFailed
from chaoshub.core.models import utcnow

VERIFY, RESET = "verify", "reset"
# The prefixes make a leaked link easy to find and scrub (core/logs.py takes them out of logs).
PREFIXES = {VERIFY: "chverify_", RESET: "chreset_"}
LIFETIMES = {VERIFY: timedelta(hours=24), RESET: timedelta(hours=1)}
outbox = mail.MailOutbox("auth", MailOutboxEntry)


def address(value: str) -> str | None:
    """The normalized form of an email address; None for an empty one; ValidationFailed when
    it is not an address mail can go to."""
    value = (value or "").strip()
    if not value:
        return None
    try:
        # The form only: a lookup of the domain would make a request wait on DNS.
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValidationFailed("the address cannot be used",
                               [{"pointer": "/email", "message": str(exc)}]) from exc


def make(session: Session, account: Account, purpose: str, email: str) -> str:
    """A new link's secret for `account`, kept hashed; the account's unused links of the same
    purpose stop working (only the newest mail counts)."""
    now = utcnow()
    void(session, account.id, purpose)
    secret = PREFIXES[purpose] + secrets.token_urlsafe(32)
    session.add(EmailToken(token_hash=token_hash(secret), account_id=account.id,
                           purpose=purpose, email=email, created_at=now,
                           expires_at=now + LIFETIMES[purpose]))
    return secret


def void(session: Session, account_id: str, purpose: str) -> None:
    """The account's unused links of `purpose` stop working."""
    session.execute(update(EmailToken).where(
        EmailToken.account_id == account_id, EmailToken.purpose == purpose,
        EmailToken.used_at.is_(None)).values(used_at=utcnow()))


def find(session: Session, purpose: str, secret: str) -> EmailToken:
    """The unused, unexpired link behind `secret`: NotFound for one that never was, Gone for
    one used or expired (the pages say which)."""
    row = None
    if isinstance(secret, str) and secret.startswith(PREFIXES[purpose]) and len(secret) < 200:
        row = session.get(EmailToken, token_hash(secret))
    if row is None or row.purpose != purpose:
        raise NotFound("this link is not valid: copy the whole link from the mail")
    if row.used_at is not None:
        raise Gone("this link was used already, or a newer one replaced it")
    if row.expires_at <= utcnow():
        raise Gone("this link has expired")
    return row


def consume(session: Session, row: EmailToken) -> None:
    """Use the link up; Gone when another request used it first."""
    now = utcnow()
    used = session.execute(update(EmailToken).where(
        EmailToken.token_hash == row.token_hash, EmailToken.used_at.is_(None),
        EmailToken.expires_at > now).values(used_at=now)).rowcount
    if used != 1:
        raise Gone("this link was used already, or a newer one replaced it")


def accounts_for_reset(session: Session, login: str, limit: int = 5) -> list[Account]:
    """The accounts a reset request names: by username, or by their verified address."""
    key = (login or "").strip().lower()
    if not key or "\x00" in key:
        return []
    by_name = select(Account).where(Account.username_key == key)
    found = list(session.scalars(by_name))
    if "@" in key:
        try:
            key = validate_email(key, check_deliverability=False).normalized.lower()
        except EmailNotValidError:
            return found
        by_address = select(Account).where(Account.email_key == key,
                                           Account.email_verified_at.is_not(None)).limit(limit)
        found += [a for a in session.scalars(by_address) if a not in found]
    return found[:limit]


def token_hash(secret: str) -> str:
    """The SHA-256 of a link's secret: what the table keeps."""
    return hashlib.sha256(secret.encode()).hexdigest()
