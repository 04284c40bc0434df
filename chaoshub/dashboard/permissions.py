"""Who may do what in an org: the one permission matrix, and what outsiders may read."""

from __future__ import annotations

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
    "manage_members": frozenset({"owner"}),
    "change_settings": frozenset({"owner", "maintainer"}),  # org and workspace settings
    "delete_org": frozenset({"owner"}),
}

# Running the org itself needs a signed-in session: a leaked API token cannot take an org over.
SESSION_ONLY: frozenset[Action] = frozenset({"manage_members", "change_settings", "delete_org"})


def is_session(user: UserClaim) -> bool:
    """True when the claim comes from a signed-in browser session, not an API token."""
    return not user.anonymous and "*" in user.scopes


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
            if role in roles and (action not in SESSION_ONLY or is_session(user))]


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
    if action in SESSION_ONLY and not is_session(user):
        raise Forbidden("this needs a signed-in session, not an API token")


def check_audit(user: UserClaim, role: Role | None) -> None:
    """Raise unless `user` may read the audit log of an org where they hold `role`."""
    if user.anonymous:
        raise Unauthorized("sign in first")
    if role != "owner":
        raise Forbidden("only the org's owners read its audit log")
