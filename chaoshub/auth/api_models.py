"""The shapes of the auth API's requests and answers, as its OpenAPI document shows them."""

from __future__ import annotations

from pydantic import BaseModel, Field

from chaoshub.auth.schemas import TokenView
from chaoshub.auth.service import SCOPE_PRESETS, SCOPES
from chaoshub.core.openapi import shown_as


class TokenRequest(BaseModel):
    """A new API token: its name, scopes, lifetime, and the one workspace it may be kept to."""

    name: str = ""
    scopes: list[str] = Field(..., description="any of " + ", ".join(SCOPES)
                              + ", or the presets " + " and ".join(SCOPE_PRESETS))
    expires_in_days: int | None = Field(None, ge=1)
    workspace: str | None = Field(None, description="org/workspace")


NewToken = shown_as(TokenView, "NewToken", secret=(str, Field(
    ..., description="shown this once: keep it")))


class TokenList(BaseModel):
    """The caller's tokens, never their secrets."""

    tokens: list[TokenView]
