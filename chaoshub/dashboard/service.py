"""The dashboard service's public interface: orgs, workspaces, members (of orgs and of single
workspaces), invitations, activity, audit, search, and who may do what."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from chaoshub.auth import service as auth
from chaoshub.core import claims, events, paging
from chaoshub.core.cache import cache
from chaoshub.core.claims import UserClaim
from chaoshub.core.db import transaction
from chaoshub.core.errors import Conflict, Forbidden, NotFound, Unauthorized, ValidationFailed
from chaoshub.core.models import new_id
from chaoshub.core.transport import ServiceInterface
from chaoshub.dashboard import activity, audit, invitations, permissions, store, validation
from chaoshub.dashboard import search as finder
from chaoshub.dashboard.models import (
    Invitation,
    Org,
    OrgFormerName,
    OrgMember,
    OutboxAck,
    OutboxEvent,
    Profile,
    Workspace,
    WorkspaceMember,
)
from chaoshub.dashboard.permissions import (  # noqa: F401  (grantable: part of this module's face)
    Roles,
    grantable,
)
from chaoshub.dashboard.schemas import (
    Action,
    ActivityPage,
    AuditPage,
    AuditView,
    ChainBreak,
    InvitationPage,
    InvitationView,
    MemberPage,
    MemberView,
    NewInvitation,
    OrgView,
    Role,
    SearchResults,
    WorkspaceGrant,
    WorkspaceMemberPage,
    WorkspaceMemberView,
    WorkspaceRef,
    WorkspaceView,
)
from chaoshub.dashboard.validation import (  # noqa: F401  (part of this module's face)
    NAME,
    NAME_RULE,
    OUTSIDER_EXECUTIONS,
    RESERVED_NAMES,
    VISIBILITIES,
    org_name_problem,
)

SERVICE = store.SERVICE
AUDIT_LISTING = "audit log"  # the listing's name, signed into its cursors
MEMBERS_LISTING = "org members"
WORKSPACE_MEMBERS_LISTING = "workspace members"
INVITATIONS_LISTING = "org invitations"
MY_INVITATIONS_LISTING = "my invitations"
interface = ServiceInterface(SERVICE)
log = logging.getLogger(__name__)
# Experiment deletes the experiments of the workspaces dashboard deletes.
EVENT_SUBSCRIBERS = ("experiment",)
outbox = events.Outbox(SERVICE, OutboxEvent, OutboxAck, EVENT_SUBSCRIBERS)
# Auth's account events this service writes into audit logs, under the names the logs show.
ACCOUNT_EVENT_TYPES = tuple(f"account.{e.removeprefix('auth.')}" for e in audit.ACCOUNT_EVENTS)
# All of auth's events this service handles (handle_account_event), in one subscription.
AUTH_EVENT_TYPES = ("account.created", *ACCOUNT_EVENT_TYPES)

PERSONAL_WORKSPACES = (("Personal", "private"), ("Public", "public"))


# Orgs --------------------------------------------------------------------------------------


def create_personal_org(session: Session, event: events.Event) -> None:
    """Make a new account's profile and personal org (workspaces Personal and Public), from
    auth's `account.created` event, in the session of its delivery."""
    account_id, name = event.subject.id, event.payload["username"]
    # Accepting an invitation before this event arrived may have made the profile already.
    if session.get(Profile, account_id) is None:
        session.add(Profile(account_id=account_id, username=name,
                            display_name=event.payload["display_name"]))
    if store.name_taken(session, name.lower()):
        # Only an org older than auth's registry of names can hold it; no retry would mend it.
        log.error("account %s has no personal org: the name %r is an org's", account_id, name)
        return
    org = Org(name=name, name_key=name.lower(), personal=True)
    org.workspaces = [Workspace(name=ws, name_key=ws.lower(), visibility=visibility)
                      for ws, visibility in PERSONAL_WORKSPACES]
    session.add(org)
    session.flush()
    session.add(OrgMember(org_id=org.id, account_id=account_id, role="owner"))
    keys = store.org_cache_keys(session, org) + store.member_keys(session, org, account_id)
    events.after_commit(session, lambda: cache().forget(*keys))


def handle_account_event(session: Session, event: events.Event) -> None:
    """Apply one of auth's account events (ACCOUNT_EVENT_TYPES), in the session of its delivery."""
    # One subscription for all of them keeps their order: the personal org comes before the
    # sign-in that followed the sign-up is written into its audit log.
    if event.type == "account.created":
        create_personal_org(session, event)
    else:
        audit_account_event(session, event)


def reserve_existing_names() -> list[str]:
    """Reserve with auth every org name, current or former, made before auth kept them all;
    the names another holder had taken already (not public: start-up runs it)."""
    with transaction(SERVICE) as session:
        names = dict(session.execute(select(Org.name_key, Org.id).where(~Org.personal)).all())
        names.update(session.execute(select(OrgFormerName.name_key, OrgFormerName.org_id)).all())
    return auth.reserve_org_names(names) if names else []


@interface.public
def create_org(claim: str, name: str) -> OrgView:
    """Create a collaborative org; its creator becomes its owner."""
    user = _session(claim)
    validation.check_org_name(name)
    org_id = new_id()
    # Auth keeps the names that usernames and orgs share: a sign-up cannot take this one now.
    auth.reserve_name(claim, name, org_id)
    try:
        with transaction(SERVICE) as session:
            if store.name_taken(session, name.lower()):
                raise Conflict(f"the name {name!r} is taken")
            org = Org(id=org_id, name=name, name_key=name.lower(), personal=False)
            session.add(org)
            session.flush()
            session.add(OrgMember(org_id=org.id, account_id=user.sub, role="owner"))
            actor = store.username(session, user)
            activity.record(session, org.id, user.sub, "org.created",
                            f"{actor} created the org {name}")
            audit.append(session, org.id, user.sub, "org.created", {"name": name})
            view = store.org_view(org, "owner", [],
                                  permissions.allowed_actions("owner", user, True))
            keys = store.member_keys(session, org, user.sub)
    except Exception as exc:
        auth.release_names(claim, org_id)
        if isinstance(exc, IntegrityError):
            raise Conflict(f"the name {name!r} is taken") from exc
        raise
    cache().forget(*keys)
    return view


