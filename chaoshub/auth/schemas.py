"""The plain data the auth service hands to routes and other services."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict


class AccountView(BaseModel):
    """An account as others may see it: never a password hash."""

    model_config = ConfigDict(frozen=True)

    id: str
    username: str
    display_name: str
    created_at: datetime


class SessionGrant(BaseModel):
    """A new sign-in session: the cookie's secret value and when it ends."""

    model_config = ConfigDict(frozen=True)

    token: str
    expires_at: datetime
    account: AccountView
