"""Orgs and their workspaces: making, reading, changing and deleting them, and finding them."""

from __future__ import annotations

import logging

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from chaoshub.auth import service as auth
from chaoshub.core import claims
from chaoshub.core.claims import UserClaim
from chaoshub.core.db import transaction
from chaoshub.core.errors import Conflict, Forbidden, ValidationFailed
from chaoshub.core.models import new_id
from chaoshub.dashboard import permissions, store, validation
from chaoshub.dashboard import search as finder
from chaoshub.dashboard.interface import interface
from chaoshub.dashboard.models import Org, OrgFormerName, OrgMember, Workspace, WorkspaceMember
from chaoshub.dashboard.permissions import Roles
from chaoshub.dashboard.public.access import (
    org_access,
    org_reader,
    readable,
    session_user,
    signed_in,
    workspace_access,
    workspace_view,
)
from chaoshub.dashboard.schemas import (
    Action,
    OrgView,
    OutsiderExecutions,
    SearchResults,
    Visibility,
    WorkspaceView,
)
from chaoshub.dashboard.store import SERVICE
from chaoshub.dashboard.writes import DashboardWrite, write

log = logging.getLogger(__name__)


# Orgs ----------------------------------------------------------------------------------------


def reserve_existing_names() -> list[str]:
    """Reserve with auth every org name, current or former, made before auth kept them all;
    the names another holder had taken already (not public: start-up runs it)."""
    with transaction(SERVICE) as session:
        names = dict(session.execute(select(Org.name_key, Org.id).where(~Org.personal)).all())
        names.update(session.execute(select(OrgFormerName.name_key, OrgFormerName.org_id)).all())
    return auth.reserve_org_names(names) if names else []


@interface.public
def create_org(claim: str, name: str, display_name: str = "") -> OrgView:
    """Create a collaborative org; its creator becomes its owner. `name` is its address, and
    `display_name` (spaces allowed) what pages show, when given."""
    user = session_user(claim)
    validation.check_org_name(name)
    display_name = validation.checked_display_name(display_name)
    org_id = new_id()
    # Auth keeps the names that usernames and orgs share: a sign-up cannot take this one now.
    auth.reserve_name(claim, name, org_id)
    try:
        with write(user.sub) as work:
            session = work.session
            if store.name_taken(session, name.lower()):
                raise Conflict(f"the name {name!r} is taken")
            org = Org(id=org_id, name=name, name_key=name.lower(), personal=False,
                      display_name=display_name)
            session.add(org)
            session.flush()
            session.add(OrgMember(org_id=org.id, account_id=user.sub, role="owner"))
            work.feed(org.id, "org.created",
                      f"{store.username(session, user)} created the org {name}")
            work.audit(org.id, "org.created",
                       {"name": name, **({"display_name": display_name} if display_name else {})})
            view = store.org_view(org, "owner", [],
                                  permissions.allowed_actions("owner", user, True))
            work.forget(*store.member_keys(session, org, user.sub))
    except Exception as exc:
        auth.release_names(claim, org_id)
        if isinstance(exc, IntegrityError):
            raise Conflict(f"the name {name!r} is taken") from exc
        raise
    return view


@interface.public(callers=("experiment",))
def list_orgs(claim: str) -> list[OrgView]:
    """The orgs the claim's user belongs to, or holds a role in one workspace of, each with the
    workspaces they may see."""
    user = org_reader(signed_in(claim))
    with transaction(SERVICE) as session:
        org_roles = dict(session.execute(select(OrgMember.org_id, OrgMember.role)
                                         .where(OrgMember.account_id == user.sub)).all())
        held = store.workspace_roles(session, user.sub)
        orgs = session.scalars(select(Org).where(Org.id.in_(set(org_roles) | set(held)))
                               .order_by(Org.personal.desc(), Org.name_key))
        views = []
        for org in orgs:
            roles = Roles(org.id, org_roles.get(org.id), held.get(org.id, {}))
            visible = readable(user, roles, org.workspaces)
            if user.workspace and not visible:
                continue  # a token kept to one workspace lists the org holding it, no other
            views.append(store.org_view(org, roles.org, visible,
                                        permissions.allowed_actions(roles.org, user, True)))
        return views


@interface.public(callers=("experiment",))  # its trends tab
def get_org(claim: str, org: str, action: Action = "read") -> OrgView:
    """The org (by any of its names) with the workspaces the claim may see, if it may `action`."""
    user = org_reader(claims.verify(claim))
    with transaction(SERVICE) as session:
        found, role, visible = org_access(user, store.find_org(session, org), action)
        former = [f.name for f in store.former_names(session, found.id)]
        return store.org_view(found, role, visible,
                              permissions.allowed_actions(role, user, True), former)