@interface.public
def list_orgs(claim: str) -> list[OrgView]:
    """The orgs the claim's user belongs to, or holds a role in one workspace of, each with the
    workspaces they may see."""
    user = _org_reader(_signed_in(claim))
    with transaction(SERVICE) as session:
        org_roles = dict(session.execute(select(OrgMember.org_id, OrgMember.role)
                                         .where(OrgMember.account_id == user.sub)).all())
        held = store.workspace_roles(session, user.sub)
        orgs = session.scalars(select(Org).where(Org.id.in_(set(org_roles) | set(held)))
                               .order_by(Org.personal.desc(), Org.name_key))
        views = []
        for org in orgs:
            roles = Roles(org.id, org_roles.get(org.id), held.get(org.id, {}))
            visible = _readable(user, roles, org.workspaces)
            if user.workspace and not visible:
                continue  # a token kept to one workspace lists the org holding it, no other
            views.append(store.org_view(org, roles.org, visible,
                                        permissions.allowed_actions(roles.org, user, True)))
        return views


@interface.public
def get_org(claim: str, org: str, action: Action = "read") -> OrgView:
    """The org (by any of its names) with the workspaces the claim may see, if it may `action`."""
    user = _org_reader(claims.verify(claim))
    with transaction(SERVICE) as session:
        found, role, visible = _org_access(user, store.find_org(session, org), action)
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
    user = _session(claim)
    problems = validation.description_problems(description, url, email)
    if name is not None and not NAME.match(name):
        problems.append({"pointer": "/name", "message": NAME_RULE})
    elif name is not None and name.lower() in RESERVED_NAMES:
        problems.append({"pointer": "/name", "message": "this name is reserved by the hub"})
    if problems:
        raise ValidationFailed("the org cannot be changed", problems)
    try:
        with transaction(SERVICE) as session:
            found, _, _ = _org_access(user, store.find_org(session, org),
                                      "change_settings")
            keys = store.org_cache_keys(session, found)
            before = found.name
            if name is not None and name != found.name:
                _rename(session, claim, found, name)
                _org_renamed(session, user, found, before)
            changed = {}
            if description is not None and found.description != description.strip():
                found.description = changed["description"] = description.strip()
            if url is not None and found.url != (url.strip() or None):
                found.url = changed["url"] = url.strip() or None
            if email is not None and found.email != (email.strip() or None):
                found.email = changed["email"] = email.strip() or None
            if changed:
                audit.append(session, found.id, user.sub, "org.settings_changed", changed)
            session.flush()
            keys += store.org_cache_keys(session, found)
    except IntegrityError as exc:
        raise Conflict(f"the name {name!r} is taken") from exc
    cache().forget(*keys)
    return get_org(claim, found.name)


@interface.public
def delete_org(claim: str, org: str) -> None:
    """Delete an org with its workspaces (the experiment service deletes their experiments when
    it handles the `org.deleted` event)."""
    user = _session(claim)
    with transaction(SERVICE) as session:
        found, _, _ = _org_access(user, store.find_org(session, org), "delete_org")
        if found.personal:
            raise Forbidden("a personal org belongs to its account and cannot be deleted")
        org_id, workspace_ids = found.id, [ws.id for ws in found.workspaces]
        keys = store.org_cache_keys(session, found)
        account_ids = set(session.scalars(select(OrgMember.account_id)
                                          .where(OrgMember.org_id == org_id)))
        account_ids |= set(session.scalars(select(WorkspaceMember.account_id).where(
            WorkspaceMember.workspace_id.in_(workspace_ids))))
        for account_id in account_ids:
            keys += store.member_keys(session, found, account_id)
        session.execute(delete(OrgMember).where(OrgMember.org_id == org_id))
        session.execute(delete(OrgFormerName).where(OrgFormerName.org_id == org_id))
        # The audit log has no foreign key to the org: this entry outlives it.
        audit.append(session, org_id, user.sub, "org.deleted", {"name": found.name})
        outbox.emit(session, "org.deleted", user.sub, ("org", org_id),
                    {"name": found.name, "workspace_ids": workspace_ids})
        session.delete(found)
    cache().forget(*keys)
    try:
        auth.release_names(claim, org_id)  # its names are free again, as they were before
    except Exception as exc:  # the org is gone; its names stay taken until an operator acts
        log.warning("the names of the deleted org %s stay reserved: %s", org_id, exc)


# Workspaces --------------------------------------------------------------------------------


@interface.public
def create_workspace(
    claim: str, org: str, name: str, visibility: str = "private",
    outsider_executions: str = "none",
) -> WorkspaceView:
    """Add a workspace to an org (owners and maintainers)."""
    user = _session(claim)
    problems = validation.workspace_problems(name, visibility, outsider_executions)
    if problems:
        raise ValidationFailed("the workspace cannot be created", problems)
    try:
        with transaction(SERVICE) as session:
            found, role, _ = _org_access(user, store.find_org(session, org),
                                         "change_settings")
            if store.find_workspace(found, name):
                raise Conflict(f"{found.name} already has a workspace named {name!r}")
            workspace = Workspace(name=name, name_key=name.lower(), visibility=visibility,
                                  outsider_executions=outsider_executions)
            found.workspaces.append(workspace)
            session.flush()
            activity.record(session, found.id, user.sub, "workspace.created",
                            f"{store.username(session, user)} created the workspace {name}",
                            workspace.id)
            audit.append(session, found.id, user.sub, "workspace.created",
                         {"workspace": name, "visibility": visibility,
                          "outsider_executions": outsider_executions})
            keys = store.org_cache_keys(session, found)
            view = _workspace_view(user, role, workspace, found)
    except IntegrityError as exc:
        raise Conflict(f"a workspace named {name!r} already exists") from exc
    cache().forget(*keys)
    return view


