"""The dashboard's queries, cache keys and views: the internals behind service.py."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from chaoshub.core.cache import MISSING, cache
from chaoshub.core.db import transaction
from chaoshub.core.models import lookup_key
from chaoshub.dashboard.models import (
    Org,
    OrgFormerName,
    OrgMember,
    Profile,
    Workspace,
    WorkspaceMember,
)
from chaoshub.dashboard.permissions import ROLES, Roles
from chaoshub.dashboard.schemas import (
    Action,
    MemberView,
    OrgView,
    Role,
    WorkspaceMemberView,
    WorkspaceRef,
)

SERVICE = "dashboard"


# Lookups -----------------------------------------------------------------------------------


def find_org(session: Session, name: str) -> Org | None:
    """The org named `name` now, or formerly (old URLs keep leading to it)."""
    key = lookup_key(name)
    org = session.scalar(select(Org).where(Org.name_key == key))
    if org is None:
        org = session.scalar(
            select(Org).join(OrgFormerName, OrgFormerName.org_id == Org.id)
            .where(OrgFormerName.name_key == key)
        )
    return org


def find_workspace(org: Org, name: str) -> Workspace | None:
    """The workspace of `org` named `name`, whatever its case."""
    key = (name or "").lower()
    return next((ws for ws in org.workspaces if ws.name_key == key), None)


def name_taken(session: Session, key: str, by_other_than: str | None = None) -> bool:
    """True when another org holds the name `key`, as its name or a former one."""
    holders = {
        session.scalar(select(Org.id).where(Org.name_key == key)),
        session.scalar(select(OrgFormerName.org_id).where(OrgFormerName.name_key == key)),
    }
    return bool(holders - {None, by_other_than})


def former_names(session: Session, org_id: str) -> list[OrgFormerName]:
    """The names an org had before, oldest first."""
    return list(session.scalars(
        select(OrgFormerName).where(OrgFormerName.org_id == org_id)
        .order_by(OrgFormerName.renamed_at)
    ))


def find_member(session: Session, org_id: str, username: str) -> tuple[OrgMember, Profile] | None:
    """A member of the org by username (case-insensitive), with their profile."""
    row = session.execute(
        select(OrgMember, Profile)
        .join(Profile, Profile.account_id == OrgMember.account_id)
        .where(OrgMember.org_id == org_id,
               func.lower(Profile.username) == lookup_key(username))
    ).first()
    return (row[0], row[1]) if row else None


def org_role(session: Session, org_id: str, account_id: str) -> Role | None:
    """An account's role in an org, read in the caller's transaction (None: not a member)."""
    return session.scalar(select(OrgMember.role).where(
        OrgMember.org_id == org_id, OrgMember.account_id == account_id))


def owner_count(session: Session, org_id: str) -> int:
    """How many owners an org has."""
    return session.scalar(select(func.count()).select_from(OrgMember).where(
        OrgMember.org_id == org_id, OrgMember.role == "owner")) or 0


def members(session: Session, org_id: str) -> list[MemberView]:
    """The members of an org, owners first."""
    rows = session.execute(
        select(OrgMember, Profile)
        .join(Profile, Profile.account_id == OrgMember.account_id)
        .where(OrgMember.org_id == org_id)
    ).all()
    views = [member_view(m, p) for m, p in rows]
    return sorted(views, key=lambda v: (ROLES.index(v.role), v.username.lower()))


def find_workspace_member(
    session: Session, workspace_id: str, username: str
) -> tuple[WorkspaceMember, Profile] | None:
    """Someone given a role in the workspace, by username (case-insensitive), with their profile."""
    row = session.execute(
        select(WorkspaceMember, Profile)
        .join(Profile, Profile.account_id == WorkspaceMember.account_id)
        .where(WorkspaceMember.workspace_id == workspace_id,
               func.lower(Profile.username) == lookup_key(username))
    ).first()
    return (row[0], row[1]) if row else None


def workspace_members(session: Session, workspace: Workspace) -> list[WorkspaceMemberView]:
    """The people given a role in one workspace, highest role first, with their org roles."""
    rows = session.execute(
        select(WorkspaceMember, Profile, OrgMember.role)
        .join(Profile, Profile.account_id == WorkspaceMember.account_id)
        .outerjoin(OrgMember, (OrgMember.account_id == WorkspaceMember.account_id)
                   & (OrgMember.org_id == workspace.org_id))
        .where(WorkspaceMember.workspace_id == workspace.id)
    ).all()
    views = [workspace_member_view(m, p, org_role) for m, p, org_role in rows]
    return sorted(views, key=lambda v: (ROLES.index(v.role), v.username.lower()))


def workspace_roles(session: Session, account_id: str, org_id: str | None = None
                    ) -> dict[str, dict[str, Role]]:
    """An account's workspace roles, by org id then workspace id (in one org, or all)."""
    query = (select(Workspace.org_id, WorkspaceMember.workspace_id, WorkspaceMember.role)
             .join(Workspace, Workspace.id == WorkspaceMember.workspace_id)
             .where(WorkspaceMember.account_id == account_id))
    if org_id is not None:
        query = query.where(Workspace.org_id == org_id)
    held: dict[str, dict[str, Role]] = {}
    for org, workspace_id, role in session.execute(query):
        held.setdefault(org, {})[workspace_id] = role
    return held


