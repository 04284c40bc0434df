"""Who belongs where: an org's members, and the people given a role in one workspace."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from chaoshub.auth import service as auth
from chaoshub.core import claims, paging
from chaoshub.core.db import transaction
from chaoshub.core.errors import Conflict, Forbidden, NotFound
from chaoshub.dashboard import invitations, permissions, store, validation
from chaoshub.dashboard.interface import interface
from chaoshub.dashboard.models import Org, OrgMember, Profile, Workspace, WorkspaceMember
from chaoshub.dashboard.public.access import (
    org_access,
    org_reader,
    session_user,
    workspace_access,
)
from chaoshub.dashboard.schemas import (
    MemberPage,
    MemberView,
    Role,
    WorkspaceMemberPage,
    WorkspaceMemberView,
)
from chaoshub.dashboard.store import SERVICE
from chaoshub.dashboard.writes import write

MEMBERS_LISTING = "org members"  # the listing's name, signed into its cursors
WORKSPACE_MEMBERS_LISTING = "workspace members"


# Members of an org ---------------------------------------------------------------------------


@interface.public
def list_members(claim: str, org: str) -> list[MemberView]:
    """The members of an org and their roles, to its members."""
    user = org_reader(claims.verify(claim))
    with transaction(SERVICE) as session:
        found, _, _ = org_access(user, store.find_org(session, org), "list_members")
        return store.members(session, found.id)


@interface.public
def page_members(claim: str, org: str, cursor: str | None = None,
                 limit: int | str | None = None) -> MemberPage:
    """A page of an org's members, owners first, then by username, to its members."""
    limit = paging.page_size(limit)
    user = org_reader(claims.verify(claim))
    with transaction(SERVICE) as session:
        found, _, _ = org_access(user, store.find_org(session, org), "list_members")
        members = store.members(session, found.id)
    shown, next_cursor = paging.page_of(
        members, lambda v: [permissions.ROLES.index(v.role), v.username.lower(), v.account_id],
        cursor, MEMBERS_LISTING, [found.id], limit)
    return MemberPage(members=shown, next_cursor=next_cursor)


@interface.public
def add_member(claim: str, org: str, username: str, role: Role = "member") -> MemberView:
    """Give an account (by username) a role in an org (owners only)."""
    user = session_user(claim)
    validation.check_role(role)
    with transaction(SERVICE) as session:
        found, _, _ = org_access(user, store.find_org(session, org), "manage_members")
        refuse_personal(found)
    account = auth.find_account(claim, username)
    with write(user.sub) as work:
        session = work.session
        found, _, _ = org_access(user, store.find_org(session, org), "manage_members")
        if session.get(OrgMember, (found.id, account.id)) is not None:
            raise Conflict(f"{account.username} is already a member of {found.name}")
        profile = _profile(session, account)
        member = OrgMember(org_id=found.id, account_id=account.id, role=role)
        session.add(member)
        session.flush()
        work.feed(found.id, "member.joined",
                  f"{store.username(session, user)} added {account.username} as {role}",
                  subject=f"member:{account.id}")
        work.audit(found.id, "member.added",
                   {"username": account.username, "account_id": account.id, "role": role})
        view = store.member_view(member, profile)
        # A miss is cached too: forget it, or the new member would wait for it to expire.
        work.forget(*store.member_keys(session, found, account.id))
    return view


@interface.public
def change_member_role(claim: str, org: str, username: str, role: Role) -> MemberView:
    """Change a member's role; an org always keeps at least one owner."""
    user = session_user(claim)
    validation.check_role(role)
    with write(user.sub) as work:
        session = work.session
        found, _, _ = org_access(user, store.find_org(session, org), "manage_members")
        member, profile = _member(session, found, username)
        if member.role == "owner" and role != "owner" and store.owner_count(session, found.id) == 1:
            raise Conflict("an org needs an owner: make someone else owner first")
        if member.role != role:
            details = {"username": profile.username, "account_id": member.account_id,
                       "from": member.role, "to": role}
            if role not in permissions.PERMISSIONS["manage_members"]:
                # Their links would otherwise still make members, owners included.
                _revoke_invitations_of(session, found, member.account_id, details)
            work.audit(found.id, "member.role_changed", details)
        member.role = role
        session.flush()
        view = store.member_view(member, profile)
        work.forget(*store.member_keys(session, found, member.account_id))
    return view


