"""A run's events on Redis: one stream per run, appended as events are kept, read by viewers.

The database stays the truth (runs.record_events keeps every event there first); the stream
only lets any hub replica hand new events to the people watching within moments. Without Redis
nothing is published and viewers read the database. A Redis that fails is left alone for a few
seconds, so that a worker recording events is never held up by it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

import redis
from flask import current_app

log = logging.getLogger(__name__)

EXTENSION = "chaoshub.run_stream"
MAXLEN = 10_000  # as many as a run keeps (runs.MAX_EVENTS_PER_RUN)
RETRY_AFTER = 5.0
# Past the longest run and its grace: a stream nobody needs any more goes by itself.
TTL_MARGIN = 3600
BLOCK_MS = 1000  # how long one read waits for new entries


class _Streams:
    """The app's Redis client for run streams, and when it last failed."""

    def __init__(self, url: str):
        # Timeouts past one blocking read, so that a wait is never taken for a dead server.
        self.client = redis.Redis.from_url(url, socket_connect_timeout=0.5,
                                           socket_timeout=BLOCK_MS / 1000 + 4)
        self.down_until = 0.0


_lock = threading.Lock()


def _streams() -> _Streams | None:
    url = current_app.config.get("REDIS_URL")
    if not url:
        return None
    found = current_app.extensions.get(EXTENSION)
    if found is None:
        with _lock:
            found = current_app.extensions.setdefault(EXTENSION, _Streams(url))
    return found


def enabled() -> bool:
    """True when runs' events go through Redis (REDIS_URL is set)."""
    return bool(current_app.config.get("REDIS_URL"))


def key(run_id: str) -> str:
    """The stream of a run, under the hub's cache prefix (hubs may share a Redis)."""
    return f"{current_app.config['CACHE_PREFIX']}:run:{run_id}:events"


def publish(run_id: str, events: list[dict[str, Any]]) -> bool:
    """Append a run's newly kept events (flat: seq, type, timestamp and their data) to its
    stream; False when there is no Redis or it failed (viewers then read the database)."""
    streams = _streams()
    if streams is None or not events or time.monotonic() < streams.down_until:
        return False
    name = key(run_id)
    ttl = current_app.config["RUN_MAX_SECONDS"] + current_app.config["RUN_GRACE_SECONDS"] \
        + TTL_MARGIN
    try:
        pipe = streams.client.pipeline(transaction=False)
        for event in events:
            pipe.xadd(name, {"seq": event["seq"],
                             "event": json.dumps(event, ensure_ascii=False, default=str)},
                      maxlen=MAXLEN, approximate=True)
        pipe.expire(name, ttl)
        pipe.execute()
    except redis.RedisError as exc:
        streams.down_until = time.monotonic() + RETRY_AFTER
        log.warning("run %s: events not published on Redis (%s); viewers read the database",
                    run_id, exc)
        return False
    return True


def last_id(run_id: str) -> str | None:
    """The id of the stream's newest entry ("0-0" when empty); None without a usable Redis."""
    streams = _streams()
    if streams is None or time.monotonic() < streams.down_until:
        return None
    try:
        newest = streams.client.xrevrange(key(run_id), "+", "-", count=1)
    except redis.RedisError as exc:
        streams.down_until = time.monotonic() + RETRY_AFTER
        log.warning("run %s: its stream could not be read (%s)", run_id, exc)
        return None
    return newest[0][0].decode() if newest else "0-0"


def read(run_id: str, after: str, block_ms: int = BLOCK_MS) -> tuple[str, list[dict]] | None:
    """The entries past `after`, waiting up to `block_ms` for one: the new position and the
    events; None when Redis failed (the caller reads the database instead)."""
    streams = _streams()
    if streams is None or time.monotonic() < streams.down_until:
        return None
    try:
        answer = streams.client.xread({key(run_id): after}, count=500, block=block_ms)
    except redis.RedisError as exc:
        streams.down_until = time.monotonic() + RETRY_AFTER
        log.warning("run %s: its stream could not be read (%s)", run_id, exc)
        return None
    events = []
    for _, entries in answer or []:
        for entry_id, fields in entries:
            after = entry_id.decode()
            try:
                event = json.loads(fields[b"event"])
            except (KeyError, ValueError):
                continue  # not one of ours: skipped, the database has the real one
            if isinstance(event, dict) and isinstance(event.get("seq"), int):
                events.append(event)
    return after, events
