"""Retention on dashboard's side: old activity entries go, and each org's audit log tells what
retention removed there (its own activity, and what experiment removed of the org's runs)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from sqlalchemy import delete, select

from chaoshub.core.db import transaction
from chaoshub.dashboard import audit
from chaoshub.dashboard.interface import interface
from chaoshub.dashboard.models import ActivityEntry, Org
from chaoshub.dashboard.store import SERVICE

RETENTION_ACTOR = "system"  # who the audit log names for what retention removed
RETENTION_EVENT = "retention.swept"
SWEEP_MAX = 10_000  # the most rows one call removes: larger backlogs go over several sweeps


@interface.public(callers=("experiment",))
def apply_retention(activity_before: datetime | None, activity_days: int, limit: int,
                    swept: dict[str, dict[str, int]]) -> dict[str, int]:
    """Remove at most `limit` activity entries older than `activity_before` (none when it is
    None), then write one entry, by the system, into the audit log of each org where anything
    went: its activity entries removed here (with `activity_days`) and `swept`, what experiment
    removed of the org's data (org id -> {"journals": n, "journal_days": d, ...}). Returns the
    activity entries removed, by org id. The audit log itself is never removed."""
    # Called by experiment's workers with their service's assertion, not for a person: no claim.
    limit = max(0, min(limit, SWEEP_MAX))
    with transaction(SERVICE) as session:
        removed: Counter[str] = Counter()
        if activity_before is not None and limit:
            oldest = select(ActivityEntry.id).where(
                ActivityEntry.created_at < activity_before).order_by(ActivityEntry.id).limit(limit)
            removed.update(session.scalars(delete(ActivityEntry).where(
                ActivityEntry.id.in_(oldest)).returning(ActivityEntry.org_id)))
        reports = {org_id: dict(counts) for org_id, counts in swept.items()
                   if any(isinstance(n, int) and n > 0 for n in counts.values())}
        for org_id, count in removed.items():
            reports.setdefault(org_id, {}).update(activity=count, activity_days=activity_days)
        for org_id, details in sorted(reports.items()):
            if session.get(Org, org_id) is not None:  # a deleted org's log ended with it
                audit.append(session, org_id, RETENTION_ACTOR, RETENTION_EVENT, details)
    return dict(removed)
