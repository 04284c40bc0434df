"""Who the caller is and what they may do: the checks every dashboard function starts with, and
the grants and authorizations other services ask for."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from chaoshub.core import claims
from chaoshub.core.cache import cache
from chaoshub.core.claims import UserClaim
from chaoshub.core.db import transaction
from chaoshub.core.errors import Forbidden, NotFound, Unauthorized
from chaoshub.dashboard import permissions, store
from chaoshub.dashboard.interface import interface
from chaoshub.dashboard.models import Org, OrgMember, Workspace
from chaoshub.dashboard.permissions import Roles
from chaoshub.dashboard.schemas import (
    Action,
    KillSwitch,
    Role,
    RunPolicy,
    WorkspaceGrant,
    WorkspaceRef,
    WorkspaceView,
)
from chaoshub.dashboard.store import SERVICE

# The caller ----------------------------------------------------------------------------------


def signed_in(claim: str) -> UserClaim:
    """The verified claim of a signed-in caller (a session or an API token)."""
    user = claims.verify(claim)
    if user.anonymous:
        raise Unauthorized("sign in first")
    return user


def session_user(claim: str) -> UserClaim:
    """The verified claim of a signed-in browser session: what runs an org needs one."""
    user = signed_in(claim)
    if not user.is_session:
        raise Forbidden("this needs a signed-in session, not an API token")
    return user


def org_reader(user: UserClaim) -> UserClaim:
    """`user`, if their credential may read orgs' own data."""
    permissions.check_scope(user, permissions.ORGS_READ_SCOPE)
    return user


def account(user: UserClaim) -> str | None:
    """The caller's account id, None for a visitor."""
    return None if user.anonymous else user.sub


def roles(user: UserClaim, org_id: str) -> Roles | None:
    """The caller's roles in an org (None for a visitor)."""
    return None if user.anonymous else store.roles(org_id, user.sub)


# Orgs and workspaces -------------------------------------------------------------------------


def readable(user: UserClaim, held: Roles | None, workspaces: list[Workspace]) -> list[Workspace]:
    """The workspaces the caller, holding `held`, may see."""
    return [ws for ws in workspaces
            if permissions.may_read(ws.visibility, held.in_workspace(ws.id) if held else None,
                                    user)
            and (not user.workspace or user.workspace == ws.id)]


def org_access(
    user: UserClaim, org: Org | None, action: Action
) -> tuple[Org, Role | None, list[Workspace]]:
    """The org, the caller's role in it and the workspaces they see, if they may `action`."""
    # An org is visible to its members, and to whoever may see one of its workspaces; what
    # is the org's own (members, settings) goes by the org role alone.
    if org is None:
        raise NotFound("no such org")
    held = roles(user, org.id)
    role = held.org if held else None
    visible = readable(user, held, org.workspaces)
    # A token kept to one workspace sees the org holding it through that workspace alone.
    member = role is not None and not user.workspace
    permissions.check(user, role, member or bool(visible), action, "org")
    if action != "read":
        permissions.check_org_wide(user)
    return org, role, visible


def workspace_access(
    session: Session, user: UserClaim, org: str, workspace: str, action: Action
) -> tuple[Org, Workspace, Role | None]:
    """The org, the workspace and the caller's role there, if they may `action` there."""
    found = store.find_org(session, org)
    ws = store.find_workspace(found, workspace) if found else None
    if ws is None:
        raise NotFound("no such workspace")
    # In a workspace the role that counts is the higher of the org and workspace roles.
    held = roles(user, found.id)
    role = held.in_workspace(ws.id) if held else None
    permissions.check(user, role, bool(readable(user, held, [ws])), action, "workspace")
    return found, ws, role


def workspace_view(user: UserClaim, role: Role | None, ws: Workspace, org: Org) -> WorkspaceView:
    """A workspace as the caller, holding `role` there, sees it."""
    return WorkspaceView(**store.ref(ws, org).model_dump(), role=role,
                         allowed=permissions.allowed_actions(role, user, True))


