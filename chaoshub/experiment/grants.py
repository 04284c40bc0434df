"""What the caller may do in a workspace, asked of dashboard once per request and decided here.

Every check of the experiment service reads the grant's `allows` and `executions`; role names
stay dashboard's. A grant asked by names is kept under its id too, so that a request that
finds the workspace by the URL and then by an experiment's workspace asks once.
"""

from __future__ import annotations

from flask import request

from chaoshub.core import request_memo
from chaoshub.core.errors import Forbidden, NotFound
from chaoshub.dashboard import service as dashboard
from chaoshub.dashboard.service import Action, KillSwitch, OrgView, WorkspaceGrant


def by_id(claim: str, workspace_id: str) -> WorkspaceGrant:
    """The caller's grant in the workspace with this id (see dashboard's `grant`)."""
    return request_memo.remember(("grant", claim, workspace_id),
                                 lambda: dashboard.grant(claim, workspace_id=workspace_id))


def by_name(claim: str, org: str, workspace: str) -> WorkspaceGrant:
    """The caller's grant in the workspace named `org`/`workspace` (see dashboard's `grant`)."""
    found = request_memo.remember(("grant", claim, org, workspace),
                                  lambda: dashboard.grant(claim, org, workspace))
    request_memo.keep(("grant", claim, found.id), found)
    return found


def org_of(claim: str, org: str) -> OrgView:
    """The org with the workspaces the caller may see (see dashboard's `get_org`), asked once
    a request."""
    return request_memo.remember(("org", claim, org), lambda: dashboard.get_org(claim, org))


def require(grant: WorkspaceGrant, action: Action) -> WorkspaceGrant:
    """The grant, if it allows `action`; Forbidden otherwise."""
    if not grant.allows(action):
        raise Forbidden(f"your role in this org does not allow this ({action.replace('_', ' ')})")
    return grant


def executions_shown(grant: WorkspaceGrant, missing: str = "no such execution") -> bool:
    """True when the caller sees executions in full, False for their status only; NotFound
    (with `missing`) when they may see none."""
    if grant.executions == "none":
        raise NotFound(missing)
    return grant.executions == "full"


def kill_switch_of(claim: str, org: str) -> KillSwitch | None:
    """The org's kill switch for the banner of its pages, for those who hold a role there: from
    the grant a workspace's page asks for anyway, else from dashboard."""
    args = request.view_args or {}
    workspace = args.get("workspace")
    if workspace and str(args.get("org", "")).lower() == org.lower():
        grant = by_name(claim, org, workspace)
        return grant.kill_switch if grant.role is not None else None
    return dashboard.get_kill_switch(claim, org)
