"""Activity feeds' internals: recording entries, and reading one page of a feed by cursor."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple
from urllib.parse import quote

from sqlalchemy import ColumnElement, and_, false, insert, not_, or_, select, true
from sqlalchemy.orm import Session

from chaoshub.core import events, paging
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
from chaoshub.dashboard.schemas import ActivityPage, FeedEntry, NewActivity

# Who may read an entry: the org's members only, or whoever may read its workspace at the
# time of reading (so a workspace made private later takes its history with it), or, for an
# entry about an execution, whoever may see the workspace's executions then: outsiders nothing
# where it shows them none, and the entry's outsider summary (no publisher) where only statuses.
SCOPES = ("members", "readers", "executions")
# What reads executions: a token without it sees no entry about one.
EXECUTIONS_READ_SCOPE = "executions:read"
LISTING = "activity feed"
KIND_MAX, SUMMARY_MAX, SUBJECT_MAX = 40, 300, 120
# What an entry may be about beyond its org and workspace (see ActivityEntry.subject), and how
# many ids each names.
SUBJECT_IDS = {"experiment": 1, "execution": 2, "run": 2, "member": 1}


class Feed(NamedTuple):
    """The entries a reader finds in a feed, and those they read as an insider."""

    # An insider holds a role where the entry happened; others read it as an outsider.

    where: ColumnElement[bool]
    insider: ColumnElement[bool]
    # Which feed it is (the user's, an org's, a workspace's): its cursors serve it alone.
    filters: tuple = ()
    # People are linked for signed-in readers only: visitors see workspaces, not who is here.
    people: bool = False


def subject_problem(subject: str | None) -> str | None:
    """Why `subject` cannot be an entry's subject; None when it can (or is None)."""
    if subject is None:
        return None
    kind, _, ids = subject.partition(":")
    parts = ids.split(":")
    if (kind not in SUBJECT_IDS or len(parts) != SUBJECT_IDS[kind] or not all(parts)
            or len(subject) > SUBJECT_MAX):
        return ("experiment:<id>, execution:<experiment id>:<id>, run:<experiment id>:<id> "
                f"or member:<account id>, in at most {SUBJECT_MAX} characters")
    return None


def record(session: Session, org_id: str, actor_id: str, kind: str, summary: str,
           workspace_id: str | None = None, scope: str | None = None,
           outsider_summary: str | None = None, subject: str | None = None) -> None:
    """Add an entry inside the caller's transaction; `subject` names what it is about (see
    ActivityEntry.subject) when that is more than its workspace or org."""
    # A plain INSERT: nothing reads the entry back. The change it tells of goes in first (a
    # table's INSERT does not flush the session by itself): the entry may refer to it.
    session.flush()
    session.execute(insert(ActivityEntry.__table__), [{
        "org_id": org_id, "workspace_id": workspace_id, "actor_id": actor_id,
        "kind": kind[:KIND_MAX], "summary": summary[:SUMMARY_MAX],
        "scope": scope or ("readers" if workspace_id else "members"),
        "outsider_summary": outsider_summary and outsider_summary[:SUMMARY_MAX],
        "subject": subject, "created_at": utcnow()}])


