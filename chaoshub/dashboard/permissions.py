"""Who may do what in an org and its workspaces: the one permission matrix, and what outsiders
may read.

A role is held in an org (it counts in every workspace of the org) or in one workspace. In a
workspace the role that counts is the higher of the two: a workspace role raises an org role
there and never lowers it, and it admits someone outside the org to that workspace alone (the
org is visible to them only through it: not its other private workspaces, its members or its
settings). The org's own actions (its members, settings, audit log, deletion) go by the org role.

The matrix, in a workspace by the role that counts there, in the org by the org role:

                          owner  maintainer  member  viewer  outsider
    read                    x        x         x       x     public/internal workspaces only
    write experiments       x        x         x
    run experiments         x        x         x
    list members            x        x         x       x
    manage org members      x
    manage ws members       x        x          (in a workspace: up to their own role)
    change settings         x        x          (org settings by org role; a workspace's by
                                                 the role there, deleting it included)
    delete the org          x
    manage environments     x        x          (run environments' values and secrets, and
                                                 running in a protected one)
    engage the kill switch  x        x         x       x
    release it              x        x
"""

from __future__ import annotations

from dataclasses import dataclass, field

from chaoshub.core.claims import UserClaim
from chaoshub.core.errors import Forbidden, NotFound, Unauthorized
from chaoshub.dashboard.schemas import Action, Role, Visibility

ROLES: tuple[Role, ...] = ("owner", "maintainer", "member", "viewer")

# The roles allowed each action in an org and its workspaces. People without a role (outsiders)
# may only read, and only the workspaces whose visibility opens them to everyone or to all
# signed-in users.
PERMISSIONS: dict[Action, frozenset[Role]] = {
    "read": frozenset(ROLES),
    "write": frozenset({"owner", "maintainer", "member"}),  # add and change experiments
    "run": frozenset({"owner", "maintainer", "member"}),
    "list_members": frozenset(ROLES),
    "manage_members": frozenset({"owner"}),  # the org's members and invitations
    # A workspace's own members: its maintainers, and the org's maintainers in every workspace.
    "manage_workspace_members": frozenset({"owner", "maintainer"}),
    "change_settings": frozenset({"owner", "maintainer"}),  # org and workspace settings
    "delete_org": frozenset({"owner"}),
    # A workspace's run environments and their secrets; running in a protected one too.
    "manage_environments": frozenset({"owner", "maintainer"}),
    # A workspace's webhooks and Slack notifications (where its news goes, with its secrets).
    "manage_webhooks": frozenset({"owner", "maintainer"}),
    # Any member may stop every run of the org, as with an emergency stop; restarting is
    # for those who run the org.
    "engage_kill_switch": frozenset(ROLES),
    "release_kill_switch": frozenset({"owner", "maintainer"}),
}

# Running the org itself needs a signed-in session: a leaked API token cannot take an org over.
SESSION_ONLY: frozenset[Action] = frozenset({"manage_members", "manage_workspace_members",
                                            "change_settings", "delete_org"})
# What an API token needs to read an org's own data (the orgs, their workspace lists, members
# and org-wide feeds), and its audit log (with sign-in and token addresses); a session has
# every right.
ORGS_READ_SCOPE, AUDIT_READ_SCOPE = "orgs:read", "audit:read"
# Higher is more: the order the roles are listed in, owner first.
RANK: dict[Role, int] = {role: len(ROLES) - i for i, role in enumerate(ROLES)}


def effective_role(org_role: Role | None, workspace_role: Role | None) -> Role | None:
    """The role that counts in a workspace: the higher of the org role and the workspace role."""
    held = [role for role in (org_role, workspace_role) if role is not None]
    return max(held, key=RANK.__getitem__) if held else None


@dataclass(frozen=True)
class Roles:
    """The roles one account holds in one org: in the org itself, and in some of its workspaces."""

    org_id: str
    org: Role | None = None
    workspaces: dict[str, Role] = field(default_factory=dict)

    def in_workspace(self, workspace_id: str) -> Role | None:
        """The role that counts in one workspace of the org (None: an outsider there)."""
        return effective_role(self.org, self.workspaces.get(workspace_id))


def is_session(user: UserClaim) -> bool:
    """True when the claim comes from a signed-in browser session, not an API token."""
    return user.is_session


def may_read(visibility: Visibility | str, role: Role | None, user: UserClaim) -> bool:
    """True when someone with `role` (None: an outsider) may see a workspace."""
    if role is not None or visibility == "public":
        return True
    return visibility == "internal" and not user.anonymous


def allowed_actions(role: Role | None, user: UserClaim, readable: bool) -> list[Action]:
    """What `user`, holding `role`, may do where they can (or cannot) read."""
    if not readable:
        return []
    if role is None:
        return ["read"]
    return [action for action, roles in PERMISSIONS.items()
            if role in roles and (action not in SESSION_ONLY or user.is_session)]


def check(user: UserClaim, role: Role | None, readable: bool, action: Action, what: str) -> None:
    """Raise unless `user` may `action`: NotFound when they may not even see `what`."""
    if not readable:
        raise NotFound(f"no such {what}")
    if action == "read":
        return
    if role not in PERMISSIONS[action]:
        if user.anonymous:
            raise Unauthorized("sign in first")
        raise Forbidden(f"your role in this org does not allow this ({action.replace('_', ' ')})")
    if action in SESSION_ONLY and not user.is_session:
        raise Forbidden("this needs a signed-in session, not an API token")


def check_scope(user: UserClaim, scope: str) -> None:
    """Raise Forbidden unless the claim's credential carries `scope` (visitors need none)."""
    if not user.anonymous and not user.allows(scope):
        raise Forbidden(f"the credential lacks the {scope} scope")


def check_org_wide(user: UserClaim) -> None:
    """Raise Forbidden for an API token kept to one workspace: the org's own data is outside."""
    if user.workspace:
        raise Forbidden("this API token is restricted to one workspace")


def check_audit(user: UserClaim, role: Role | None) -> None:
    """Raise unless `user` may read the audit log of an org where they hold `role`."""
    if user.anonymous:
        raise Unauthorized("sign in first")
    check_scope(user, AUDIT_READ_SCOPE)
    check_org_wide(user)
    if role != "owner":
        raise Forbidden("only the org's owners read its audit log")


def grantable(role: Role | None) -> list[Role]:
    """The roles someone holding `role` in a workspace may give there, highest first."""
    return [r for r in ROLES if role is not None and RANK[r] <= RANK[role]]


def check_grant(manager_role: Role | None, *roles: Role | None) -> None:
    """Raise Forbidden unless every role given, changed or taken is within `manager_role`.

    So a workspace maintainer cannot make anyone (themselves included) an owner there, nor
    change or remove an owner.
    """
    for role in roles:
        if role is not None and (manager_role is None or RANK[role] > RANK[manager_role]):
            raise Forbidden(f"your role here ({manager_role}) cannot give or take the role {role}")
