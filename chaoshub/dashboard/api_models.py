"""The shapes of the dashboard API's requests and answers, as its OpenAPI document shows them."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from chaoshub.auth import service as auth
from chaoshub.core.openapi import Query, shown_as
from chaoshub.core.paging import PageQuery
from chaoshub.dashboard.schemas import (
    AuditView,
    InvitationView,
    MemberView,
    OrgView,
    OutsiderExecutions,
    Role,
    Visibility,
    WorkspaceMemberView,
    WorkspaceRef,
)


class Fields(BaseModel):
    """A body of named fields: unknown ones are refused (400)."""

    model_config = ConfigDict(extra="forbid")


class NewOrg(Fields):
    """An org to create; its creator becomes its owner."""

    name: str


class OrgChanges(Fields):
    """What to change of an org: a new name keeps the old URLs working."""

    name: str | None = None
    description: str | None = None
    url: str | None = None
    email: str | None = None


class NewWorkspace(Fields):
    """A workspace to add to an org."""

    name: str
    visibility: Visibility | None = None
    outsider_executions: OutsiderExecutions | None = None


class WorkspaceChanges(Fields):
    """What to change of a workspace."""

    name: str | None = None
    visibility: Visibility | None = None
    outsider_executions: OutsiderExecutions | None = None


class NewMember(Fields):
    """Someone to give a role, by username."""

    username: str
    role: Role | None = None


class RoleChange(Fields):
    """A member's new role."""

    role: Role


class NewInvitation(Fields):
    """An invitation to one account (username), or a link anyone holding it may accept."""

    username: str | None = None
    role: Role | None = None
    expires_in_days: int | None = Field(None, ge=1)


class OrgList(BaseModel):
    """The orgs the caller belongs to."""

    orgs: list[OrgView]


class WorkspaceList(BaseModel):
    """An org's workspaces the caller may see."""

    workspaces: list[WorkspaceRef]


class MemberList(BaseModel):
    """A page of an org's members, owners first, and the cursor of the next one."""

    members: list[MemberView]
    next_cursor: str | None


class WorkspaceMemberList(BaseModel):
    """A page of the people given a role in a workspace, and the cursor of the next one."""

    members: list[WorkspaceMemberView]
    next_cursor: str | None


class InvitationList(BaseModel):
    """A page of pending invitations, newest first, and the cursor of the next one."""

    invitations: list[InvitationView]
    next_cursor: str | None


CreatedInvitation = shown_as(
    InvitationView, "CreatedInvitation",
    token=(str | None, Field(None, description="a link's secret, shown this once")),
    url=(str | None, None))


class AuditLog(BaseModel):
    """A page of audit entries, oldest first, each chained to the one before it by its hash."""

    entries: list[AuditView]
    next_cursor: str | None


class AuditQuery(PageQuery):
    """Filters of the audit log, its format, and (for JSON; JSON lines are the whole log) paging."""

    event: str | None = Field(None, description="a prefix of the event's name")
    since: str | None = Field(None, description="YYYY-MM-DD")
    until: str | None = Field(None, description="YYYY-MM-DD, included")
    format: Literal["json", "jsonl"] | None = None


class SearchQuery(Query):
    """A name prefix to look for."""

    q: str = ""
    limit: int = Field(10, ge=1)


class TokenRequest(BaseModel):
    """A new API token: its name, scopes, lifetime, and the one workspace it may be kept to."""

    name: str = ""
    scopes: list[str] = Field(..., description="any of " + ", ".join(auth.SCOPES)
                              + ", or the presets " + " and ".join(auth.SCOPE_PRESETS))
    expires_in_days: int | None = Field(None, ge=1)
    workspace: str | None = Field(None, description="org/workspace")


NewToken = shown_as(auth.TokenView, "NewToken", secret=(str, Field(
    ..., description="shown this once: keep it")))


class TokenList(BaseModel):
    """A page of the caller's tokens, newest first, never their secrets."""

    tokens: list[auth.TokenView]
    next_cursor: str | None