@interface.public
def update_org(
    claim: str,
    org: str,
    name: str | None = None,
    description: str | None = None,
    url: str | None = None,
    email: str | None = None,
) -> OrgView:
    """Rename or describe an org; None leaves a field as it is, "" clears url and email."""
    user = session_user(claim)
    problems = validation.description_problems(description, url, email)
    problem = None if name is None else validation.org_name_problem(name)
    if problem:
        problems.append({"pointer": "/name", "message": problem})
    if problems:
        raise ValidationFailed("the org cannot be changed", problems)
    try:
        with write(user.sub) as work:
            session = work.session
            found, _, _ = org_access(user, store.find_org(session, org), "change_settings")
            work.forget(*store.org_cache_keys(session, found))
            if name is not None and name != found.name:
                _rename(work, claim, user, found, name)
            changed = {}
            if description is not None and found.description != description.strip():
                found.description = changed["description"] = description.strip()
            if url is not None and found.url != (url.strip() or None):
                found.url = changed["url"] = url.strip() or None
            if email is not None and found.email != (email.strip() or None):
                found.email = changed["email"] = email.strip() or None
            if changed:
                work.audit(found.id, "org.settings_changed", changed)
            session.flush()
            work.forget(*store.org_cache_keys(session, found))
    except IntegrityError as exc:
        raise Conflict(f"the name {name!r} is taken") from exc
    return get_org(claim, found.name)


@interface.public
def delete_org(claim: str, org: str) -> None:
    """Delete an org with its workspaces (the experiment service deletes their experiments when
    it handles the `org.deleted` event)."""
    user = session_user(claim)
    with write(user.sub) as work:
        session = work.session
        found, _, _ = org_access(user, store.find_org(session, org), "delete_org")
        if found.personal:
            raise Forbidden("a personal org belongs to its account and cannot be deleted")
        org_id, workspace_ids = found.id, [ws.id for ws in found.workspaces]
        work.forget(*store.org_cache_keys(session, found))
        account_ids = set(session.scalars(select(OrgMember.account_id)
                                          .where(OrgMember.org_id == org_id)))
        account_ids |= set(session.scalars(select(WorkspaceMember.account_id).where(
            WorkspaceMember.workspace_id.in_(workspace_ids))))
        for account_id in account_ids:
            work.forget(*store.member_keys(session, found, account_id))
        session.execute(delete(OrgMember).where(OrgMember.org_id == org_id))
        session.execute(delete(OrgFormerName).where(OrgFormerName.org_id == org_id))
        # The audit log has no foreign key to the org: this entry outlives it.
        work.audit(org_id, "org.deleted", {"name": found.name})
        work.emit("org.deleted", ("org", org_id),
                  {"name": found.name, "workspace_ids": workspace_ids})
        session.delete(found)
    try:
        auth.release_names(claim, org_id)  # its names are free again, as they were before
    except Exception as exc:  # the org is gone; its names stay taken until an operator acts
        log.warning("the names of the deleted org %s stay reserved: %s", org_id, exc)


def _rename(work: DashboardWrite, claim: str, user: UserClaim, org: Org, name: str) -> None:
    if org.personal:
        raise Forbidden("a personal org carries its account's username and cannot be renamed")
    session, before, new_key = work.session, org.name, name.lower()
    if new_key != org.name_key:
        if store.name_taken(session, new_key, by_other_than=org.id):
            raise Conflict(f"the name {name!r} is taken")
        # The former name stays the org's (old URLs lead to it), the new one is reserved too.
        auth.reserve_name(claim, name, org.id)
        session.execute(delete(OrgFormerName).where(OrgFormerName.name_key == new_key))
        session.add(OrgFormerName(name_key=org.name_key, name=org.name, org_id=org.id))
    org.name, org.name_key = name, new_key
    work.feed(org.id, "org.renamed", f"{store.username(session, user)} renamed {before} to {name}")
    work.audit(org.id, "org.renamed", {"from": before, "to": name})


# Workspaces ----------------------------------------------------------------------------------


