"""The audit log's internals: appending hash-chained entries, reading them, checking chains."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from chaoshub.core.errors import problem
from chaoshub.core.models import utcnow
from chaoshub.dashboard.models import AuditEntry, Org, Profile
from chaoshub.dashboard.schemas import AuditView, ChainBreak

GENESIS = ""  # the prev_hash of an org's first entry
EVENT_MAX = 60
ATTEMPTS = 5

# What auth may write into every org of an account: only these, so that door cannot be used
# to forge an org's own events (member or settings changes).
ACCOUNT_EVENTS = ("auth.sign_in", "auth.sign_out_everywhere", "auth.token_created",
                  "auth.token_revoked", "auth.token_new_ip", "auth.password_reset",
                  "auth.password_changed", "auth.email_changed", "auth.identity_linked",
                  "auth.identity_unlinked")
# Of those, the events of one token: they go to its account's personal org, and to a team's org
# only when the token is kept to one of its workspaces (auth names it: `workspace_id`).
TOKEN_EVENTS = ("auth.token_created", "auth.token_revoked", "auth.token_new_ip")
# Every owner of every org of the account reads these entries: no credential may reach them.
SECRET_KEYS = frozenset({"secret", "token", "password", "session", "session_token", "cookie",
                         "authorization", "code", "state", "nonce"})
SECRET_PREFIXES = ("chub_", "chinv_")  # API token and invitation secrets (hints are shorter)
HINT_MAX = 9


def canonical(value: Any) -> str:
    """JSON with sorted keys and no spaces: the same bytes for the same data, everywhere."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_hash(org_id: str, actor_id: str, event: str, details: str, created_at: datetime,
               prev_hash: str) -> str:
    """The SHA-256 of an entry's canonical JSON, its predecessor's hash included."""
    body = canonical({
        "org_id": org_id, "actor_id": actor_id, "event": event,
        "details": json.loads(details), "created_at": _instant(created_at),
        "prev_hash": prev_hash,
    })
    return hashlib.sha256(body.encode()).hexdigest()


def append(session: Session, org_id: str, actor_id: str, event: str,
           details: dict | None = None) -> AuditEntry:
    """Add an entry at the end of the org's chain, inside the caller's transaction."""
    text = canonical(details or {})
    for attempt in range(ATTEMPTS):
        prev = session.scalar(select(AuditEntry.hash).where(AuditEntry.org_id == org_id)
                              .order_by(AuditEntry.id.desc()).limit(1)) or GENESIS
        created_at = utcnow()
        entry = AuditEntry(org_id=org_id, actor_id=actor_id, event=event[:EVENT_MAX],
                           details=text, created_at=created_at, prev_hash=prev,
                           hash=entry_hash(org_id, actor_id, event[:EVENT_MAX], text,
                                           created_at, prev))
        if session.get_bind().dialect.name == "sqlite":
            # SQLite lets one writer in at a time: no race to lose, and pysqlite's savepoints
            # are unreliable.
            session.add(entry)
            session.flush()
            return entry
        try:
            # A savepoint: losing the race to another writer (the unique prev_hash) is retried
            # without undoing the caller's own change.
            with session.begin_nested():
                session.add(entry)
            return entry
        except IntegrityError:
            if attempt == ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def account_event_problems(event: str, details: dict) -> list[dict]:
    """What keeps an account event out of the log: an unknown event, or details that could
    carry a secret (only flat values and lists of them, no secret-looking key or value)."""
    problems = []
    if event not in ACCOUNT_EVENTS:
        problems.append({"pointer": "/event", "message": "one of " + ", ".join(ACCOUNT_EVENTS)})
    if not isinstance(details, dict):
        return problems + [{"pointer": "/details", "message": "an object"}]
    for key, value in details.items():
        values = value if isinstance(value, list) else [value]
        if str(key).lower() in SECRET_KEYS:
            problems.append(problem(("details", key), "no secret in the log"))
        elif not all(v is None or isinstance(v, (str, int, float, bool)) for v in values):
            problems.append(problem(("details", key), "plain values only"))
        elif any(isinstance(v, str) and v.startswith(SECRET_PREFIXES) and len(v) > HINT_MAX
                 for v in values):
            problems.append(problem(("details", key), "no secret in the log"))
    return problems


def entries(session: Session, org_id: str, event: str | None = None,
            since: datetime | None = None, until: datetime | None = None,
            limit: int | None = None, after_id: int | None = None) -> list[AuditView]:
    """The org's entries, oldest first, filtered by event (prefix) and time, past `after_id`."""
    query = select(AuditEntry, Profile.username).outerjoin(
        Profile, Profile.account_id == AuditEntry.actor_id).where(AuditEntry.org_id == org_id)
    if event:
        query = query.where(AuditEntry.event.startswith(event, autoescape=True))
    if since:
        query = query.where(AuditEntry.created_at >= since)
    if until:
        query = query.where(AuditEntry.created_at < until)
    if after_id is not None:
        query = query.where(AuditEntry.id > after_id)
    query = query.order_by(AuditEntry.id)
    if limit:
        query = query.limit(limit)
    return [view(entry, username) for entry, username in session.execute(query)]


def event_kinds(session: Session, org_id: str) -> list[str]:
    """The events an org's log holds, for the filter."""
    return sorted(session.scalars(select(AuditEntry.event).where(AuditEntry.org_id == org_id)
                                  .distinct()))


def view(entry: AuditEntry, username: str | None) -> AuditView:
    """An entry as owners read it."""
    return AuditView(id=entry.id, org_id=entry.org_id, actor_id=entry.actor_id,
                     actor=username or entry.actor_id, event=entry.event,
                     details=json.loads(entry.details), created_at=entry.created_at,
                     prev_hash=entry.prev_hash, hash=entry.hash)


def verify(session: Session, org_id: str | None = None) -> list[ChainBreak]:
    """The first broken entry of each chain (of one org, or all); empty when all hold."""
    org_ids = [org_id] if org_id else list(session.scalars(
        select(AuditEntry.org_id).distinct().order_by(AuditEntry.org_id)))
    breaks = []
    for chain in org_ids:
        broken = _first_break(session, chain)
        if broken:
            breaks.append(broken)
    return breaks


def _first_break(session: Session, org_id: str) -> ChainBreak | None:
    expected_prev = GENESIS
    rows = session.scalars(select(AuditEntry).where(AuditEntry.org_id == org_id)
                           .order_by(AuditEntry.id))
    for entry in rows:
        reason = None
        if entry.prev_hash != expected_prev:
            reason = "its prev_hash is not the hash of the entry before it (one was removed?)"
        else:
            try:
                recomputed = entry_hash(entry.org_id, entry.actor_id, entry.event,
                                        entry.details, entry.created_at, entry.prev_hash)
            except (ValueError, TypeError):
                recomputed = None
            if recomputed != entry.hash:
                reason = "its content does not match its hash (it was changed)"
        if reason:
            org = session.get(Org, org_id)
            return ChainBreak(org_id=org_id, org_name=org.name if org else None,
                              entry_id=entry.id, reason=reason)
        expected_prev = entry.hash
    return None


def _instant(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")
