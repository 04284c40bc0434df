"""Search's internals: users, orgs and workspaces by name prefix, within what the reader sees,
and which of the workspaces another service found something in the reader may see."""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, exists, func, or_, select
from sqlalchemy.orm import Session

from chaoshub.core.claims import UserClaim
from chaoshub.dashboard.models import Org, OrgMember, Profile, Workspace, WorkspaceMember
from chaoshub.dashboard.schemas import SearchHit, SearchResults, WorkspaceSight

MAX_LIMIT = 50
MAX_QUERY = 40
MAX_WORKSPACES = 500  # workspaces asked about in one call


def search(session: Session, user: UserClaim, q: str, limit: int) -> SearchResults:
    """What starts with `q` (any case), per kind at most `limit` of each."""
    prefix = (q or "").strip().lower()[:MAX_QUERY]
    if not prefix:
        return SearchResults()
    limit = max(1, min(limit or 10, MAX_LIMIT))
    pattern = _escaped(prefix) + "%"
    return SearchResults(users=_users(session, user, pattern, limit),
                         orgs=_orgs(session, user, pattern, limit),
                         workspaces=_workspaces(session, user, pattern, limit))


def readable(user: UserClaim) -> ColumnElement[bool]:
    """The workspaces the reader may see: their orgs', those they hold a role in, and those
    open to them."""
    open_to = ["public"] if user.anonymous else ["public", "internal"]
    clause = Workspace.visibility.in_(open_to)
    if not user.anonymous:
        mine = select(OrgMember.org_id).where(OrgMember.account_id == user.sub)
        given = select(WorkspaceMember.workspace_id).where(
            WorkspaceMember.account_id == user.sub)
        clause = or_(clause, Workspace.org_id.in_(mine), Workspace.id.in_(given))
    if user.workspace:  # an API token restricted to one workspace
        clause = and_(clause, Workspace.id == user.workspace)
    return clause


def sights(session: Session, user: UserClaim, workspace_ids: list[str]) -> list[WorkspaceSight]:
    """Of these workspaces, those the reader may see, each with what they see of its runs."""
    ids = list(dict.fromkeys(workspace_ids))[:MAX_WORKSPACES]
    if not ids:
        return []
    rows = session.execute(select(Workspace, Org.name).join(Org, Org.id == Workspace.org_id)
                           .where(Workspace.id.in_(ids), readable(user))).all()
    orgs: set[str] = set()
    given: set[str] = set()
    if not user.anonymous:
        orgs = set(session.scalars(select(OrgMember.org_id).where(
            OrgMember.account_id == user.sub, OrgMember.org_id.in_({w.org_id for w, _ in rows}))))
        given = set(session.scalars(select(WorkspaceMember.workspace_id).where(
            WorkspaceMember.account_id == user.sub, WorkspaceMember.workspace_id.in_(ids))))
    # As in a grant: whoever holds a role there sees every run in full, others what the
    # workspace shows outsiders.
    return [WorkspaceSight(id=ws.id, org_name=org_name, name=ws.name, visibility=ws.visibility,
                           executions="full" if ws.org_id in orgs or ws.id in given
                           else ws.outsider_executions)
            for ws, org_name in rows]


def _users(session: Session, user: UserClaim, pattern: str, limit: int) -> list[SearchHit]:
    # People are listed to signed-in readers only: visitors see workspaces, not who is here.
    if user.anonymous:
        return []
    rows = session.scalars(select(Profile)
                           .where(func.lower(Profile.username).like(pattern, escape="\\"),
                                  Profile.username != "")
                           .order_by(func.lower(Profile.username)).limit(limit))
    return [SearchHit(kind="user", name=p.username, url=f"/{p.username}",
                      detail=p.display_name if p.display_name != p.username else "")
            for p in rows]


def _orgs(session: Session, user: UserClaim, pattern: str, limit: int) -> list[SearchHit]:
    # An org is as visible as the most open of its workspaces, or wholly to its members.
    visible = exists().where(Workspace.org_id == Org.id, readable(user))
    if not user.anonymous and not user.workspace:
        member = exists().where(OrgMember.org_id == Org.id, OrgMember.account_id == user.sub)
        visible = or_(visible, member)
    rows = session.scalars(select(Org).where(Org.name_key.like(pattern, escape="\\"), visible)
                           .order_by(Org.name_key).limit(limit))
    return [SearchHit(kind="org", name=o.name, url=f"/{o.name}",
                      detail="personal" if o.personal else "team") for o in rows]


def _workspaces(session: Session, user: UserClaim, pattern: str, limit: int
                ) -> list[SearchHit]:
    rows = session.execute(select(Workspace, Org.name).join(Org, Org.id == Workspace.org_id)
                           .where(Workspace.name_key.like(pattern, escape="\\"), readable(user))
                           .order_by(Workspace.name_key, Org.name_key).limit(limit)).all()
    return [SearchHit(kind="workspace", name=f"{org_name}/{ws.name}",
                      url=f"/{org_name}/{ws.name}", detail=ws.visibility)
            for ws, org_name in rows]


def _escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