@interface.public
def remove_member(claim: str, org: str, username: str) -> None:
    """Remove a member (owners), or leave an org; their access ends at once, their roles in
    the org's workspaces included."""
    user = session_user(claim)
    with write(user.sub) as work:
        session = work.session
        found, _, _ = org_access(user, store.find_org(session, org), "list_members")
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
        work.feed(found.id, "member.left",
                  f"{actor} left {found.name}" if left else f"{actor} removed {profile.username}",
                  subject=f"member:{member.account_id}")
        details = {"username": profile.username, "account_id": member.account_id,
                   "role": member.role, "left": left}
        if dropped:
            details["workspaces"] = dropped
        _revoke_invitations_of(session, found, member.account_id, details)
        work.audit(found.id, "member.removed", details)
        # The cached roles are what every request checks: dropping them ends the access now.
        work.forget(*store.member_keys(session, found, member.account_id))


# Members of one workspace --------------------------------------------------------------------


@interface.public(callers=("experiment",))
def list_workspace_members(claim: str, org: str, workspace: str) -> list[WorkspaceMemberView]:
    """The people given a role in one workspace, to those who hold a role there."""
    user = org_reader(claims.verify(claim))
    with transaction(SERVICE) as session:
        _, ws, _ = workspace_access(session, user, org, workspace, "list_members")
        return store.workspace_members(session, ws)


@interface.public(callers=("experiment",))
def workspace_member_ids(workspace_id: str) -> list[str]:
    """The accounts holding a role that reaches one workspace (its org's members and those
    given a role in it): whom its email notifications may go to. No claim: experiment's
    workers ask, for a notification a maintainer set up."""
    with transaction(SERVICE) as session:
        ws = session.get(Workspace, workspace_id) if isinstance(workspace_id, str) else None
        if ws is None:
            return []
        ids = set(session.scalars(select(OrgMember.account_id)
                                  .where(OrgMember.org_id == ws.org_id)))
        ids.update(session.scalars(select(WorkspaceMember.account_id)
                                   .where(WorkspaceMember.workspace_id == ws.id)))
    return sorted(ids)


@interface.public
def page_workspace_members(claim: str, org: str, workspace: str, cursor: str | None = None,
                           limit: int | str | None = None) -> WorkspaceMemberPage:
    """A page of the people given a role in one workspace, highest role first, then by name."""
    limit = paging.page_size(limit)
    user = org_reader(claims.verify(claim))
    with transaction(SERVICE) as session:
        _, ws, _ = workspace_access(session, user, org, workspace, "list_members")
        members = store.workspace_members(session, ws)
    shown, next_cursor = paging.page_of(
        members, lambda v: [permissions.ROLES.index(v.role), v.username.lower(), v.account_id],
        cursor, WORKSPACE_MEMBERS_LISTING, [ws.id], limit)
    return WorkspaceMemberPage(members=shown, next_cursor=next_cursor)


