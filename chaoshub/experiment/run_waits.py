"""Waiting for a run to end, for callers that want one answer: a CI job gating on a hub run.

The wait blocks on the run's Redis stream when there is one (woken by the run's events, and at
least once a second to read its row: statuses such as `refused` or `aborted` come with no
event), else it sleeps between reads of the row. Each read opens and closes its own database
session: no connection or transaction is held while waiting.
"""

from __future__ import annotations

import time
from datetime import timedelta

from flask import current_app

from chaoshub.core.models import utcnow
from chaoshub.experiment import live, run_stream, runs
from chaoshub.experiment.hub_runs import ENDED
from chaoshub.experiment.models import Run

MAX_SECONDS = 600  # the longest wait one request may ask for (?wait=)
BLOCK_SECONDS = 1.0  # with Redis, the longest the row goes unread
POLL_SECONDS = live.POLL_SECONDS  # without Redis, how often the row is read


def until_ended(run_id: str, seconds: float) -> Run | None:
    """The run's row once it has ended, or as it is after `seconds` (at most
    RUN_WAIT_MAX_SECONDS); None if it is gone. Each wait holds one of the process's threads,
    counted with the live views (RUN_STREAMS_PER_PROCESS): past them, the row is read at once
    and the caller asks again."""
    seconds = min(seconds, current_app.config["RUN_WAIT_MAX_SECONDS"])
    release = live.stream_slot() if seconds > 0 else None
    if release is None:
        return runs.load_run(run_id)
    try:
        return _wait(run_id, seconds)
    finally:
        release()


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
