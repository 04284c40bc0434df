"""The dashboard's queries, cache keys and views: the internals behind service.py."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from chaoshub.core.cache import cache
from chaoshub.core.db import transaction
from chaoshub.dashboard.models import Org, OrgFormerName, OrgMember, Profile, Workspace
from chaoshub.dashboard.schemas import Action, MemberView, OrgView, Role, WorkspaceRef

SERVICE = "dashboard"


# Lookups -----------------------------------------------------------------------------------


def find_org(session: Session, name: str) -> Org | None:
    """The org named `name` now, or formerly (old URLs keep leading to it)."""
    key = (name or "").lower()
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
               func.lower(Profile.username) == (username or "").lower())
    ).first()
    return (row[0], row[1]) if row else None


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
    order = {"owner": 0, "maintainer": 1, "member": 2, "viewer": 3}
    views = [member_view(m, p) for m, p in rows]
    return sorted(views, key=lambda v: (order[v.role], v.username.lower()))


# Cached answers ----------------------------------------------------------------------------


def role(org_id: str, account_id: str) -> Role | None:
    """An account's role in an org (None: not a member), cached until membership changes."""
    def load() -> str | None:
        with transaction(SERVICE) as session:
            return session.scalar(
                select(OrgMember.role).where(
                    OrgMember.org_id == org_id, OrgMember.account_id == account_id
                )
            )

    return cache().remember(role_key(org_id, account_id), load)


def role_key(org_id: str, account_id: str) -> str:
    """The cache key of an account's role in an org."""
    return cache().key(SERVICE, "role", org_id, account_id)


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


def username(session: Session, user) -> str:
    """The username of a claim's account as the dashboard knows it (its display name else)."""
    profile = session.get(Profile, user.sub)
    return profile.username if profile and profile.username else user.name