def drop_workspace_roles(session: Session, org: Org, account_id: str) -> list[str]:
    """Take away an account's roles in the org's workspaces; the names of those workspaces."""
    by_id = {ws.id: ws.name for ws in org.workspaces}
    rows = list(session.scalars(select(WorkspaceMember).where(
        WorkspaceMember.account_id == account_id,
        WorkspaceMember.workspace_id.in_(list(by_id)))))
    for row in rows:
        session.delete(row)
    return sorted(by_id[row.workspace_id] for row in rows)


# Cached answers ----------------------------------------------------------------------------


def role(org_id: str, account_id: str) -> Role | None:
    """An account's role in an org (None: not a member), cached until membership changes."""
    return roles(org_id, account_id).org


def roles(org_id: str, account_id: str) -> Roles:
    """An account's roles in an org and its workspaces, cached until one of them changes."""
    return Roles(**cache().remember(role_key(org_id, account_id),
                                    lambda: load_roles(org_id, account_id)))


def load_roles(org_id: str, account_id: str) -> dict:
    """An account's roles in an org and its workspaces, for the cache."""
    with transaction(SERVICE) as session:
        return {"org_id": org_id, "org": org_role(session, org_id, account_id),
                "workspaces": workspace_roles(session, account_id, org_id).get(org_id, {})}


def role_key(org_id: str, account_id: str) -> str:
    """The cache key of an account's roles in an org and its workspaces."""
    # "roles", not "role": entries of the older shape (the org role alone) are never read.
    return cache().key(SERVICE, "roles", org_id, account_id)


def grant_by_name_key(org_key: str, account_id: str) -> str:
    """The cache key of an account's roles, looked up with a workspace by its org's name."""
    # By the org's name, not the workspace's: an org answers to every name it ever had, so
    # member_keys can reach every copy, whatever workspaces were renamed or deleted since.
    return cache().key(SERVICE, "grant", account_id, "org-name", org_key)


def grant_by_id_key(workspace_id: str, account_id: str) -> str:
    """The cache key of an account's roles, looked up with a workspace by id."""
    return cache().key(SERVICE, "grant", account_id, "ws", workspace_id)


def member_keys(session: Session, org: Org, account_id: str) -> list[str]:
    """Every cached answer about an account's roles in an org: forget them when one changes."""
    org_keys = [org.name_key] + [f.name_key for f in former_names(session, org.id)]
    return ([role_key(org.id, account_id)]
            + [grant_by_name_key(o, account_id) for o in org_keys]
            + [grant_by_id_key(ws.id, account_id) for ws in org.workspaces])


def workspace_by_name(org: str, workspace: str, account_id: str | None
                      ) -> tuple[dict | None, Roles | None]:
    """A workspace reference by names, and the account's roles in its org (None: no account)."""
    org_key, workspace_key = org.lower(), workspace.lower()
    grant = account_id and grant_by_name_key(org_key, account_id)
    return _with_roles(name_key(org_key, workspace_key), lambda: load_by_name(org, workspace),
                       account_id, grant)


def workspace_by_id(workspace_id: str, account_id: str | None
                    ) -> tuple[dict | None, Roles | None]:
    """A workspace reference by id, and the account's roles in its org (None: no account)."""
    grant = account_id and grant_by_id_key(workspace_id, account_id)
    return _with_roles(id_key(workspace_id), lambda: load_by_id(workspace_id), account_id, grant)


def _with_roles(ref_key: str, load_ref, account_id: str | None, grant_key: str | None
                ) -> tuple[dict | None, Roles | None]:
    # The permission check every request makes: one cache round trip when both are warm. The
    # roles sit under a key of the reader's own beside the workspace's, so that they can be
    # fetched with it before its org is known; a copy kept for another org (one deleted, whose
    # name was taken again) is told apart by its org id and loaded afresh.
    found, held = cache().peek(ref_key, grant_key) if grant_key else (
        cache().peek(ref_key)[0], MISSING)
    if found is MISSING:
        found = load_ref()
        cache().put(ref_key, found)
    if found is None or not account_id:
        return found, None
    if not isinstance(held, dict) or held.get("org_id") != found["org_id"]:
        held = load_roles(found["org_id"], account_id)
        cache().put(grant_key, held)
    return found, Roles(**held)


