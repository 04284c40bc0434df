"""What happened in an org: its activity feeds (to read, and for other services to add to) and
its audit log (to read, page through and check)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from chaoshub.core import claims, paging
from chaoshub.core.claims import UserClaim
from chaoshub.core.db import transaction
from chaoshub.core.errors import Forbidden, NotFound, ValidationFailed
from chaoshub.dashboard import activity, audit, permissions, store
from chaoshub.dashboard.interface import interface
from chaoshub.dashboard.models import Org
from chaoshub.dashboard.public.access import (
    org_access,
    org_reader,
    roles,
    signed_in,
    workspace_access,
)
from chaoshub.dashboard.schemas import ActivityPage, AuditPage, AuditView, ChainBreak
from chaoshub.dashboard.store import SERVICE
from chaoshub.dashboard.writes import write

AUDIT_LISTING = "audit log"  # the listing's name, signed into its cursors


# Activity --------------------------------------------------------------------------------------


@interface.public(callers=("experiment",))
def record_activity(
    claim: str, org_id: str, kind: str, summary: str, workspace_id: str | None = None,
    scope: str | None = None, outsider_summary: str | None = None,
    audited: dict[str, Any] | None = None, subject: str | None = None,
) -> None:
    """Add an entry to an org's feed, for a member of it (other services call this); an entry
    about an execution (scope "executions") may carry a summary without its actor. With
    `audited`, the org's audit log gets an entry of the same kind with these details; with
    `subject` ("experiment:<id>", "execution:<experiment id>:<id>", ...), the entry links to
    it for those who may see it."""
    user = signed_in(claim)
    problems = []
    if not kind or not summary:
        problems.append({"pointer": "/kind", "message": "a kind and a summary are needed"})
    if scope is not None and scope not in activity.SCOPES:
        problems.append({"pointer": "/scope", "message": "one of " + ", ".join(activity.SCOPES)})
    if scope in ("readers", "executions") and not workspace_id:
        problems.append({"pointer": "/scope", "message": f"{scope!r} needs a workspace"})
    if (problem := activity.subject_problem(subject)) is not None:
        problems.append({"pointer": "/subject", "message": problem})
    elif subject and not subject.startswith("member:") and not workspace_id:
        problems.append({"pointer": "/subject", "message": "an experiment needs a workspace"})
    if problems:
        raise ValidationFailed("the activity cannot be recorded", problems)
    with write(user.sub) as work:
        _recording_member(work.session, user, org_id, workspace_id)
        work.feed(org_id, kind, summary, workspace_id, scope, outsider_summary, subject)
        if audited is not None:
            work.audit(org_id, kind, audited)


@interface.public
def activity_feed(claim: str, cursor: str | None = None, limit: int | None = None
                  ) -> ActivityPage:
    """The signed-in user's feed: their orgs' entries and their own, newest first."""
    user = org_reader(signed_in(claim))
    with transaction(SERVICE) as session:
        return activity.page(session, activity.user_feed(user), cursor, limit)


@interface.public
def org_activity(claim: str, org: str, cursor: str | None = None, limit: int | None = None
                 ) -> ActivityPage:
    """An org's feed, with only the entries the claim may see."""
    user = org_reader(claims.verify(claim))
    with transaction(SERVICE) as session:
        found, role, _ = org_access(user, store.find_org(session, org), "read")
        held = roles(user, found.id)
        return activity.page(session, activity.org_feed(user, found.id, role is not None,
                                                        list(held.workspaces) if held else []),
                             cursor, limit)


@interface.public(callers=("experiment",))
def workspace_activity(
    claim: str, org: str, workspace: str, cursor: str | None = None, limit: int | None = None
) -> ActivityPage:
    """A workspace's feed, to those who may read the workspace."""
    user = claims.verify(claim)
    with transaction(SERVICE) as session:
        _, ws, role = workspace_access(session, user, org, workspace, "read")
        return activity.page(session, activity.workspace_feed(user, ws.id, role is not None),
                             cursor, limit)


def _recording_member(session: Session, user: UserClaim, org_id: str,
                      workspace_id: str | None) -> None:
    # Other services write to feeds and logs on behalf of a member of the org, never blind.
    if workspace_id:
        # Every published run comes here: the cached answer the permission checks use.
        found, held = store.workspace_by_id(workspace_id, user.sub)
        if found is None or found["org_id"] != org_id:
            raise NotFound("no such workspace in this org")
    else:
        if session.get(Org, org_id or "") is None:
            raise NotFound("no such org")
        held = store.roles(org_id, user.sub)
    # Someone with a role in one workspace only records what happens in that workspace.
    if held.org is None and (not workspace_id or held.in_workspace(workspace_id) is None):
        raise Forbidden("only a member of the org may record what happens in it")


# Audit -----------------------------------------------------------------------------------------


@interface.public
def audit_log(
    claim: str, org: str, event: str | None = None, since: datetime | None = None,
    until: datetime | None = None,
) -> list[AuditView]:
    """An org's audit log, oldest first, filtered by event prefix and time (owners)."""
    user = claims.verify(claim)
    with transaction(SERVICE) as session:
        found, role, _ = org_access(user, store.find_org(session, org), "read")
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
        found, role, _ = org_access(user, store.find_org(session, org), "read")
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