@interface.public
def get_workspace(claim: str, org: str, workspace: str, action: Action = "read") -> WorkspaceView:
    """The workspace if the claim may `action` there, with the reader's role in its org."""
    user = claims.verify(claim)
    with transaction(SERVICE) as session:
        found, ws, role = _workspace_access(session, user, org, workspace, action)
        return _workspace_view(user, role, ws, found)


@interface.public
def update_workspace(
    claim: str,
    org: str,
    workspace: str,
    name: str | None = None,
    visibility: str | None = None,
    outsider_executions: str | None = None,
) -> WorkspaceView:
    """Rename a workspace or change who sees it and its executions; None leaves a field."""
    user = _session(claim)
    problems = validation.workspace_problems(name, visibility, outsider_executions)
    if problems:
        raise ValidationFailed("the workspace cannot be changed", problems)
    try:
        with transaction(SERVICE) as session:
            found, ws, role = _workspace_access(session, user, org, workspace,
                                                "change_settings")
            keys = store.org_cache_keys(session, found)
            if name is not None and name.lower() != ws.name_key:
                if store.find_workspace(found, name):
                    raise Conflict(f"{found.name} already has a workspace named {name!r}")
            _workspace_changes(session, user, found, ws, name, visibility, outsider_executions)
            if name is not None:
                ws.name, ws.name_key = name, name.lower()
            if visibility is not None:
                ws.visibility = visibility
            if outsider_executions is not None:
                ws.outsider_executions = outsider_executions
            session.flush()
            keys += store.org_cache_keys(session, found)
            view = _workspace_view(user, role, ws, found)
    except IntegrityError as exc:
        raise Conflict(f"a workspace named {name!r} already exists") from exc
    cache().forget(*keys)
    return view


@interface.public
def delete_workspace(claim: str, org: str, workspace: str) -> None:
    """Delete a workspace (the experiment service deletes its experiments when it handles the
    `workspace.deleted` event)."""
    user = _session(claim)
    with transaction(SERVICE) as session:
        found, ws, _ = _workspace_access(session, user, org, workspace, "change_settings")
        keys = store.org_cache_keys(session, found)
        audit.append(session, found.id, user.sub, "workspace.deleted", {"workspace": ws.name})
        outbox.emit(session, "workspace.deleted", user.sub, ("workspace", ws.id),
                    {"org_id": found.id, "name": ws.name})
        found.workspaces.remove(ws)
    cache().forget(*keys)


# Members -----------------------------------------------------------------------------------


@interface.public
def list_members(claim: str, org: str) -> list[MemberView]:
    """The members of an org and their roles, to its members."""
    user = _org_reader(claims.verify(claim))
    with transaction(SERVICE) as session:
        found, _, _ = _org_access(user, store.find_org(session, org), "list_members")
        return store.members(session, found.id)


@interface.public
def page_members(claim: str, org: str, cursor: str | None = None,
                 limit: int | str | None = None) -> MemberPage:
    """A page of an org's members, owners first, then by username, to its members."""
    limit = paging.page_size(limit)
    user = _org_reader(claims.verify(claim))
    with transaction(SERVICE) as session:
        found, _, _ = _org_access(user, store.find_org(session, org), "list_members")
        members = store.members(session, found.id)
    shown, next_cursor = paging.page_of(
        members, lambda v: [permissions.ROLES.index(v.role), v.username.lower(), v.account_id],
        cursor, MEMBERS_LISTING, [found.id], limit)
    return MemberPage(members=shown, next_cursor=next_cursor)


@interface.public
def add_member(claim: str, org: str, username: str, role: str = "member") -> MemberView:
    """Give an account (by username) a role in an org (owners only)."""
    user = _session(claim)
    validation.check_role(role)
    with transaction(SERVICE) as session:
        found, _, _ = _org_access(user, store.find_org(session, org), "manage_members")
        _refuse_personal(found)
    account = auth.find_account(claim, username)
    with transaction(SERVICE) as session:
        found, _, _ = _org_access(user, store.find_org(session, org), "manage_members")
        if session.get(OrgMember, (found.id, account.id)) is not None:
            raise Conflict(f"{account.username} is already a member of {found.name}")
        profile = _profile(session, account)
        member = OrgMember(org_id=found.id, account_id=account.id, role=role)
        session.add(member)
        session.flush()
        activity.record(session, found.id, user.sub, "member.joined",
                        f"{store.username(session, user)} added {account.username} as {role}")
        audit.append(session, found.id, user.sub, "member.added",
                     {"username": account.username, "account_id": account.id, "role": role})
        view = store.member_view(member, profile)
        keys = store.member_keys(session, found, account.id)
    # A miss is cached too: forget it, or the new member would wait for it to expire.
    cache().forget(*keys)
    return view


@interface.public
def change_member_role(claim: str, org: str, username: str, role: str) -> MemberView:
    """Change a member's role; an org always keeps at least one owner."""
    user = _session(claim)
    validation.check_role(role)
    with transaction(SERVICE) as session:
        found, _, _ = _org_access(user, store.find_org(session, org), "manage_members")
        member, profile = _member(session, found, username)
        if member.role == "owner" and role != "owner" and store.owner_count(session, found.id) == 1:
            raise Conflict("an org needs an owner: make someone else owner first")
        if member.role != role:
            details = {"username": profile.username, "account_id": member.account_id,
                       "from": member.role, "to": role}
            if role not in permissions.PERMISSIONS["manage_members"]:
                # Their links would otherwise still make members, owners included.
                _revoke_invitations_of(session, found, member.account_id, details)
            audit.append(session, found.id, user.sub, "member.role_changed", details)
        member.role = role
        session.flush()
        view = store.member_view(member, profile)
        keys = store.member_keys(session, found, member.account_id)
    cache().forget(*keys)
    return view


