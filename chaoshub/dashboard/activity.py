"""Activity feeds' internals: recording entries, and reading one page of a feed by cursor."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from sqlalchemy import ColumnElement, and_, false, insert, not_, or_, select, true
from sqlalchemy.orm import Session

from chaoshub.core import paging
from chaoshub.core.claims import UserClaim
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
# time of reading (so a workspace made private later takes its history with it), or, for an
# entry about an execution, whoever may see the workspace's executions then: outsiders nothing
# where it shows them none, and the entry's outsider summary (no publisher) where only statuses.
SCOPES = ("members", "readers", "executions")
# What reads executions: a token without it sees no entry about one.
EXECUTIONS_READ_SCOPE = "executions:read"
LISTING = "activity feed"
KIND_MAX, SUMMARY_MAX = 40, 300


class Feed(NamedTuple):
    """The entries a reader finds in a feed, and those they read as an insider."""

    # An insider holds a role where the entry happened; others read it as an outsider.

    where: ColumnElement[bool]
    insider: ColumnElement[bool]
    # Which feed it is (the user's, an org's, a workspace's): its cursors serve it alone.
    filters: tuple = ()


def record(session: Session, org_id: str, actor_id: str, kind: str, summary: str,
           workspace_id: str | None = None, scope: str | None = None,
           outsider_summary: str | None = None) -> None:
    """Add an entry inside the caller's transaction."""
    # A plain INSERT: nothing reads the entry back. The change it tells of goes in first (a
    # table's INSERT does not flush the session by itself): the entry may refer to it.
    session.flush()
    session.execute(insert(ActivityEntry.__table__), [{
        "org_id": org_id, "workspace_id": workspace_id, "actor_id": actor_id,
        "kind": kind[:KIND_MAX], "summary": summary[:SUMMARY_MAX],
        "scope": scope or ("readers" if workspace_id else "members"),
        "outsider_summary": outsider_summary and outsider_summary[:SUMMARY_MAX],
        "created_at": utcnow()}])


def user_feed(user: UserClaim) -> Feed:
    """Entries of the user's orgs and workspaces, and their own where they may still read them."""
    orgs = select(OrgMember.org_id).where(OrgMember.account_id == user.sub)
    workspaces = select(WorkspaceMember.workspace_id).where(
        WorkspaceMember.account_id == user.sub)
    insider = or_(ActivityEntry.org_id.in_(orgs), ActivityEntry.workspace_id.in_(workspaces))
    # Having written an entry is no right to read it: one who left reads only what is open.
    own = and_(ActivityEntry.actor_id == user.sub, _open_to(user))
    return _feed(user, or_(insider, own), insider, ("user",))


def org_feed(user: UserClaim, org_id: str, member: bool,
             workspace_ids: list[str] | None = None) -> Feed:
    """An org's entries, as far as the reader may see them."""
    # workspace_ids: the workspaces they hold a role in without being a member of the org.
    where = ActivityEntry.org_id == org_id
    if member:
        return _feed(user, where, true(), ("org", org_id))
    insider = ActivityEntry.workspace_id.in_(workspace_ids) if workspace_ids else false()
    return _feed(user, and_(where, or_(insider, _open_to(user))), insider, ("org", org_id))


def workspace_feed(user: UserClaim, workspace_id: str, member: bool) -> Feed:
    """A workspace's entries (the caller has checked it may read the workspace)."""
    where = ActivityEntry.workspace_id == workspace_id
    if member:
        return _feed(user, where, true(), ("workspace", workspace_id))
    return _feed(user, and_(where, _open_to(user)), false(), ("workspace", workspace_id))


def page(session: Session, feed: Feed, cursor: str | None, limit: int | None) -> ActivityPage:
    """One page of the entries of `feed`, newest first."""
    limit = paging.page_size(limit)
    # An outsider seeing only what the feed shows them of an execution: its status.
    status_only = and_(not_(feed.insider), ActivityEntry.scope == "executions",
                       Workspace.outsider_executions != "full")
    query = (select(ActivityEntry, Org.name, Workspace.name, Profile.username,
                    status_only.label("status_only"))
             .join(Org, Org.id == ActivityEntry.org_id)
             .outerjoin(Workspace, Workspace.id == ActivityEntry.workspace_id)
             .outerjoin(Profile, Profile.account_id == ActivityEntry.actor_id)
             .where(feed.where))
    query = paging.after(query, ActivityEntry.created_at, ActivityEntry.id,
                         decode_cursor(cursor, feed) if cursor else None)
    rows = session.execute(query.limit(limit + 1)).all()
    entries = [_view(*row) for row in rows[:limit]]
    more = len(rows) > limit
    return ActivityPage(entries=entries,
                        next_cursor=encode_cursor(rows[limit - 1][0], feed) if more else None)


def encode_cursor(entry: ActivityEntry, feed: Feed) -> str:
    """The signed cursor pointing just past `entry`, in `feed` only."""
    return paging.encode(LISTING, feed.filters, [entry.created_at.isoformat(), entry.id])


def decode_cursor(cursor: str, feed: Feed) -> tuple[datetime, int]:
    """The (created_at, id) a cursor of `feed` points past; BadRequest for any other."""
    return paging.timed(paging.decode(cursor, LISTING, feed.filters))


def _open_to(user: UserClaim) -> ColumnElement[bool]:
    """The entries a reader without a role sees: the rules of executions for those about one."""
    open_to = ["public"] if user.anonymous else ["public", "internal"]
    executions = or_(Workspace.outsider_executions == "full",
                     and_(Workspace.outsider_executions == "status",
                          ActivityEntry.outsider_summary.is_not(None)))
    return and_(Workspace.visibility.in_(open_to),
                or_(ActivityEntry.scope == "readers",
                    and_(ActivityEntry.scope == "executions", executions)))


def _feed(user: UserClaim, where: ColumnElement[bool], insider: ColumnElement[bool],
          filters: tuple) -> Feed:
    # An API token restricted to one workspace reads that workspace's entries only, and one
    # that may not read executions reads no entry about one.
    if user.workspace:
        where = and_(where, ActivityEntry.workspace_id == user.workspace)
    if not user.anonymous and not user.allows(EXECUTIONS_READ_SCOPE):
        where = and_(where, ActivityEntry.scope != "executions")
    return Feed(where, insider, filters)


def _view(entry: ActivityEntry, org_name: str, workspace_name: str | None,
          username: str | None, status_only: bool | None) -> FeedEntry:
    actor_id, actor, summary = (("", "someone", entry.outsider_summary) if status_only else
                                (entry.actor_id, username or "someone", entry.summary))
    return FeedEntry(id=entry.id, org_id=entry.org_id, org_name=org_name,
                     workspace_id=entry.workspace_id, workspace_name=workspace_name,
                     actor_id=actor_id, actor=actor, kind=entry.kind, summary=summary,
                     created_at=entry.created_at)
