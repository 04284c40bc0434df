"""The auth service's tables: accounts and their sign-in sessions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, MetaData, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from chaoshub.core.events import OutboxAckColumns, OutboxEventColumns
from chaoshub.core.mail import MailOutboxColumns
from chaoshub.core.models import NAMING_CONVENTION, UTCDateTime, new_id, utcnow


class Base(DeclarativeBase):
    """Metadata of the auth database only."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Account(Base):
    """A person who can sign in."""

    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    username: Mapped[str] = mapped_column(String(40))
    # Lower-cased username: names are unique whatever their case.
    username_key: Mapped[str] = mapped_column(String(40), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(320))
    # When the address was shown to be the account's (its link followed, or a provider's
    # email_verified); None while it is not. Changing the address clears it.
    email_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The address lower-cased: how a password reset finds the account it names.
    email_key: Mapped[str | None] = mapped_column(String(320), index=True)
    # The account asked for its workspaces' email notifications (to its verified address).
    email_notifications: Mapped[bool] = mapped_column(Boolean, default=False)
    avatar_url: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class SignInSession(Base):
    """A browser session; the cookie holds a random token, the table only its hash."""

    __tablename__ = "sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ApiToken(Base):
    """An API token: its hash only, its scopes, and where and when it was last used."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The start of the secret, so people can tell their tokens apart (never enough to use).
    hint: Mapped[str] = mapped_column(String(16))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    workspace_id: Mapped[str | None] = mapped_column(String(36))
    workspace_label: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_used_ip: Mapped[str | None] = mapped_column(String(45))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # None for the tokens people make; "run" for one auth made for a run on the hub (its Job
    # reports with it), which no listing shows and which goes when the run ends.
    purpose: Mapped[str | None] = mapped_column(String(20))
    run_id: Mapped[str | None] = mapped_column(String(36), index=True)


class Identity(Base):
    """A sign-in identity at an OAuth/OIDC provider, linked to an account."""

    __tablename__ = "identities"
    __table_args__ = (UniqueConstraint("provider", "subject"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    provider: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(320))
    linked_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Name(Base):
    """A name of the hub's one namespace of URLs (/{name}): a username, or an org's name or
    former name (dashboard reserves those here before it uses them)."""

    __tablename__ = "auth_names"

    name_key: Mapped[str] = mapped_column(String(40), primary_key=True)  # lower-cased
    kind: Mapped[str] = mapped_column(String(10))  # "account" or "org"
    owner_id: Mapped[str] = mapped_column(String(36), index=True)


class OutboxEvent(OutboxEventColumns, Base):
    """An event of auth's (account security events), kept until dashboard acknowledges it."""

    __tablename__ = "auth_outbox_events"


class OutboxAck(OutboxAckColumns, Base):
    """A subscriber's acknowledgement of one of auth's events."""

    __tablename__ = "auth_outbox_acks"


class EmailToken(Base):
    """A link sent by mail: to verify an address, or to reset a password. Only its hash is
    kept; it works once, before it expires, and (to verify) while the address is unchanged."""

    __tablename__ = "email_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    purpose: Mapped[str] = mapped_column(String(10))  # "verify" or "reset"
    email: Mapped[str] = mapped_column(String(320))  # the address it was sent to
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class MailOutboxEntry(MailOutboxColumns, Base):
    """A message of auth's (verification and reset links) waiting for the SMTP server."""

    __tablename__ = "auth_mail_outbox"