@interface.public
def remove_member(claim: str, org: str, username: str) -> None:
    """Remove a member (owners), or leave an org; their access ends at once, their roles in
    the org's workspaces included."""
    user = _session(claim)
    with transaction(SERVICE) as session:
        found, _, _ = _org_access(user, store.find_org(session, org), "list_members")
        member, profile = _member(session, found, username)
        if member.account_id != user.sub:
            permissions.check(user, store.role(found.id, user.sub), True, "manage_members",
                              "org")
        if member.role == "owner" and store.owner_count(session, found.id) == 1:
            raise Conflict("the last owner cannot leave: make someone else owner first")
        session.delete(member)
        # Out of the org means out of all of it: a workspace role left behind would be a door
        # nobody remembers leaving open.
        dropped = store.drop_workspace_roles(session, found, member.account_id)
        left = member.account_id == user.sub
        actor = store.username(session, user)
        activity.record(session, found.id, user.sub, "member.left",
                        f"{actor} left {found.name}" if left
                        else f"{actor} removed {profile.username}")
        details = {"username": profile.username, "account_id": member.account_id,
                   "role": member.role, "left": left}
        if dropped:
            details["workspaces"] = dropped
        _revoke_invitations_of(session, found, member.account_id, details)
        audit.append(session, found.id, user.sub, "member.removed", details)
        keys = store.member_keys(session, found, member.account_id)
    # The cached roles are what every request checks: dropping them ends the access now.
    cache().forget(*keys)


# Workspace members -------------------------------------------------------------------------


@interface.public(callers=("experiment",))
def list_workspace_members(claim: str, org: str, workspace: str) -> list[WorkspaceMemberView]:
    """The people given a role in one workspace, to those who hold a role there."""
    user = _org_reader(claims.verify(claim))
    with transaction(SERVICE) as session:
        _, ws, _ = _workspace_access(session, user, org, workspace, "list_members")
        return store.workspace_members(session, ws)


@interface.public
def page_workspace_members(claim: str, org: str, workspace: str, cursor: str | None = None,
                           limit: int | str | None = None) -> WorkspaceMemberPage:
    """A page of the people given a role in one workspace, highest role first, then by name."""
    limit = paging.page_size(limit)
    user = _org_reader(claims.verify(claim))
    with transaction(SERVICE) as session:
        _, ws, _ = _workspace_access(session, user, org, workspace, "list_members")
        members = store.workspace_members(session, ws)
    shown, next_cursor = paging.page_of(
        members, lambda v: [permissions.ROLES.index(v.role), v.username.lower(), v.account_id],
        cursor, WORKSPACE_MEMBERS_LISTING, [ws.id], limit)
    return WorkspaceMemberPage(members=shown, next_cursor=next_cursor)


@interface.public
def add_workspace_member(
    claim: str, org: str, workspace: str, username: str, role: str = "member"
) -> WorkspaceMemberView:
    """Give an account (by username) a role in one workspace, up to the giver's own role there."""
    user = _session(claim)
    validation.check_role(role)
    with transaction(SERVICE) as session:
        found, _, _ = _workspace_access(session, user, org, workspace,
                                        "manage_workspace_members")
        _refuse_personal(found)
    account = auth.find_account(claim, username)
    with transaction(SERVICE) as session:
        found, ws, mine = _workspace_access(session, user, org, workspace,
                                            "manage_workspace_members")
        permissions.check_grant(mine, role)
        if session.get(WorkspaceMember, (ws.id, account.id)) is not None:
            raise Conflict(f"{account.username} has a role in {found.name}/{ws.name} already")
        profile = _profile(session, account)
        member = WorkspaceMember(workspace_id=ws.id, account_id=account.id, role=role)
        session.add(member)
        session.flush()
        activity.record(session, found.id, user.sub, "workspace.member_added",
                        f"{store.username(session, user)} added {account.username} to "
                        f"{ws.name} as {role}", ws.id, "members")
        audit.append(session, found.id, user.sub, "workspace.member_added",
                     {"workspace": ws.name, "workspace_id": ws.id,
                      "username": account.username, "account_id": account.id, "role": role})
        view = store.workspace_member_view(member, profile,
                                           store.org_role(session, found.id, account.id))
        keys = store.member_keys(session, found, account.id)
    # A miss is cached too: forget it, or the new member would wait for it to expire.
    cache().forget(*keys)
    return view


@interface.public
def change_workspace_member_role(
    claim: str, org: str, workspace: str, username: str, role: str
) -> WorkspaceMemberView:
    """Change someone's role in one workspace, within the changer's own role there."""
    user = _session(claim)
    validation.check_role(role)
    with transaction(SERVICE) as session:
        found, ws, mine = _workspace_access(session, user, org, workspace,
                                            "manage_workspace_members")
        member, profile = _workspace_member(session, found, ws, username)
        permissions.check_grant(mine, member.role, role)
        if member.role != role:
            activity.record(session, found.id, user.sub, "workspace.member_role_changed",
                            f"{store.username(session, user)} made {profile.username} "
                            f"{role} in {ws.name}", ws.id, "members")
            audit.append(session, found.id, user.sub, "workspace.member_role_changed",
                         {"workspace": ws.name, "workspace_id": ws.id,
                          "username": profile.username, "account_id": member.account_id,
                          "from": member.role, "to": role})
        member.role = role
        session.flush()
        view = store.workspace_member_view(member, profile,
                                           store.org_role(session, found.id, member.account_id))
        keys = store.member_keys(session, found, member.account_id)
    cache().forget(*keys)
    return view


@interface.public
def remove_workspace_member(claim: str, org: str, workspace: str, username: str) -> None:
    """Take someone's role in one workspace away (or give up one's own); it ends at once."""
    user = _session(claim)
    with transaction(SERVICE) as session:
        found, ws, mine = _workspace_access(session, user, org, workspace, "list_members")
        member, profile = _workspace_member(session, found, ws, username)
        left = member.account_id == user.sub
        if not left:
            permissions.check(user, mine, True, "manage_workspace_members", "workspace")
            permissions.check_grant(mine, member.role)
        session.delete(member)
        actor = store.username(session, user)
        activity.record(session, found.id, user.sub, "workspace.member_removed",
                        f"{actor} left {ws.name}" if left
                        else f"{actor} removed {profile.username} from {ws.name}",
                        ws.id, "members")
        audit.append(session, found.id, user.sub, "workspace.member_removed",
                     {"workspace": ws.name, "workspace_id": ws.id,
                      "username": profile.username, "account_id": member.account_id,
                      "role": member.role, "left": left})
        keys = store.member_keys(session, found, member.account_id)
    # The cached roles are what every request checks: dropping them ends the access now.
    cache().forget(*keys)


