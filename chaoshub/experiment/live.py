"""A run watched live: its events and status changes as server-sent events.

The events come from the run's Redis stream when there is one (any hub replica reads it),
else from the database, polled; a viewer that reconnects with `Last-Event-ID` gets what it
missed from the database first. The run's status is read from its row, the truth that workers,
the reaper and the control all change. The generator never holds a database session between
reads: each read opens and closes its own, and waiting happens on Redis or in a sleep.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select

from chaoshub.core.db import transaction
from chaoshub.core.models import utcnow
from chaoshub.experiment import hub_runs, run_stream, runs
from chaoshub.experiment.models import Run, RunEvent

SERVICE = "experiment"
ENDED = hub_runs.ENDED  # the statuses a run ends in: a stream ends with them
RETRY_MS = 2000  # how soon a browser reconnects after the stream closes
POLL_SECONDS = 0.5  # without Redis, how often the database is read
STATUS_SECONDS = 2.0  # with Redis, how often the run's row is read for its status
KEEPALIVE_SECONDS = 15.0  # a comment now and then: proxies keep the connection, and a
# viewer who left is noticed at the next write, which frees the server's thread
MAX_SECONDS = 300.0  # then the stream closes and the browser reconnects, checked again
# A hub run that ends with an abort is first "finished" (its journal is in), then "aborted":
# how long a "finished" hub run is watched before it is taken as the end.
SETTLE_SECONDS = 1.5
# Each open stream holds one of the server's threads: past this many in one process, viewers
# are told to come back (the run page still shows the run, with its refresh link). Half the
# threads of the image's gunicorn (16 a worker): the other half serve everything else.
STREAMS_PER_PROCESS = 8
EXTENSION = "chaoshub.live_streams"
_slots_made = threading.Lock()


def stream_slot() -> Callable[[], None] | None:
    """Take one of the process's stream slots: the function that gives it back, or None when
    all are taken (RUN_STREAMS_PER_PROCESS, default STREAMS_PER_PROCESS)."""
    with _slots_made:
        slots = current_app.extensions.setdefault(EXTENSION, threading.BoundedSemaphore(
            current_app.config["RUN_STREAMS_PER_PROCESS"] or STREAMS_PER_PROCESS))
    if not slots.acquire(blocking=False):
        return None
    released = threading.Event()

    def release() -> None:
        if not released.is_set():  # once, however often the server closes the response
            released.set()
            slots.release()

    return release


def event_frame(event: dict[str, Any]) -> str:
    """A run event as a server-sent event: its seq as id, its type as event name."""
    return (f"id: {event['seq']}\nevent: {event['type']}\n"
            f"data: {json.dumps(event, ensure_ascii=False, default=str)}\n\n")


def status_frame(status: dict[str, Any]) -> str:
    """A status change as a server-sent event (no id: a reconnection gets the status anew)."""
    return f"event: status\ndata: {json.dumps(status, ensure_ascii=False, default=str)}\n\n"


def events_after(run_id: str, after: int) -> list[dict[str, Any]]:
    """The run's stored events past `seq` `after`, flat, in `seq` order."""
    with transaction(SERVICE) as session:
        rows = session.scalars(select(RunEvent).where(RunEvent.run_id == run_id,
                                                      RunEvent.seq > after)
                               .order_by(RunEvent.seq))
        return [{"seq": r.seq, "type": r.type,
                 "timestamp": r.timestamp.isoformat() if r.timestamp else None, **r.data}
                for r in rows]


@dataclass
class Watch:
    """What one viewer watches: a run, from which `seq` on, and how much of it."""

    run_id: str
    detailed: bool  # False: the status only (outsiders who may see no more)
    after: int = 0
    status_body: Callable[[Run], dict[str, Any]] = lambda row: {"status": row.status}
    max_seconds: float | None = None  # None: MAX_SECONDS
    _sent: set[int] = field(default_factory=set)
    _last_status: dict[str, Any] | None = None
    _last_write: float = 0.0

    def frames(self) -> Iterator[str]:
        """The stream: its retry hint, the status, the events so far, then what happens, until
        the run ends (its final status last) or `max_seconds` pass."""
        opened = time.monotonic()
        lifetime = self.max_seconds or MAX_SECONDS
        self._last_write = opened
        yield f"retry: {RETRY_MS}\n\n"
        # The stream's position is taken before the database is read: what arrives between
        # the two is in both, and sent once.
        position = run_stream.last_id(self.run_id) if self.detailed else None
        row = runs.load_run(self.run_id)
        if row is None:
            return
        if row.status not in ENDED:  # else the end says it, once
            yield from self._status(row)
        yield from self._catch_up(row)
        checked = time.monotonic()
        while True:
            if row.status in ENDED:
                yield from self._end(row)
                return
            if time.monotonic() - opened >= lifetime:
                return  # the browser reconnects, with its Last-Event-ID
            if position is not None:
                read = run_stream.read(self.run_id, position)
                if read is None:
                    position = None  # Redis failed: the database from now on
                else:
                    position, new = read
                    yield from self._send(new)
                    ending = any(e["type"] in ("run-finished", "run-interrupted",
                                               "run-signal-exit") for e in new)
                    if not ending and time.monotonic() - checked < STATUS_SECONDS:
                        yield from self._keepalive()
                        continue
            else:
                time.sleep(POLL_SECONDS)
            row = runs.load_run(self.run_id)
            checked = time.monotonic()
            if row is None:
                return  # deleted with its experiment
            if row.status not in ENDED:  # else the end says it, once
                yield from self._status(row)
            yield from self._catch_up(row)
            yield from self._keepalive()

    def _send(self, events: list[dict[str, Any]]) -> Iterator[str]:
        if not self.detailed:
            return
        for event in events:
            if event["seq"] > self.after and event["seq"] not in self._sent:
                self._sent.add(event["seq"])
                self._last_write = time.monotonic()
                yield event_frame(event)

    def _catch_up(self, row: Run) -> Iterator[str]:
        # The database has every event the stream may have missed (published while Redis
        # was away, or before this viewer came).
        if self.detailed and row.last_seq > max(self._sent, default=self.after):
            yield from self._send(events_after(self.run_id,
                                               max(self._sent, default=self.after)))

    def _status(self, row: Run, ended: bool = False) -> Iterator[str]:
        body = {**self.status_body(row), "ended": ended}
        if body != self._last_status:
            self._last_status = body
            self._last_write = time.monotonic()
            yield status_frame(body)

    def _end(self, row: Run) -> Iterator[str]:
        if (row.status == "finished" and row.origin == "hub" and row.finished_at is not None
                and utcnow() - row.finished_at < timedelta(seconds=2 * SETTLE_SECONDS)):
            time.sleep(SETTLE_SECONDS)
            row = runs.load_run(self.run_id) or row
        yield from self._catch_up(row)
        yield from self._status(row, ended=True)

    def _keepalive(self) -> Iterator[str]:
        if time.monotonic() - self._last_write >= KEEPALIVE_SECONDS:
            self._last_write = time.monotonic()
            yield ": keep-alive\n\n"
