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


class InvitationView(BaseModel):
    """A pending (or answered) invitation into an org."""

    model_config = ConfigDict(frozen=True)

    id: str
    org_id: str
    org_name: str
    role: Role
    kind: Literal["user", "link"]
    invitee: str | None = None  # the username, for an invitation to one account
    invited_by: str
    state: Literal["pending", "accepted", "declined", "revoked"]
    created_at: datetime
    expires_at: datetime


class NewInvitation(BaseModel):
    """A new invitation, with the link's secret for a link invitation: shown this once."""

    model_config = ConfigDict(frozen=True)

    invitation: InvitationView
    token: str | None = None


class ActivityView(BaseModel):
    """One entry of an activity feed."""

    model_config = ConfigDict(frozen=True)

    id: int
    org_id: str
    org_name: str
    workspace_id: str | None = None
    workspace_name: str | None = None
    actor_id: str
    actor: str
    kind: str
    summary: str
    created_at: datetime


class ActivityPage(BaseModel):
    """A page of a feed, newest first, and the cursor of the next page (None: no more)."""

    model_config = ConfigDict(frozen=True)

    entries: list[ActivityView]
    next_cursor: str | None = None


class AuditView(BaseModel):
    """One entry of an org's audit log, with the hashes that chain it."""

    model_config = ConfigDict(frozen=True)

    id: int
    org_id: str
    actor_id: str
    actor: str
    event: str
    details: dict
    created_at: datetime
    prev_hash: str
    hash: str


class ChainBreak(BaseModel):
    """The first entry of an org's audit chain that does not hold together."""

    model_config = ConfigDict(frozen=True)

    org_id: str
    org_name: str | None
    entry_id: int
    reason: str


class SearchHit(BaseModel):
    """A user, org or workspace whose name starts with what was searched."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["user", "org", "workspace"]
    name: str
    url: str
    detail: str = ""


class SearchResults(BaseModel):
    """What a search found, by kind."""

    model_config = ConfigDict(frozen=True)

    users: list[SearchHit] = []
    orgs: list[SearchHit] = []
    workspaces: list[SearchHit] = []
