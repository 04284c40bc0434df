"""Experiment's feed outbox: the activity feed entries its writes tell of, kept in its own
database until dashboard has taken them.

A write puts its entries into the `feed_outbox` table in its own transaction (`add`): an entry
exists exactly when its change does, whatever happens to the process after the commit.
`deliver` hands the pending entries to dashboard's `record_activities` in batches, oldest
first (as many as one call's body holds), and deletes them in the same transaction; dashboard
keeps each entry's outbox id, so a batch delivered twice (the delete lost) adds nothing the
second time. On PostgreSQL each process delivers the rows no other has locked; on SQLite, which
locks no row, one process delivers at a time (a lock on a file beside the database), so that two
do not both hand the same entries over and add writers to the file the requests write.
An entry dashboard refuses (its checks) is logged and left out; one whose call dashboard
refuses whole is tried alone, then dropped, so that it holds back no other.

When: never before the answer. With FEED_DELIVERY_SECONDS > 0 a thread of each process takes
what is pending at most that often after a commit woke it (many entries, one dashboard
transaction), and every RETRY_SECONDS or so what is left (dashboard away, another process
gone), backing off while dashboard keeps failing. With 0, a request's entries go right after
its answer is sent (the response's close), and a write outside a request (a worker, a command)
delivers at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
from collections.abc import Iterator
from typing import Any

from flask import Flask, current_app, has_app_context
from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from chaoshub.core.courier import Courier
from chaoshub.core.db import database, transaction
from chaoshub.core.errors import BadRequest, PayloadTooLarge, ValidationFailed, first_line
from chaoshub.core.models import new_ordered_id, utcnow
from chaoshub.dashboard import service as dashboard
from chaoshub.experiment.models import FeedOutboxEntry

SERVICE = "experiment"
EXTENSION = "chaoshub.feed_outbox"
BATCH = 100  # entries per call to dashboard, at most
CALL_BYTES = 48 * 1024  # the JSON of one call's entries, at most (BODY_MAX_BYTES is 64 KiB)
ENTRY_BYTES = 400  # an entry's JSON besides its texts: ids, keys, time
# What dashboard answers to a call it will never take, however often it is made.
REFUSED = (BadRequest, PayloadTooLarge, ValidationFailed)
RETRY_SECONDS = 5.0  # the longest an entry left behind waits for its next attempt
log = logging.getLogger(__name__)
_table = FeedOutboxEntry.__table__


def entry(actor_id: str, org_id: str, kind: str, summary: str, workspace_id: str | None = None,
          scope: str | None = None, outsider_summary: str | None = None,
          audited: dict[str, Any] | None = None, subject: str | None = None) -> dict[str, Any]:
    """An outbox row for a feed entry (see dashboard's NewActivity for what each field means)."""
    # Time-ordered (nobody reads these ids): the outbox and dashboard's index of delivered
    # outbox ids take each entry next to the last, not onto a random page.
    return {"id": new_ordered_id(), "org_id": org_id, "workspace_id": workspace_id,
            "actor_id": actor_id, "kind": kind, "summary": summary, "scope": scope,
            "outsider_summary": outsider_summary, "audited": audited, "subject": subject,
            "created_at": utcnow()}


def add(session: Session, rows: list[dict[str, Any]]) -> None:
    """Put entries into the outbox inside the caller's transaction (one plain INSERT)."""
    # A single row goes as a plain execute: the driver's executemany costs more for one.
    session.execute(insert(_table), rows[0] if len(rows) == 1 else rows)


class Busy(Exception):
    """Another process is delivering this SQLite database's entries."""


def deliver(limit: int = BATCH) -> int:
    """Hand what the outbox holds to dashboard, `limit` entries a call at most, oldest first,
    until a call takes less; how many entries dashboard added. Raises what the call raises
    (dashboard away): the entries of that call stay for the next attempt; and Busy when
    another process delivers them (SQLite)."""
    with _sole_deliverer():
        return _deliver(limit)


@contextlib.contextmanager
def _sole_deliverer() -> Iterator[None]:
    path = database(SERVICE).sqlite_file()
    if path is None:
        yield
        return
    # flock: released by the kernel when the holder exits, however it ends.
    with open(path.with_name(path.name + ".feed-lock"), "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Busy() from None
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _deliver(limit: int) -> int:
    added = 0
    while True:
        with transaction(SERVICE) as session:
            # Locked, skipping those another process is delivering (PostgreSQL; SQLite has a
            # single writer, and a batch that goes twice changes nothing).
            rows = session.execute(
                select(_table).order_by(_table.c.created_at, _table.c.id).limit(limit)
                .with_for_update(skip_locked=True)).all()
            if not rows:
                return added
            entries = _one_call([dashboard.NewActivity(**row._mapping) for row in rows])
            added += _hand_over(entries)
            session.execute(delete(_table).where(_table.c.id.in_([e.id for e in entries])))
        if len(entries) == len(rows) < limit:  # neither a full batch nor cut short
            return added


def _one_call(entries: list[Any]) -> list[Any]:
    # What one call's body can hold (the oldest first, one at least): a process hosting
    # dashboard alone reads no body larger than BODY_MAX_BYTES.
    room, size = CALL_BYTES, 0
    for taken, found in enumerate(entries):
        size += _json_size(found)
        if size > room and taken:
            return entries[:taken]
    return entries


def _json_size(found: Any) -> int:
    texts = (found.kind, found.summary, found.outsider_summary, found.subject)
    # Escaped as the call's JSON escapes them (non-ASCII takes up to 12 bytes a character).
    return ENTRY_BYTES + sum(len(json.dumps(t)) for t in texts if t) + (
        len(json.dumps(found.audited)) if found.audited is not None else 0)


def _hand_over(entries: list[Any]) -> int:
    try:
        return dashboard.record_activities(entries)
    except REFUSED as exc:
        if len(entries) == 1:
            # No retry would mend it: dropped, not left to hold back the entries after it.
            log.error("feed entry %s (%s) dropped, dashboard refuses it: %s", entries[0].id,
                      entries[0].kind[:40], exc)
            return 0
        # An entry dashboard's checks did not foresee spoils the call: each goes alone, so
        # that only it is dropped.
        return sum(_hand_over([found]) for found in entries)


def pending() -> int:
    """How many entries wait in the outbox."""
    with transaction(SERVICE) as session:
        return session.scalar(select(func.count()).select_from(_table)) or 0


def committed() -> None:
    """Have the entries a commit just put into the outbox delivered, as FEED_DELIVERY_SECONDS
    says (after the commit of a write that fed)."""
    if has_app_context():
        current_app.extensions[EXTENSION].committed()


def _deliver_or_log() -> bool:
    try:
        deliver()
        return True
    except Busy:
        # The other process may have read the outbox before this one's entries went in:
        # the thread looks again in a moment (with 0, the next delivery takes them).
        current_app.extensions[EXTENSION].again_soon()
        return True
    except Exception as exc:  # whatever failed, the entries wait in the outbox
        log.warning("feed entries stay in the outbox until the next attempt: %s",
                    first_line(exc))
        return False


def init_app(app: Flask) -> None:
    """Deliver this app's feed entries as its FEED_DELIVERY_SECONDS says."""
    courier = Courier("chaoshub-feed", float(app.config["FEED_DELIVERY_SECONDS"]),
                      RETRY_SECONDS, _deliver_or_log)
    app.extensions[EXTENSION] = courier
    courier.init_app(app)


def stop(app: Flask) -> None:
    """Stop this process's delivery thread and wait for its round to end."""
    courier = app.extensions.get(EXTENSION)
    if courier is not None:
        courier.stop()