# Invitations -------------------------------------------------------------------------------


@interface.public
def create_invitation(
    claim: str, org: str, role: str = "member", username: str | None = None,
    expires_in_days: int | None = None,
) -> NewInvitation:
    """Invite one account by username, or make a single-use link (its secret shown once)."""
    user = _session(claim)
    validation.check_role(role)
    if expires_in_days is not None and not 1 <= expires_in_days <= invitations.MAX_DAYS:
        raise ValidationFailed("the invitation cannot be made", [{
            "pointer": "/expires_in_days",
            "message": f"from 1 to {invitations.MAX_DAYS} days"}])
    with transaction(SERVICE) as session:
        found, _, _ = _org_access(user, store.find_org(session, org), "manage_members")
        _refuse_personal(found)
    account = auth.find_account(claim, username) if username else None
    token = None if account else invitations.new_token()
    with transaction(SERVICE) as session:
        found, _, _ = _org_access(user, store.find_org(session, org), "manage_members")
        if account is not None:
            if session.get(OrgMember, (found.id, account.id)) is not None:
                raise Conflict(f"{account.username} is already a member of {found.name}")
            if any(i.invitee_id == account.id
                   for i in invitations.pending_for_org(session, found.id)):
                raise Conflict(f"{account.username} has an invitation already")
        created_at, expires_at = invitations.lifetime(expires_in_days)
        invitation = Invitation(
            org_id=found.id, role=role, invited_by=user.sub, created_at=created_at,
            invitee_id=account.id if account else None,
            invitee_username=account.username if account else None,
            token_hash=invitations.token_hash(token) if token else None,
            expires_at=expires_at)
        session.add(invitation)
        session.flush()
        view = invitations.view(session, invitation, found)
        audit.append(session, found.id, user.sub, "invitation.created", {
            "invitation_id": invitation.id, "kind": view.kind, "invitee": view.invitee,
            "role": role, "expires_at": view.expires_at.isoformat()})
    return NewInvitation(invitation=view, token=token)


@interface.public
def list_invitations(claim: str, org: str) -> list[InvitationView]:
    """The org's pending invitations (owners)."""
    user = claims.verify(claim)
    with transaction(SERVICE) as session:
        found, _, _ = _org_access(user, store.find_org(session, org), "manage_members")
        return [invitations.view(session, i, found)
                for i in invitations.pending_for_org(session, found.id)]


@interface.public
def page_invitations(claim: str, org: str, cursor: str | None = None,
                     limit: int | str | None = None) -> InvitationPage:
    """A page of the org's pending invitations (owners), newest first."""
    user = claims.verify(claim)
    limit = paging.page_size(limit)
    with transaction(SERVICE) as session:
        found, _, _ = _org_access(user, store.find_org(session, org), "manage_members")
        return _invitation_page(session, INVITATIONS_LISTING, [found.id], cursor, limit,
                                lambda after: invitations.pending_for_org(
                                    session, found.id, after, limit + 1), found)


@interface.public
def revoke_invitation(claim: str, org: str, invitation_id: str) -> None:
    """Withdraw a pending invitation (owners); its link stops working at once."""
    user = _session(claim)
    with transaction(SERVICE) as session:
        found, _, _ = _org_access(user, store.find_org(session, org), "manage_members")
        invitation = session.get(Invitation, invitation_id or "")
        if invitation is None or invitation.org_id != found.id or not invitations.answer(
                session, invitation, "revoked"):
            raise NotFound("no such pending invitation")
        audit.append(session, found.id, user.sub, "invitation.revoked", {
            "invitation_id": invitation.id, "invitee": invitation.invitee_username,
            "role": invitation.role})


@interface.public
def my_invitations(claim: str) -> list[InvitationView]:
    """The pending invitations addressed to the claim's account (a session's business)."""
    user = _session(claim)
    with transaction(SERVICE) as session:
        return [invitations.view(session, i)
                for i in invitations.pending_for_account(session, user.sub)]


@interface.public
def page_my_invitations(claim: str, cursor: str | None = None,
                        limit: int | str | None = None) -> InvitationPage:
    """A page of the pending invitations addressed to the claim's account, newest first."""
    user = _session(claim)
    limit = paging.page_size(limit)
    with transaction(SERVICE) as session:
        return _invitation_page(session, MY_INVITATIONS_LISTING, [user.sub], cursor, limit,
                                lambda after: invitations.pending_for_account(
                                    session, user.sub, after, limit + 1))


def _invitation_page(session: Session, name: str, filters: list, cursor: str | None,
                     limit: int, rows_after, org: Org | None = None) -> InvitationPage:
    # One more row than shown says whether a next page follows.
    after = paging.timed(paging.decode(cursor, name, filters)) if cursor else None
    rows = rows_after(after)
    views = [invitations.view(session, i, org) for i in rows[:limit]]
    if len(rows) <= limit:
        return InvitationPage(invitations=views)
    last = rows[limit - 1]
    return InvitationPage(invitations=views, next_cursor=paging.encode(
        name, filters, [last.created_at.isoformat(), last.id]))


@interface.public
def get_invitation(claim: str, token: str) -> InvitationView:
    """An open invitation by its link's secret (or, for its invitee, by its id)."""
    user = _signed_in(claim)
    with transaction(SERVICE) as session:
        return invitations.view(session, _open_invitation(session, user, token))


