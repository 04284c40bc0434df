"""The shapes of the dashboard API's requests and answers, as its OpenAPI document shows them."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field

from chaoshub.auth import service as auth
from chaoshub.core.openapi import Body, shown_as
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
from chaoshub.dashboard.validation import NAME, NAME_RULE


def _follows_the_name_rule(name: str) -> str:
    if not NAME.match(name):
        raise ValueError(NAME_RULE)
    return name


Name = Annotated[str, AfterValidator(_follows_the_name_rule),
                 Field(description=NAME_RULE, json_schema_extra={"pattern": NAME.pattern})]


class NewOrg(Body):
    """An org to create; its creator becomes its owner."""

    name: Name


class OrgChanges(Body):
    """What to change of an org (a field left out stays as it is; null or "" clears the
    description, address or email): a new name keeps the old URLs working."""

    name: Name = None  # type: ignore[assignment]
    description: str | None = None
    url: str | None = None
    email: str | None = None


class NewWorkspace(Body):
    """A workspace to add to an org."""

    name: Name
    visibility: Visibility = "private"
    outsider_executions: OutsiderExecutions = "none"


class WorkspaceChanges(Body):
    """What to change of a workspace; a field left out stays as it is."""

    name: Name = None  # type: ignore[assignment]
    visibility: Visibility = None  # type: ignore[assignment]
    outsider_executions: OutsiderExecutions = None  # type: ignore[assignment]


class NewMember(Body):
    """Someone to give a role, by username (member when no role is named)."""

    username: str
    role: Role | None = None


class RoleChange(Body):
    """A member's new role."""

    role: Role


class NewInvitation(Body):
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
    format: Literal["json", "jsonl"] | None = Field(None, description=(
        "json (the default): a page of entries; jsonl: the whole log, one entry a line"))


class TokenRequest(Body):
    """A new API token: its name, scopes, lifetime, and the one workspace it may be kept to."""

    name: str = ""
    scopes: list[str] = Field(..., description="any of " + ", ".join(auth.SCOPES)
                              + ", or the presets " + ", ".join(auth.SCOPE_PRESETS))
    expires_in_days: int | None = Field(None, ge=1)
    workspace: str | None = Field(None, description="org/workspace")
    current_password: str | None = Field(
        None, max_length=1024,
        description="needed when the session signed in more than two hours ago")


NewToken = shown_as(auth.TokenView, "NewToken", secret=(str, Field(
    ..., description="shown this once: keep it")))


class TokenList(BaseModel):
    """A page of the caller's tokens, newest first, never their secrets."""

    tokens: list[auth.TokenView]
    next_cursor: str | None