def record_delivered(session: Session, entries: list[NewActivity]) -> set[str]:
    """Add entries other services asked for (checked already) inside the caller's transaction,
    in one statement, leaving out those added before (by their outbox id); the outbox ids of
    the entries added now."""
    rows = [{
        "org_id": e.org_id, "workspace_id": e.workspace_id, "actor_id": e.actor_id,
        "kind": e.kind[:KIND_MAX], "summary": e.summary[:SUMMARY_MAX],
        "scope": e.scope or ("readers" if e.workspace_id else "members"),
        "outsider_summary": e.outsider_summary and e.outsider_summary[:SUMMARY_MAX],
        # When it happened, not when it arrived: the feed keeps the order of events.
        "subject": e.subject, "created_at": e.created_at, "outbox_id": e.id,
    } for e in entries]
    if not rows:
        return set()
    return set(events.inserted_keys(session, ActivityEntry, rows, ActivityEntry.outbox_id))


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
    """One page of the entries of `feed`, newest first, each with the links its reader may
    follow."""
    limit = paging.page_size(limit)
    # An outsider seeing only what the feed shows them of an execution: its status.
    status_only = and_(not_(feed.insider), ActivityEntry.scope == "executions",
                       Workspace.outsider_executions != "full")
    # Who sees a workspace's runs in full: its insiders, and outsiders where it shows them so.
    runs_shown = or_(feed.insider, Workspace.outsider_executions == "full")
    query = (select(ActivityEntry, Org.name, Workspace.name, Profile.username,
                    Profile.display_name, status_only.label("status_only"),
                    runs_shown.label("runs_shown"))
             .join(Org, Org.id == ActivityEntry.org_id)
             .outerjoin(Workspace, Workspace.id == ActivityEntry.workspace_id)
             .outerjoin(Profile, Profile.account_id == ActivityEntry.actor_id)
             .where(feed.where))
    query = paging.after(query, ActivityEntry.created_at, ActivityEntry.id,
                         decode_cursor(cursor, feed) if cursor else None)
    rows = session.execute(query.limit(limit + 1)).all()
    members = _usernames(session, rows[:limit]) if feed.people else {}
    entries = [_view(feed, members, *row) for row in rows[:limit]]
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
    return Feed(where, insider, filters, people=not user.anonymous)


def _usernames(session: Session, rows) -> dict[str, str]:
    """The usernames of the members the entries of `rows` are about, by account id."""
    ids = {row[0].subject.split(":", 1)[1] for row in rows
           if row[0].subject and row[0].subject.startswith("member:")}
    if not ids:
        return {}
    return {account_id: username for account_id, username in session.execute(
        select(Profile.account_id, Profile.username)
        .where(Profile.account_id.in_(ids), Profile.username != ""))}


def _view(feed: Feed, members: dict[str, str], entry: ActivityEntry, org_name: str,
          workspace_name: str | None, username: str | None, display_name: str | None,
          status_only: bool | None, runs_shown: bool | None) -> FeedEntry:
    if status_only:
        actor_id, actor, summary, action = "", "someone", entry.outsider_summary, ""
    else:
        actor_id, actor, summary = entry.actor_id, username or "someone", entry.summary
        action = _action(summary, username, display_name)
    where = f"/{_quoted(org_name)}"
    if workspace_name:
        where += f"/{_quoted(workspace_name)}"
    return FeedEntry(id=entry.id, org_id=entry.org_id, org_name=org_name,
                     workspace_id=entry.workspace_id, workspace_name=workspace_name,
                     actor_id=actor_id, actor=actor, kind=entry.kind, summary=summary,
                     created_at=entry.created_at, action=action,
                     actor_url=f"/{_quoted(username)}" if feed.people and username and actor_id
                     else None,
                     url=_subject_url(entry.subject, where, bool(workspace_name), members,
                                      bool(runs_shown)) or where)


def _action(summary: str, username: str | None, display_name: str | None) -> str:
    """The summary without the name of its actor in front (whichever of their names it was
    written with), so that every entry names people alike; "" when it does not start so."""
    for name in (username, display_name):
        if name and summary.startswith(name + " "):
            return summary[len(name) + 1:]
    return ""


def _subject_url(subject: str | None, where: str, in_workspace: bool, members: dict[str, str],
                 runs_shown: bool) -> str | None:
    """The page of what the entry is about, when the reader may open it; None: its place's."""
    if not subject:
        return None
    kind, _, ids = subject.partition(":")
    if kind == "member":
        return f"/{_quoted(members[ids])}" if ids in members else None
    if not in_workspace:
        return None
    experiment, _, child = ids.partition(":")
    path = f"{where}/experiment/{_quoted(experiment)}"
    if kind == "execution":
        return f"{path}/execution/{_quoted(child)}"
    if kind == "run" and runs_shown:  # a run's page is for those who see runs in full
        return f"{path}/run/{_quoted(child)}"
    return path


def _quoted(name: str) -> str:
    return quote(name, safe="")