@interface.public
def accept_invitation(claim: str, token: str) -> InvitationView:
    """Join the org an invitation is for: by the link's secret, or by id for its invitee."""
    user = _session(claim)
    with transaction(SERVICE) as session:
        profile = session.get(Profile, user.sub)
    account = auth.get_account(claim) if profile is None else None
    with transaction(SERVICE) as session:
        invitation = _open_invitation(session, user, token)
        org = session.get(Org, invitation.org_id)
        if session.get(OrgMember, (org.id, user.sub)) is not None:
            raise Conflict(f"you are a member of {org.name} already")
        if not invitations.answer(session, invitation, "accepted"):
            raise NotFound("this invitation has been used, revoked or has expired")
        if account is not None:
            session.add(Profile(account_id=user.sub, username=account.username,
                                display_name=account.display_name))
        session.add(OrgMember(org_id=org.id, account_id=user.sub, role=invitation.role))
        session.flush()
        view = invitations.view(session, invitation, org)
        name = store.username(session, user)
        activity.record(session, org.id, user.sub, "invitation.accepted",
                        f"{name} accepted an invitation from {view.invited_by} "
                        f"and joined as {invitation.role}")
        audit.append(session, org.id, user.sub, "invitation.accepted", {
            "invitation_id": invitation.id, "kind": view.kind, "username": name,
            "role": invitation.role})
        audit.append(session, org.id, user.sub, "member.added", {
            "username": name, "account_id": user.sub, "role": invitation.role,
            "invitation_id": invitation.id})
        keys = store.member_keys(session, org, user.sub)
    # The miss cached before joining would otherwise hide the new membership until it expires.
    cache().forget(*keys)
    return view


@interface.public
def decline_invitation(claim: str, invitation_id: str) -> None:
    """Turn down an invitation addressed to the claim's account."""
    user = _session(claim)
    with transaction(SERVICE) as session:
        invitation = session.get(Invitation, invitation_id or "")
        if (invitation is None or invitation.invitee_id != user.sub
                or not invitations.is_open(invitation)
                or not invitations.answer(session, invitation, "declined")):
            raise NotFound("no such pending invitation")
        audit.append(session, invitation.org_id, user.sub, "invitation.declined", {
            "invitation_id": invitation.id, "username": invitation.invitee_username})


# Activity ----------------------------------------------------------------------------------


@interface.public(callers=("experiment",))
def record_activity(
    claim: str, org_id: str, kind: str, summary: str, workspace_id: str | None = None,
    scope: str | None = None, outsider_summary: str | None = None,
) -> None:
    """Add an entry to an org's feed, for a member of it (other services call this); an entry
    about an execution (scope "executions") may carry a summary without its actor."""
    user = _signed_in(claim)
    problems = []
    if not kind or not summary:
        problems.append({"pointer": "/kind", "message": "a kind and a summary are needed"})
    if scope is not None and scope not in activity.SCOPES:
        problems.append({"pointer": "/scope", "message": "one of " + ", ".join(activity.SCOPES)})
    if scope in ("readers", "executions") and not workspace_id:
        problems.append({"pointer": "/scope", "message": f"{scope!r} needs a workspace"})
    if problems:
        raise ValidationFailed("the activity cannot be recorded", problems)
    with transaction(SERVICE) as session:
        _recording_member(session, user, org_id, workspace_id)
        activity.record(session, org_id, user.sub, kind, summary, workspace_id, scope,
                        outsider_summary)


@interface.public
def activity_feed(claim: str, cursor: str | None = None, limit: int | None = None
                  ) -> ActivityPage:
    """The signed-in user's feed: their orgs' entries and their own, newest first."""
    user = _org_reader(_signed_in(claim))
    with transaction(SERVICE) as session:
        return activity.page(session, activity.user_feed(user), cursor, limit)


@interface.public
def org_activity(claim: str, org: str, cursor: str | None = None, limit: int | None = None
                 ) -> ActivityPage:
    """An org's feed, with only the entries the claim may see."""
    user = _org_reader(claims.verify(claim))
    with transaction(SERVICE) as session:
        found, role, _ = _org_access(user, store.find_org(session, org), "read")
        roles = _roles(user, found.id)
        return activity.page(session, activity.org_feed(user, found.id, role is not None,
                                                        list(roles.workspaces) if roles else []),
                             cursor, limit)


@interface.public(callers=("experiment",))
def workspace_activity(
    claim: str, org: str, workspace: str, cursor: str | None = None, limit: int | None = None
) -> ActivityPage:
    """A workspace's feed, to those who may read the workspace."""
    user = claims.verify(claim)
    with transaction(SERVICE) as session:
        _, ws, role = _workspace_access(session, user, org, workspace, "read")
        return activity.page(session, activity.workspace_feed(user, ws.id, role is not None),
                             cursor, limit)


# Audit -------------------------------------------------------------------------------------


def audit_account_event(session: Session, event: events.Event) -> None:
    """Write an account's security event (auth's, ACCOUNT_EVENT_TYPES) into the audit log of
    each of the account's orgs, in the session of its delivery."""
    name = "auth." + event.type.removeprefix("account.")
    problems = audit.account_event_problems(name, event.payload)
    if problems or not event.actor:
        # No retry would mend it: it is dropped, not left to hold back the events after it.
        log.error("event %s (%s) not written to the audit log: %s", event.id, event.type,
                  problems or "no actor")
        return
    # Every writer takes the chains in one order: two of them cannot deadlock on them.
    # Orgs where the account holds only a workspace role log its events too.
    org_ids = sorted(set(session.scalars(select(OrgMember.org_id)
                                         .where(OrgMember.account_id == event.actor)))
                     | set(store.workspace_roles(session, event.actor)))
    for org_id in org_ids:
        audit.append(session, org_id, event.actor, name, event.payload)


@interface.public
def audit_log(
    claim: str, org: str, event: str | None = None, since: datetime | None = None,
    until: datetime | None = None,
) -> list[AuditView]:
    """An org's audit log, oldest first, filtered by event prefix and time (owners)."""
    user = claims.verify(claim)
    with transaction(SERVICE) as session:
        found, role, _ = _org_access(user, store.find_org(session, org), "read")
        permissions.check_audit(user, role)
        return audit.entries(session, found.id, event, since, until)