@interface.public
def add_workspace_member(
    claim: str, org: str, workspace: str, username: str, role: Role = "member"
) -> WorkspaceMemberView:
    """Give an account (by username) a role in one workspace, up to the giver's own role there."""
    user = session_user(claim)
    validation.check_role(role)
    with transaction(SERVICE) as session:
        found, _, _ = workspace_access(session, user, org, workspace,
                                       "manage_workspace_members")
        refuse_personal(found)
    account = auth.find_account(claim, username)
    with write(user.sub) as work:
        session = work.session
        found, ws, mine = workspace_access(session, user, org, workspace,
                                           "manage_workspace_members")
        permissions.check_grant(mine, role)
        if session.get(WorkspaceMember, (ws.id, account.id)) is not None:
            raise Conflict(f"{account.username} has a role in {found.name}/{ws.name} already")
        profile = _profile(session, account)
        member = WorkspaceMember(workspace_id=ws.id, account_id=account.id, role=role)
        session.add(member)
        session.flush()
        work.feed(found.id, "workspace.member_added",
                  f"{store.username(session, user)} added {account.username} to "
                  f"{ws.name} as {role}", ws.id, "members", subject=f"member:{account.id}")
        work.audit(found.id, "workspace.member_added",
                   {"workspace": ws.name, "workspace_id": ws.id,
                    "username": account.username, "account_id": account.id, "role": role})
        view = store.workspace_member_view(member, profile,
                                           store.org_role(session, found.id, account.id))
        # A miss is cached too: forget it, or the new member would wait for it to expire.
        work.forget(*store.member_keys(session, found, account.id))
    return view


@interface.public
def change_workspace_member_role(
    claim: str, org: str, workspace: str, username: str, role: Role
) -> WorkspaceMemberView:
    """Change someone's role in one workspace, within the changer's own role there."""
    user = session_user(claim)
    validation.check_role(role)
    with write(user.sub) as work:
        session = work.session
        found, ws, mine = workspace_access(session, user, org, workspace,
                                           "manage_workspace_members")
        member, profile = _workspace_member(session, found, ws, username)
        permissions.check_grant(mine, member.role, role)
        if member.role != role:
            work.feed(found.id, "workspace.member_role_changed",
                      f"{store.username(session, user)} made {profile.username} "
                      f"{role} in {ws.name}", ws.id, "members",
                      subject=f"member:{member.account_id}")
            work.audit(found.id, "workspace.member_role_changed",
                       {"workspace": ws.name, "workspace_id": ws.id,
                        "username": profile.username, "account_id": member.account_id,
                        "from": member.role, "to": role})
        member.role = role
        session.flush()
        view = store.workspace_member_view(member, profile,
                                           store.org_role(session, found.id, member.account_id))
        work.forget(*store.member_keys(session, found, member.account_id))
    return view


@interface.public
def remove_workspace_member(claim: str, org: str, workspace: str, username: str) -> None:
    """Take someone's role in one workspace away (or give up one's own); it ends at once."""
    user = session_user(claim)
    with write(user.sub) as work:
        session = work.session
        found, ws, mine = workspace_access(session, user, org, workspace, "list_members")
        member, profile = _workspace_member(session, found, ws, username)
        left = member.account_id == user.sub
        if not left:
            permissions.check(user, mine, True, "manage_workspace_members", "workspace")
            permissions.check_grant(mine, member.role)
        session.delete(member)
        actor = store.username(session, user)
        work.feed(found.id, "workspace.member_removed",
                  f"{actor} left {ws.name}" if left
                  else f"{actor} removed {profile.username} from {ws.name}",
                  ws.id, "members", subject=f"member:{member.account_id}")
        work.audit(found.id, "workspace.member_removed",
                   {"workspace": ws.name, "workspace_id": ws.id,
                    "username": profile.username, "account_id": member.account_id,
                    "role": member.role, "left": left})
        # The cached roles are what every request checks: dropping them ends the access now.
        work.forget(*store.member_keys(session, found, member.account_id))


# Shared by the writes above and the invitations -----------------------------------------------


def refuse_personal(org: Org) -> None:
    """Raise Forbidden for a personal org: it has one member and no workspace roles to give."""
    if org.personal:
        raise Forbidden("a personal org has one member: create an org to work with others")


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


def _revoke_invitations_of(session: Session, org: Org, account_id: str, details: dict) -> None:
    revoked = invitations.revoke_made_by(session, org.id, account_id)
    if revoked:
        details["invitations_revoked"] = revoked
