"""The dashboard service's public interface: orgs, workspaces, and who may do what where."""

from __future__ import annotations

import re

from sqlalchemy import select

from chaoshub.core import claims
from chaoshub.core.cache import cache
from chaoshub.core.claims import UserClaim
from chaoshub.core.db import transaction
from chaoshub.core.errors import Conflict, Forbidden, NotFound, Unauthorized, ValidationFailed
from chaoshub.core.transport import ServiceInterface
from chaoshub.dashboard.models import Org, OrgMember, Profile, Workspace
from chaoshub.dashboard.schemas import Action, OrgView, Role, WorkspaceRef

SERVICE = "dashboard"
interface = ServiceInterface(SERVICE)

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{1,38}$")
# Org names become the first segment of URLs: none may shadow a route of the hub.
RESERVED_NAMES = frozenset({
    "about", "account", "admin", "api", "auth", "docs", "help", "internal", "login", "logout",
    "new", "orgs", "settings", "signin", "signout", "signup", "static", "status", "tokens",
})
WRITERS: frozenset[str] = frozenset({"owner", "maintainer", "member"})
PERSONAL_WORKSPACES = (("Personal", "private"), ("Public", "public"))


@interface.public
def create_personal_org(claim: str, name: str) -> OrgView:
    """Make the profile and personal org (workspaces Personal and Public) of a new account."""
    user = _signed_in(claim)
    problem = org_name_problem(name)
    if problem:
        raise ValidationFailed(f"{name!r} cannot name an org", [{"field": "name",
                                                                 "message": problem}])
    with transaction(SERVICE) as session:
        if session.get(Profile, user.sub) is not None:
            raise Conflict("this account already has its profile and personal org")
        if session.scalar(select(Org.id).where(Org.name_key == name.lower())):
            raise Conflict(f"the name {name!r} is taken")
        session.add(Profile(account_id=user.sub, display_name=user.name))
        org = Org(name=name, name_key=name.lower(), personal=True)
        org.workspaces = [
            Workspace(name=ws, name_key=ws.lower(), visibility=visibility)
            for ws, visibility in PERSONAL_WORKSPACES
        ]
        session.add(org)
        session.flush()
        session.add(OrgMember(org_id=org.id, account_id=user.sub, role="owner"))
        view = _org_view(org, "owner", org.workspaces)
    cache().forget(*(_name_key(org.name_key, ws.name_key) for ws in org.workspaces))
    return view


@interface.public
def list_orgs(claim: str) -> list[OrgView]:
    """The orgs the claim's user belongs to, each with its workspaces."""
    user = _signed_in(claim)
    with transaction(SERVICE) as session:
        rows = session.execute(
            select(Org, OrgMember.role)
            .join(OrgMember, OrgMember.org_id == Org.id)
            .where(OrgMember.account_id == user.sub)
            .order_by(Org.personal.desc(), Org.name_key)
        ).all()
        return [_org_view(org, role, org.workspaces) for org, role in rows]


@interface.public
def authorize(claim: str, org: str, workspace: str, action: Action) -> WorkspaceRef:
    """The workspace named `org`/`workspace` if the claim may `action` there.

    NotFound when the caller may not even see it (so private workspaces stay secret),
    Forbidden when they may see it but not do this.
    """
    user = claims.verify(claim)
    found = cache().remember(
        _name_key(org.lower(), workspace.lower()), lambda: _load_by_name(org, workspace)
    )
    return _decide(user, found, action)


@interface.public
def authorize_workspace(claim: str, workspace_id: str, action: Action) -> WorkspaceRef:
    """The workspace with this id if the claim may `action` there (see `authorize`)."""
    user = claims.verify(claim)
    found = cache().remember(cache().key(SERVICE, "ws", workspace_id),
                             lambda: _load_by_id(workspace_id))
    return _decide(user, found, action)


def org_name_problem(name: str) -> str | None:
    """Why `name` cannot name an org, or None when it can."""
    if not NAME.match(name or ""):
        return "2 to 39 letters, digits, '-' or '_', starting with a letter or digit"
    if name.lower() in RESERVED_NAMES:
        return "this name is reserved by the hub"
    return None


def _signed_in(claim: str) -> UserClaim:
    user = claims.verify(claim)
    if user.anonymous:
        raise Unauthorized("sign in first")
    return user


def _decide(user: UserClaim, found: dict | None, action: Action) -> WorkspaceRef:
    if found is None:
        raise NotFound("no such workspace")
    ref = WorkspaceRef(**found)
    role = None if user.anonymous else _role(ref.org_id, user.sub)
    if not _may_read(ref.visibility, role, user):
        raise NotFound("no such workspace")
    if user.workspace and user.workspace != ref.id:
        raise Forbidden("this API token is restricted to another workspace")
    if action == "write" and role not in WRITERS:
        raise Forbidden("you may read this workspace but not change it")
    return ref


def _may_read(visibility: str, role: Role | None, user: UserClaim) -> bool:
    if role is not None or visibility == "public":
        return True
    return visibility == "internal" and not user.anonymous


def _role(org_id: str, account_id: str) -> Role | None:
    def load() -> str | None:
        with transaction(SERVICE) as session:
            return session.scalar(
                select(OrgMember.role).where(
                    OrgMember.org_id == org_id, OrgMember.account_id == account_id
                )
            )

    return cache().remember(cache().key(SERVICE, "role", org_id, account_id), load)


def _load_by_name(org: str, workspace: str) -> dict | None:
    with transaction(SERVICE) as session:
        row = session.execute(
            select(Workspace, Org)
            .join(Org, Workspace.org_id == Org.id)
            .where(Org.name_key == org.lower(), Workspace.name_key == workspace.lower())
        ).first()
        return _ref(*row).model_dump() if row else None


def _load_by_id(workspace_id: str) -> dict | None:
    with transaction(SERVICE) as session:
        ws = session.get(Workspace, workspace_id)
        return _ref(ws, ws.org).model_dump() if ws else None


def _name_key(org_key: str, workspace_key: str) -> str:
    return cache().key(SERVICE, "ws-name", org_key, workspace_key)


def _ref(workspace: Workspace, org: Org) -> WorkspaceRef:
    return WorkspaceRef(
        id=workspace.id,
        name=workspace.name,
        visibility=workspace.visibility,
        org_id=org.id,
        org_name=org.name,
    )


def _org_view(org: Org, role: Role | None, workspaces: list[Workspace]) -> OrgView:
    return OrgView(
        id=org.id,
        name=org.name,
        personal=org.personal,
        role=role,
        workspaces=[_ref(ws, org) for ws in workspaces],
    )