@interface.public
def audit_page(
    claim: str, org: str, event: str | None = None, since: datetime | None = None,
    until: datetime | None = None, cursor: str | None = None, limit: int | str | None = None,
) -> AuditPage:
    """A page of an org's audit log, oldest first, filtered by event prefix and time (owners)."""
    user = claims.verify(claim)
    limit = paging.page_size(limit)
    with transaction(SERVICE) as session:
        found, role, _ = _org_access(user, store.find_org(session, org), "read")
        permissions.check_audit(user, role)
        filters = [found.id, event, since and since.isoformat(), until and until.isoformat()]
        after_id = None
        if cursor:
            # Entry ids grow with the chain: the last id shown is the whole position.
            position = paging.decode(cursor, AUDIT_LISTING, filters)
            if len(position) != 1 or type(position[0]) is not int:
                raise paging.bad_cursor()
            after_id = position[0]
        rows = audit.entries(session, found.id, event, since, until, limit + 1, after_id)
    if len(rows) <= limit:
        return AuditPage(entries=rows)
    return AuditPage(entries=rows[:limit],
                     next_cursor=paging.encode(AUDIT_LISTING, filters, [rows[limit - 1].id]))


def verify_audit_chains(org: str | None = None) -> list[ChainBreak]:
    """The first broken entry of every org's audit chain (or one org's); empty when intact."""
    # Not public: the `chaoshub audit verify` command runs it with the database at hand.
    with transaction(SERVICE) as session:
        org_id = None
        if org:
            found = store.find_org(session, org)
            if found is None:
                raise NotFound(f"no org named {org!r}")
            org_id = found.id
        return audit.verify(session, org_id)


# Search ------------------------------------------------------------------------------------


@interface.public
def search(claim: str, q: str, limit: int = 10) -> SearchResults:
    """Users, orgs and workspaces whose names start with `q`, as far as the claim may see."""
    user = claims.verify(claim)
    with transaction(SERVICE) as session:
        return finder.search(session, user, q, limit)


# Permission checks other services ask for --------------------------------------------------


@interface.public(callers=("experiment",))
def grant(claim: str, org: str = "", workspace: str = "", workspace_id: str = ""
          ) -> WorkspaceGrant:
    """What the claim may do in the workspace `workspace_id`, or else named `org`/`workspace`.

    NotFound when the caller may not even see it, Forbidden for an API token kept to another
    workspace; otherwise the grant, whose `allowed` may hold no more than "read".
    """
    user = claims.verify(claim)
    found, roles = (store.workspace_by_id(workspace_id, _account(user)) if workspace_id
                    else store.workspace_by_name(org, workspace, _account(user)))
    ref = _decide(user, found, roles, "read")
    role = roles.in_workspace(ref.id) if roles else None
    allowed = permissions.allowed_actions(role, user, True)
    move_to = []
    if "write" in allowed and permissions.is_session(user):
        with transaction(SERVICE) as session:
            move_to = _writable_workspaces(session, user, except_id=ref.id)
    return WorkspaceGrant(**ref.model_dump(), role=role, allowed=allowed,
                          executions="full" if role else ref.outsider_executions,
                          move_to=move_to)


@interface.public
def authorize(claim: str, org: str, workspace: str, action: Action) -> WorkspaceRef:
    """The workspace named `org`/`workspace` if the claim may `action` there.

    NotFound when the caller may not even see it (so private workspaces stay secret),
    Forbidden when they may see it but not do this. A former org name still resolves.
    """
    user = claims.verify(claim)
    found, roles = store.workspace_by_name(org, workspace, _account(user))
    return _decide(user, found, roles, action)


@interface.public
def authorize_workspace(claim: str, workspace_id: str, action: Action) -> WorkspaceRef:
    """The workspace with this id if the claim may `action` there (see `authorize`)."""
    user = claims.verify(claim)
    found, roles = store.workspace_by_id(workspace_id, _account(user))
    return _decide(user, found, roles, action)


# Events (core/events.py) -------------------------------------------------------------------


@interface.public(callers=EVENT_SUBSCRIBERS)
def pending_events(subscriber: str, types: list[str], limit: int = events.BATCH
                   ) -> list[events.Event]:
    """Dashboard's events of `types` that `subscriber` has not acknowledged yet, oldest first."""
    return outbox.pending(subscriber, types, limit)


@interface.public(callers=EVENT_SUBSCRIBERS)
def ack_events(subscriber: str, ids: list[str]) -> None:
    """Record that `subscriber` has handled these events of dashboard's."""
    outbox.ack(subscriber, ids)


# Internals ---------------------------------------------------------------------------------


def _signed_in(claim: str) -> UserClaim:
    user = claims.verify(claim)
    if user.anonymous:
        raise Unauthorized("sign in first")
    return user


def _org_reader(user: UserClaim) -> UserClaim:
    permissions.check_scope(user, permissions.ORGS_READ_SCOPE)
    return user


def _session(claim: str) -> UserClaim:
    user = _signed_in(claim)
    if not permissions.is_session(user):
        raise Forbidden("this needs a signed-in session, not an API token")
    return user


def _account(user: UserClaim) -> str | None:
    return None if user.anonymous else user.sub


def _roles(user: UserClaim, org_id: str) -> Roles | None:
    return None if user.anonymous else store.roles(org_id, user.sub)


def _readable(user: UserClaim, roles: Roles | None, workspaces: list[Workspace]
              ) -> list[Workspace]:
    return [ws for ws in workspaces
            if permissions.may_read(ws.visibility, roles.in_workspace(ws.id) if roles else None,
                                    user)
            and (not user.workspace or user.workspace == ws.id)]


def _org_access(
    user: UserClaim, org: Org | None, action: Action
) -> tuple[Org, Role | None, list[Workspace]]:
    # An org is visible to its members, and to whoever may see one of its workspaces; what
    # is the org's own (members, settings) goes by the org role alone.
    if org is None:
        raise NotFound("no such org")
    roles = _roles(user, org.id)
    role = roles.org if roles else None
    visible = _readable(user, roles, org.workspaces)
    # A token kept to one workspace sees the org holding it through that workspace alone.
    member = role is not None and not user.workspace
    permissions.check(user, role, member or bool(visible), action, "org")
    if action != "read":
        permissions.check_org_wide(user)
    return org, role, visible


