"""The plain data the dashboard service hands to routes and other services."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

Visibility = Literal["private", "internal", "public"]
# What people outside the org see of a workspace's executions.
OutsiderExecutions = Literal["none", "status", "full"]
Role = Literal["owner", "maintainer", "member", "viewer"]
Action = Literal[
    "read", "write", "run", "list_members", "manage_members", "change_settings", "delete_org"
]


class WorkspaceRef(BaseModel):
    """A workspace and its org, as other services refer to them."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    visibility: Visibility
    org_id: str
    org_name: str
    outsider_executions: OutsiderExecutions = "none"


class WorkspaceView(WorkspaceRef):
    """A workspace as its reader sees it: with the reader's role and what they may do there."""

    role: Role | None = None
    allowed: list[Action] = []


class OrgView(BaseModel):
    """An org with the workspaces the reader may see, and the reader's role in it."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    personal: bool
    role: Role | None
    workspaces: list[WorkspaceRef]
    description: str = ""
    url: str | None = None
    email: str | None = None
    former_names: list[str] = []
    allowed: list[Action] = []


class MemberView(BaseModel):
    """One member of an org and their role."""

    model_config = ConfigDict(frozen=True)

    account_id: str
    username: str
    display_name: str
    role: Role
    joined_at: datetime