def name_key(org_key: str, workspace_key: str) -> str:
    """The cache key of a workspace looked up by its org's and its own name."""
    return cache().key(SERVICE, "ws-name", org_key, workspace_key)


def id_key(workspace_id: str) -> str:
    """The cache key of a workspace looked up by id."""
    return cache().key(SERVICE, "ws", workspace_id)


def org_cache_keys(session: Session, org: Org) -> list[str]:
    """Every cached lookup of this org's workspaces, under each name the org answers to.

    Misses are cached too, so callers take these keys both before and after a change.
    """
    org_keys = [org.name_key] + [f.name_key for f in former_names(session, org.id)]
    keys = [name_key(o, ws.name_key) for o in org_keys for ws in org.workspaces]
    return keys + [id_key(ws.id) for ws in org.workspaces]


def safety_key(workspace_id: str) -> str:
    """The cache key of a workspace's run policy and its org's kill switch."""
    return cache().key(SERVICE, "ws-safety", workspace_id)


def run_safety(workspace_id: str) -> dict:
    """A workspace's run policy and its org's kill switch, as plain data (cached)."""
    return cache().remember(safety_key(workspace_id), lambda: load_safety(workspace_id))


def load_safety(workspace_id: str) -> dict:
    """A workspace's run policy and its org's kill switch, for the cache."""
    with transaction(SERVICE) as session:
        ws = session.get(Workspace, workspace_id)
        if ws is None:
            return {"run_policy": {}, "kill_switch": {}}
        return {"run_policy": ws.run_policy or {}, "kill_switch": kill_switch(ws.org)}


def kill_switch(org: Org) -> dict:
    """An org's kill switch as plain data."""
    return {"engaged": org.kill_switch_engaged, "reason": org.kill_switch_reason,
            "changed_by_name": org.kill_switch_by_name,
            "changed_at": org.kill_switch_at.isoformat() if org.kill_switch_at else None}


def load_by_name(org: str, workspace: str) -> dict | None:
    """A workspace reference by names (the org's current or a former name), for the cache."""
    with transaction(SERVICE) as session:
        found = find_org(session, org)
        ws = find_workspace(found, workspace) if found else None
        return ref(ws, found).model_dump() if ws else None


def load_by_id(workspace_id: str) -> dict | None:
    """A workspace reference by id, for the cache."""
    with transaction(SERVICE) as session:
        ws = session.get(Workspace, workspace_id)
        return ref(ws, ws.org).model_dump() if ws else None


# Views -------------------------------------------------------------------------------------


def ref(workspace: Workspace, org: Org) -> WorkspaceRef:
    """How other services see a workspace."""
    return WorkspaceRef(
        id=workspace.id,
        name=workspace.name,
        visibility=workspace.visibility,
        org_id=org.id,
        org_name=org.name,
        outsider_executions=workspace.outsider_executions or "none",
    )


def org_view(
    org: Org,
    role: Role | None,
    workspaces: list[Workspace],
    allowed: list[Action] | None = None,
    former: list[str] | None = None,
) -> OrgView:
    """An org as one reader sees it."""
    return OrgView(
        id=org.id,
        name=org.name,
        display_name=org.display_name or "",
        personal=org.personal,
        role=role,
        workspaces=[ref(ws, org) for ws in workspaces],
        description=org.description or "",
        url=org.url,
        email=org.email,
        former_names=former or [],
        allowed=allowed or [],
    )


def member_view(member: OrgMember, profile: Profile) -> MemberView:
    """One member as lists show them."""
    return MemberView(
        account_id=member.account_id,
        username=profile.username,
        display_name=profile.display_name,
        role=member.role,
        joined_at=member.joined_at,
    )


def workspace_member_view(member: WorkspaceMember, profile: Profile,
                          org_role: Role | None) -> WorkspaceMemberView:
    """Someone given a role in a workspace, as its member list shows them."""
    return WorkspaceMemberView(
        account_id=member.account_id,
        username=profile.username,
        display_name=profile.display_name,
        role=member.role,
        org_role=org_role,
        added_at=member.added_at,
    )


def username(session: Session, user) -> str:
    """The username of a claim's account as the dashboard knows it (its display name else)."""
    profile = session.get(Profile, user.sub)
    return profile.username if profile and profile.username else user.name