@interface.public
def create_workspace(
    claim: str, org: str, name: str, visibility: Visibility = "private",
    outsider_executions: OutsiderExecutions = "none",
) -> WorkspaceView:
    """Add a workspace to an org (owners and maintainers)."""
    user = session_user(claim)
    problems = validation.workspace_problems(name, visibility, outsider_executions)
    if problems:
        raise ValidationFailed("the workspace cannot be created", problems)
    try:
        with write(user.sub) as work:
            session = work.session
            found, role, _ = org_access(user, store.find_org(session, org), "change_settings")
            if store.find_workspace(found, name):
                raise Conflict(f"{found.name} already has a workspace named {name!r}")
            workspace = Workspace(name=name, name_key=name.lower(), visibility=visibility,
                                  outsider_executions=outsider_executions)
            found.workspaces.append(workspace)
            session.flush()
            work.feed(found.id, "workspace.created",
                      f"{store.username(session, user)} created the workspace {name}",
                      workspace.id)
            work.audit(found.id, "workspace.created",
                       {"workspace": name, "visibility": visibility,
                        "outsider_executions": outsider_executions})
            work.forget(*store.org_cache_keys(session, found))
            view = workspace_view(user, role, workspace, found)
    except IntegrityError as exc:
        raise Conflict(f"a workspace named {name!r} already exists") from exc
    return view


@interface.public
def get_workspace(claim: str, org: str, workspace: str, action: Action = "read") -> WorkspaceView:
    """The workspace if the claim may `action` there, with the reader's role in its org."""
    user = claims.verify(claim)
    with transaction(SERVICE) as session:
        found, ws, role = workspace_access(session, user, org, workspace, action)
        return workspace_view(user, role, ws, found)


@interface.public
def update_workspace(
    claim: str,
    org: str,
    workspace: str,
    name: str | None = None,
    visibility: Visibility | None = None,
    outsider_executions: OutsiderExecutions | None = None,
) -> WorkspaceView:
    """Rename a workspace or change who sees it and its executions; None leaves a field."""
    user = session_user(claim)
    problems = validation.workspace_problems(name, visibility, outsider_executions)
    if problems:
        raise ValidationFailed("the workspace cannot be changed", problems)
    try:
        with write(user.sub) as work:
            session = work.session
            found, ws, role = workspace_access(session, user, org, workspace, "change_settings")
            work.forget(*store.org_cache_keys(session, found))
            if name is not None and name.lower() != ws.name_key:
                if store.find_workspace(found, name):
                    raise Conflict(f"{found.name} already has a workspace named {name!r}")
            _workspace_changes(work, user, found, ws, name, visibility, outsider_executions)
            if name is not None:
                ws.name, ws.name_key = name, name.lower()
            if visibility is not None:
                ws.visibility = visibility
            if outsider_executions is not None:
                ws.outsider_executions = outsider_executions
            session.flush()
            work.forget(*store.org_cache_keys(session, found))
            view = workspace_view(user, role, ws, found)
    except IntegrityError as exc:
        raise Conflict(f"a workspace named {name!r} already exists") from exc
    return view


@interface.public
def delete_workspace(claim: str, org: str, workspace: str) -> None:
    """Delete a workspace (the experiment service deletes its experiments when it handles the
    `workspace.deleted` event)."""
    user = session_user(claim)
    with write(user.sub) as work:
        session = work.session
        found, ws, _ = workspace_access(session, user, org, workspace, "change_settings")
        work.forget(*store.org_cache_keys(session, found))
        work.audit(found.id, "workspace.deleted", {"workspace": ws.name})
        work.emit("workspace.deleted", ("workspace", ws.id),
                  {"org_id": found.id, "name": ws.name})
        found.workspaces.remove(ws)


def _workspace_changes(
    work: DashboardWrite, user: UserClaim, org: Org, ws: Workspace, name: str | None,
    visibility: str | None, outsider_executions: str | None,
) -> None:
    """Tell the feed and the audit log, before they are made, the changes an update brings."""
    if name is not None and name != ws.name:
        work.feed(org.id, "workspace.renamed",
                  f"{store.username(work.session, user)} renamed {ws.name} to {name}", ws.id)
        work.audit(org.id, "workspace.renamed",
                   {"workspace_id": ws.id, "from": ws.name, "to": name})
    if visibility is not None and visibility != ws.visibility:
        work.audit(org.id, "workspace.visibility_changed",
                   {"workspace": name or ws.name, "from": ws.visibility, "to": visibility})
    if outsider_executions is not None and outsider_executions != ws.outsider_executions:
        work.audit(org.id, "workspace.settings_changed",
                   {"workspace": name or ws.name, "outsider_executions":
                    {"from": ws.outsider_executions, "to": outsider_executions}})


# Search --------------------------------------------------------------------------------------


@interface.public(callers=("experiment",))
def search(claim: str, q: str, limit: int = 10) -> SearchResults:
    """Users, orgs and workspaces whose names start with `q`, as far as the claim may see."""
    user = claims.verify(claim)
    with transaction(SERVICE) as session:
        return finder.search(session, user, q, limit)
