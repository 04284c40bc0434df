"""Waiting for a run to end, for callers that want one answer: a CI job gating on a hub run.

The wait blocks on the run's Redis stream when there is one (woken by the run's events, and at
least once a second to read its row: statuses such as `refused` or `aborted` come with no
event), else it sleeps between reads of the row. Each read opens and closes its own database
session: no connection or transaction is held while waiting.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import timedelta

from flask import current_app

from chaoshub.core.models import utcnow
from chaoshub.experiment import live, run_stream, runs
from chaoshub.experiment.hub_runs import ENDED
from chaoshub.experiment.models import Run

MAX_SECONDS = 600  # the longest wait one request may ask for (?wait=)
BLOCK_SECONDS = 1.0  # with Redis, the longest the row goes unread
POLL_SECONDS = live.POLL_SECONDS  # without Redis, how often the row is read
WAITS_PER_CALLER = 2  # waits one account may hold at once in a process
_waiting: Counter[str] = Counter()
_waiting_lock = threading.Lock()


def until_ended(run_id: str, seconds: float, caller: str | None) -> Run | None:
    """The run's row once it has ended, or as it is after `seconds` (at most
    RUN_WAIT_MAX_SECONDS); None if it is gone. Each wait holds one of the process's threads,
    counted with the live views (RUN_STREAMS_PER_PROCESS), and `caller` (an account id) holds
    at most WAITS_PER_CALLER of them; past either, or for a caller with no account, the row is
    read at once and the caller asks again."""
    seconds = min(seconds, current_app.config["RUN_WAIT_MAX_SECONDS"])
    if seconds <= 0 or not caller or not _take(caller):
        return runs.load_run(run_id)
    try:
        release = live.stream_slot()
        if release is None:
            return runs.load_run(run_id)
        try:
            return _wait(run_id, seconds)
        finally:
            release()
    finally:
        _give_back(caller)


def _take(caller: str) -> bool:
    # A wait outlives a client that has gone (a sync server cannot tell): one account's waits
    # must not take every thread the live views share.
    with _waiting_lock:
        if _waiting[caller] >= WAITS_PER_CALLER:
            return False
        _waiting[caller] += 1
        return True


def _give_back(caller: str) -> None:
    with _waiting_lock:
        _waiting[caller] -= 1
        if _waiting[caller] <= 0:
            del _waiting[caller]


def _wait(run_id: str, seconds: float) -> Run | None:
    deadline = time.monotonic() + seconds
    # The stream's position first: an event that comes between the two reads still wakes us.
    position = run_stream.last_id(run_id)
    row = runs.load_run(run_id)
    while row is not None and row.status not in ENDED:
        left = deadline - time.monotonic()
        if left <= 0:
            return row
        if position is not None:
            read = run_stream.read(run_id, position,
                                   block_ms=max(1, int(min(BLOCK_SECONDS, left) * 1000)))
            if read is None:
                position = None  # Redis failed: the row alone from now on
            else:
                position = read[0]
        else:
            time.sleep(min(POLL_SECONDS, left))
        row = runs.load_run(run_id)
    if row is not None and settling(row):
        time.sleep(live.SETTLE_SECONDS)
        row = runs.load_run(run_id) or row
    return row


def settling(row: Run) -> bool:
    """True for a hub run that has just become `finished`: its worker may yet settle it as
    `aborted` (stopped, or past its maximum duration) in a moment, as live viewers allow for."""
    return (row.status == "finished" and row.origin == "hub" and row.finished_at is not None
            and utcnow() - row.finished_at < timedelta(seconds=2 * live.SETTLE_SECONDS))