def _workspace_access(
    session: Session, user: UserClaim, org: str, workspace: str, action: Action
) -> tuple[Org, Workspace, Role | None]:
    found = store.find_org(session, org)
    ws = store.find_workspace(found, workspace) if found else None
    if ws is None:
        raise NotFound("no such workspace")
    # In a workspace the role that counts is the higher of the org and workspace roles.
    roles = _roles(user, found.id)
    role = roles.in_workspace(ws.id) if roles else None
    permissions.check(user, role, bool(_readable(user, roles, [ws])), action, "workspace")
    return found, ws, role


def _decide(user: UserClaim, found: dict | None, roles: Roles | None, action: Action
            ) -> WorkspaceRef:
    if found is None:
        raise NotFound("no such workspace")
    ref = WorkspaceRef(**found)
    role = roles.in_workspace(ref.id) if roles else None
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
        roles = Roles(org.id, org_roles.get(org.id), held.get(org.id, {}))
        found += [store.ref(ws, org) for ws in org.workspaces if ws.id != except_id
                  and roles.in_workspace(ws.id) in permissions.PERMISSIONS["write"]]
    return found


def _workspace_view(user: UserClaim, role: Role | None, ws: Workspace, org: Org) -> WorkspaceView:
    return WorkspaceView(**store.ref(ws, org).model_dump(), role=role,
                         allowed=permissions.allowed_actions(role, user, True))


def _profile(session: Session, account) -> Profile:
    profile = session.get(Profile, account.id)
    if profile is None:
        profile = Profile(account_id=account.id)
        session.add(profile)
    # Refresh the copy of what auth knows of the account.
    profile.username, profile.display_name = account.username, account.display_name
    return profile


def _member(session: Session, org: Org, username: str) -> tuple[OrgMember, Profile]:
    found = store.find_member(session, org.id, username)
    if found is None:
        raise NotFound(f"{org.name} has no member named {username!r}")
    return found


def _workspace_member(session: Session, org: Org, ws: Workspace, username: str
                      ) -> tuple[WorkspaceMember, Profile]:
    found = store.find_workspace_member(session, ws.id, username)
    if found is None:
        raise NotFound(f"{org.name}/{ws.name} has no member named {username!r}")
    return found


def _rename(session: Session, claim: str, org: Org, name: str) -> None:
    if org.personal:
        raise Forbidden("a personal org carries its account's username and cannot be renamed")
    new_key = name.lower()
    if new_key != org.name_key:
        if store.name_taken(session, new_key, by_other_than=org.id):
            raise Conflict(f"the name {name!r} is taken")
        # The former name stays the org's (old URLs lead to it), the new one is reserved too.
        auth.reserve_name(claim, name, org.id)
        session.execute(delete(OrgFormerName).where(OrgFormerName.name_key == new_key))
        session.add(OrgFormerName(name_key=org.name_key, name=org.name, org_id=org.id))
    org.name, org.name_key = name, new_key


def _refuse_personal(org: Org) -> None:
    if org.personal:
        raise Forbidden("a personal org has one member: create an org to work with others")


def _org_renamed(session: Session, user: UserClaim, org: Org, before: str) -> None:
    activity.record(session, org.id, user.sub, "org.renamed",
                    f"{store.username(session, user)} renamed {before} to {org.name}")
    audit.append(session, org.id, user.sub, "org.renamed", {"from": before, "to": org.name})


def _workspace_changes(
    session: Session, user: UserClaim, org: Org, ws: Workspace, name: str | None,
    visibility: str | None, outsider_executions: str | None,
) -> None:
    """Record, before they are made, the changes an update brings to a workspace."""
    if name is not None and name != ws.name:
        activity.record(session, org.id, user.sub, "workspace.renamed",
                        f"{store.username(session, user)} renamed {ws.name} to {name}", ws.id)
        audit.append(session, org.id, user.sub, "workspace.renamed",
                     {"workspace_id": ws.id, "from": ws.name, "to": name})
    if visibility is not None and visibility != ws.visibility:
        audit.append(session, org.id, user.sub, "workspace.visibility_changed",
                     {"workspace": name or ws.name, "from": ws.visibility, "to": visibility})
    if outsider_executions is not None and outsider_executions != ws.outsider_executions:
        audit.append(session, org.id, user.sub, "workspace.settings_changed",
                     {"workspace": name or ws.name, "outsider_executions":
                      {"from": ws.outsider_executions, "to": outsider_executions}})


def _open_invitation(session: Session, user: UserClaim, token: str) -> Invitation:
    invitation = invitations.find(session, token)
    # By id only for its invitee: ids show in lists, the link's secret never does.
    by_id = not invitations.is_token(token)
    if (not invitations.is_open(invitation)
            or (by_id and invitation.invitee_id != user.sub)
            or (invitation.invitee_id and invitation.invitee_id != user.sub)
            or not invitations.maker_may_invite(session, invitation)):
        raise NotFound("this invitation does not exist, has been used, revoked, or has expired")
    return invitation


def _revoke_invitations_of(session: Session, org: Org, account_id: str, details: dict) -> None:
    revoked = invitations.revoke_made_by(session, org.id, account_id)
    if revoked:
        details["invitations_revoked"] = revoked


def _recording_member(session: Session, user: UserClaim, org_id: str,
                      workspace_id: str | None) -> None:
    # Other services write to feeds and logs on behalf of a member of the org, never blind.
    if workspace_id:
        # Every published run comes here: the cached answer the permission checks use.
        found, roles = store.workspace_by_id(workspace_id, user.sub)
        if found is None or found["org_id"] != org_id:
            raise NotFound("no such workspace in this org")
    else:
        if session.get(Org, org_id or "") is None:
            raise NotFound("no such org")
        roles = store.roles(org_id, user.sub)
    # Someone with a role in one workspace only records what happens in that workspace.
    if roles.org is None and (not workspace_id or roles.in_workspace(workspace_id) is None):
        raise Forbidden("only a member of the org may record what happens in it")
