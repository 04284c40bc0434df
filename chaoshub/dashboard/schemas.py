"""The plain data the dashboard service hands to routes and other services."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

Visibility = Literal["private", "internal", "public"]
Role = Literal["owner", "maintainer", "member", "viewer"]
Action = Literal["read", "write"]


class WorkspaceRef(BaseModel):
    """A workspace and its org, as other services refer to them."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    visibility: Visibility
    org_id: str
    org_name: str


class OrgView(BaseModel):
    """An org with the workspaces the reader may see, and the reader's role in it."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    personal: bool
    role: Role | None
    workspaces: list[WorkspaceRef]
