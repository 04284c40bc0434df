"""The plain data the auth service hands to routes and other services."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from chaoshub.core import claims
from chaoshub.core.schemas import Frozen

Scope = claims.Scope  # the one list of scopes is core's: every service checks them


class AccountView(Frozen):
    """An account as others may see it: never a password hash."""

    id: str
    username: str
    display_name: str
    email: str | None = None
    email_verified: bool = False
    avatar_url: str | None = None
    created_at: datetime
    has_password: bool = False


class SessionGrant(Frozen):
    """A new sign-in session: the cookie's secret value and when it ends."""

    token: str
    expires_at: datetime
    account: AccountView


class TokenView(Frozen):
    """An API token as its owner sees it in lists: never the secret."""

    id: str
    name: str
    hint: str
    scopes: list[str]
    workspace: str | None
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None
    last_used_ip: str | None
    expired: bool


class TokenPage(Frozen):
    """A page of an account's tokens, newest first, and the cursor of the next page."""

    tokens: list[TokenView]
    next_cursor: str | None = None


class NewToken(Frozen):
    """A token just made: the secret, shown this once, and its listing."""

    secret: str
    token: TokenView


class Caller(Frozen):
    """Who makes a request, and with which rights."""

    id: str
    username: str
    display_name: str
    credential: Literal["session", "token"]
    scopes: list[str]
    workspace: str | None = None


class IdentityView(Frozen):
    """A provider identity linked to an account."""

    id: str
    provider: str
    subject: str
    email: str | None
    linked_at: datetime


class ProviderProfile(Frozen):
    """What a provider told us about the person who just signed in there."""

    provider: str
    subject: str
    username_hint: str
    display_name: str = ""
    email: str | None = None
    email_verified: bool = False
    avatar_url: str | None = None


class EmailAddress(Frozen):
    """An account's own email address, whether it is verified, and whether the hub sends mail."""

    email: str | None
    verified: bool
    mail_enabled: bool
    notifications: bool = False  # mail me my workspaces' notifications (once verified)
