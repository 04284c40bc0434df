"""Activity feeds' internals: recording entries, and reading one page of a feed by cursor."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import Session

from chaoshub.core.claims import UserClaim
from chaoshub.core.errors import BadRequest
from chaoshub.core.models import utcnow
from chaoshub.dashboard.models import (
    ActivityEntry,
    Org,
    OrgMember,
    Profile,
    Workspace,
    WorkspaceMember,
)
from chaoshub.dashboard.schemas import ActivityPage, FeedEntry

# Who may read an entry: the org's members only, or whoever may read its workspace at the
# time of reading (so a workspace made private later takes its history with it).
SCOPES = ("members", "readers")
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
KIND_MAX, SUMMARY_MAX = 40, 300


def record(session: Session, org_id: str, actor_id: str, kind: str, summary: str,
           workspace_id: str | None = None, scope: str | None = None) -> ActivityEntry:
    """Add an entry inside the caller's transaction."""
    entry = ActivityEntry(org_id=org_id, workspace_id=workspace_id, actor_id=actor_id,
                          kind=kind[:KIND_MAX], summary=summary[:SUMMARY_MAX],
                          scope=scope or ("readers" if workspace_id else "members"),
                          created_at=utcnow())
    session.add(entry)
    return entry


def user_feed(user: UserClaim) -> ColumnElement[bool]:
    """Entries of the orgs the user belongs to, of the workspaces they hold a role in, and the
    user's own."""
    orgs = select(OrgMember.org_id).where(OrgMember.account_id == user.sub)
    workspaces = select(WorkspaceMember.workspace_id).where(
        WorkspaceMember.account_id == user.sub)
    return _restricted(user, or_(ActivityEntry.org_id.in_(orgs),
                                 ActivityEntry.workspace_id.in_(workspaces),
                                 ActivityEntry.actor_id == user.sub))


def org_feed(user: UserClaim, org_id: str, member: bool,
             workspace_ids: list[str] | None = None) -> ColumnElement[bool]:
    """An org's entries, as far as the reader may see them (`workspace_ids`: the workspaces
    they hold a role in without being a member of the org)."""
    where = ActivityEntry.org_id == org_id
    if member:
        return _restricted(user, where)
    seen = _open_to(user)
    if workspace_ids:
        seen = or_(seen, ActivityEntry.workspace_id.in_(workspace_ids))
    return _restricted(user, and_(where, seen))


def workspace_feed(user: UserClaim, workspace_id: str, member: bool) -> ColumnElement[bool]:
    """A workspace's entries (the caller has checked it may read the workspace)."""
    where = ActivityEntry.workspace_id == workspace_id
    return _restricted(user, where if member else and_(where, ActivityEntry.scope == "readers"))


def page(session: Session, where: ColumnElement[bool], cursor: str | None,
         limit: int | None) -> ActivityPage:
    """One page of the entries matching `where`, newest first."""
    limit = max(1, min(limit or DEFAULT_LIMIT, MAX_LIMIT))
    query = (select(ActivityEntry, Org.name, Workspace.name, Profile.username)
             .join(Org, Org.id == ActivityEntry.org_id)
             .outerjoin(Workspace, Workspace.id == ActivityEntry.workspace_id)
             .outerjoin(Profile, Profile.account_id == ActivityEntry.actor_id)
             .where(where))
    if cursor:
        at, last_id = decode_cursor(cursor)
        query = query.where(or_(ActivityEntry.created_at < at,
                                and_(ActivityEntry.created_at == at, ActivityEntry.id < last_id)))
    query = query.order_by(ActivityEntry.created_at.desc(), ActivityEntry.id.desc())
    rows = session.execute(query.limit(limit + 1)).all()
    entries = [_view(*row) for row in rows[:limit]]
    more = len(rows) > limit
    return ActivityPage(entries=entries,
                        next_cursor=encode_cursor(rows[limit - 1][0]) if more else None)


def encode_cursor(entry: ActivityEntry) -> str:
    """An opaque cursor pointing just past `entry`."""
    raw = f"{entry.created_at.isoformat()}|{entry.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    """The (created_at, id) a cursor points past; BadRequest for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, _, entry_id = raw.partition("|")
        moment = datetime.fromisoformat(at)
        if moment.tzinfo is None:
            raise ValueError("naive")
        return moment, int(entry_id)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise BadRequest("the cursor is not one this feed gave out") from exc


def _open_to(user: UserClaim) -> ColumnElement[bool]:
    open_to = ["public"] if user.anonymous else ["public", "internal"]
    return and_(ActivityEntry.scope == "readers", Workspace.visibility.in_(open_to))


def _restricted(user: UserClaim, where: ColumnElement[bool]) -> ColumnElement[bool]:
    # An API token restricted to one workspace reads that workspace's entries only.
    if user.workspace:
        return and_(where, ActivityEntry.workspace_id == user.workspace)
    return where


def _view(entry: ActivityEntry, org_name: str, workspace_name: str | None,
          username: str | None) -> FeedEntry:
    return FeedEntry(id=entry.id, org_id=entry.org_id, org_name=org_name,
                        workspace_id=entry.workspace_id, workspace_name=workspace_name,
                        actor_id=entry.actor_id, actor=username or "someone", kind=entry.kind,
                        summary=entry.summary, created_at=entry.created_at)