# What other services ask -----------------------------------------------------------------------


@interface.public(callers=("experiment",))
def grant(claim: str, org: str = "", workspace: str = "", workspace_id: str = ""
          ) -> WorkspaceGrant:
    """What the claim may do in the workspace `workspace_id`, or else named `org`/`workspace`.

    NotFound when the caller may not even see it, Forbidden for an API token kept to another
    workspace; otherwise the grant, whose `allowed` may hold no more than "read".
    """
    user = claims.verify(claim)
    # Worked out from cached entries only, so kept until any of them changes: what the caller
    # holds is in the key, not who they are by name or until when.
    key = ("grant", user.sub, user.scopes, user.workspace, org, workspace, workspace_id)
    found = cache().derived(key, lambda: _grant(user, org, workspace, workspace_id))
    if "write" in found.allowed and user.is_session:
        # Where a page offers to move things: read afresh, it is not among the cached entries.
        with transaction(SERVICE) as session:
            return found.model_copy(update={
                "move_to": _writable_workspaces(session, user, except_id=found.id)})
    return found


def _grant(user: UserClaim, org: str, workspace: str, workspace_id: str) -> WorkspaceGrant:
    found, held = (store.workspace_by_id(workspace_id, account(user)) if workspace_id
                   else store.workspace_by_name(org, workspace, account(user)))
    ref = _decide(user, found, held, "read")
    role = held.in_workspace(ref.id) if held else None
    allowed = permissions.allowed_actions(role, user, True)
    safety = store.run_safety(ref.id)
    return WorkspaceGrant(**ref.model_dump(), role=role, allowed=allowed,
                          executions="full" if role else ref.outsider_executions,
                          run_policy=RunPolicy(**safety["run_policy"]),
                          kill_switch=KillSwitch(**safety["kill_switch"]))


@interface.public
def authorize(claim: str, org: str, workspace: str, action: Action) -> WorkspaceRef:
    """The workspace named `org`/`workspace` if the claim may `action` there.

    NotFound when the caller may not even see it (so private workspaces stay secret),
    Forbidden when they may see it but not do this. A former org name still resolves.
    """
    user = claims.verify(claim)
    found, held = store.workspace_by_name(org, workspace, account(user))
    return _decide(user, found, held, action)


@interface.public
def authorize_workspace(claim: str, workspace_id: str, action: Action) -> WorkspaceRef:
    """The workspace with this id if the claim may `action` there (see `authorize`)."""
    user = claims.verify(claim)
    found, held = store.workspace_by_id(workspace_id, account(user))
    return _decide(user, found, held, action)


def _decide(user: UserClaim, found: dict | None, held: Roles | None, action: Action
            ) -> WorkspaceRef:
    if found is None:
        raise NotFound("no such workspace")
    ref = WorkspaceRef(**found)
    role = held.in_workspace(ref.id) if held else None
    permissions.check(user, role, permissions.may_read(ref.visibility, role, user), "read",
                      "workspace")
    if user.workspace and user.workspace != ref.id:
        raise Forbidden("this API token is restricted to another workspace")
    permissions.check(user, role, True, action, "workspace")
    return ref


def _writable_workspaces(session: Session, user: UserClaim, except_id: str
                         ) -> list[WorkspaceRef]:
    # Workspace by workspace: a role may be held in one workspace and not in its org.
    org_roles = dict(session.execute(select(OrgMember.org_id, OrgMember.role)
                                     .where(OrgMember.account_id == user.sub)).all())
    held = store.workspace_roles(session, user.sub)
    orgs = session.scalars(select(Org).where(Org.id.in_(set(org_roles) | set(held)))
                           .order_by(Org.personal.desc(), Org.name_key))
    found = []
    for org in orgs:
        org_held = Roles(org.id, org_roles.get(org.id), held.get(org.id, {}))
        found += [store.ref(ws, org) for ws in org.workspaces if ws.id != except_id
                  and org_held.in_workspace(ws.id) in permissions.PERMISSIONS["write"]]
    return found
