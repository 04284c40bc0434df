"""Cache-aside helpers: Redis when configured (with each process's own copies of what it read in
front of it), in-process otherwise; never needed to be right."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

import redis
from flask import Flask, current_app

from chaoshub.core import metrics
from chaoshub.core.local_cache import CHANNEL_SUFFIX, LocalLayer

log = logging.getLogger(__name__)

EXTENSION = "chaoshub.cache"
# What `peek` answers for a key it does not hold (a cached None is a real answer: a miss).
MISSING = object()
# Without Redis: how long, and how many, values worked out from entries a process keeps.
MEMORY_DERIVED_SECONDS = 5.0
MEMORY_DERIVED_ITEMS = 4096
T = TypeVar("T")


class MemoryBackend:
    """A small thread-safe TTL store for a single process."""

    name = "memory"

    def __init__(self, max_items: int = 10_000):
        self._items: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()
        self._max_items = max_items

    def get(self, key: str) -> str | None:
        item = self._items.get(key)
        if item is None or item[0] < time.monotonic():
            return None
        return item[1]

    def get_many(self, keys: list[str]) -> list[str | None]:
        return [self.get(key) for key in keys]

    def set(self, key: str, value: str, ttl: int) -> None:
        with self._lock:
            if len(self._items) >= self._max_items:
                now = time.monotonic()
                self._items = {k: v for k, v in self._items.items() if v[0] >= now}
                if len(self._items) >= self._max_items:
                    self._items.clear()
            self._items[key] = (time.monotonic() + ttl, value)

    def delete(self, keys: list[str]) -> None:
        with self._lock:
            for key in keys:
                self._items.pop(key, None)

    def incr(self, key: str, ttl: int) -> int:
        with self._lock:
            expires, value = self._items.get(key, (0.0, "0"))
            if expires < time.monotonic():
                expires, value = time.monotonic() + ttl, "0"
            count = int(value) + 1
            self._items[key] = (expires, str(count))
            return count

    def ping(self) -> None:
        return None


class RedisBackend:
    """Redis, with short timeouts and a pause after a failure so a dead Redis costs little.

    A change it could not announce (Redis away) is owed: the keys it names may still be in
    Redis, stale, when Redis comes back with its data. A thread of this process deletes and
    announces them as soon as Redis answers again; and every process, once Redis answers again
    after a failure, leaves its reads a moment (`SETTLE_SECONDS`) for those debts to be paid.
    """

    name = "redis"
    RETRY_AFTER = 5.0
    REPAY_EVERY = 0.2  # how often a process owing invalidations tries Redis again
    SETTLE_SECONDS = 1.0  # after a failure, reads wait this long once Redis answers again
    MAX_OWED = 10_000  # past this many keys owed, the whole prefix is dropped on the return

    def __init__(self, url: str, prefix: str = "chaoshub"):
        self.client = redis.Redis.from_url(
            url, socket_connect_timeout=0.25, socket_timeout=0.5, health_check_interval=30
        )
        self.prefix = prefix
        self._down_until = 0.0
        self._failed = False  # since the last answer
        self._reads_from = 0.0  # reads go to the databases until then (settling)
        self._owed: set[str] = set()
        self._owed_channel: str | None = None
        self._owed_everything = False
        self._owed_lock = threading.Lock()
        self._repayer: threading.Thread | None = None

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        if time.monotonic() < self._down_until:
            return None
        try:
            value = fn()
        except redis.RedisError as exc:
            self._fail(what, exc)
            return None
        self._answered()
        return value

    def _fail(self, what: str, exc: Exception) -> None:
        self._down_until = time.monotonic() + self.RETRY_AFTER
        if not self._failed:
            log.warning("redis unavailable (%s: %s); serving from the databases", what, exc)
        self._failed = True

    def _answered(self) -> None:
        if self._failed:
            self._failed = False
            self._reads_from = time.monotonic() + self.SETTLE_SECONDS
            log.warning("redis answers again; reading it from %.1f s on", self.SETTLE_SECONDS)

    def _settling(self) -> bool:
        return time.monotonic() < self._reads_from

    def get(self, key: str) -> str | None:
        if self._settling():
            return None
        value = self._call("get", lambda: self.client.get(key))
        return value.decode() if isinstance(value, bytes) else value

    def get_many(self, keys: list[str]) -> list[str | None]:
        if self._settling():
            return [None] * len(keys)
        values = self._call("mget", lambda: self.client.mget(keys)) or [None] * len(keys)
        return [v.decode() if isinstance(v, bytes) else v for v in values]

    def set(self, key: str, value: str, ttl: int) -> None:
        self._call("set", lambda: self.client.set(key, value, ex=ttl))

    def delete(self, keys: list[str], announce: tuple[str, str] | None = None) -> None:
        """Delete `keys`; with `announce` (channel, message), publish it in the same trip.
        Keys that could not be deleted are owed, and deleted once Redis answers again."""
        if not keys:
            return

        def delete_and_publish() -> bool:
            pipe = self.client.pipeline(transaction=False)
            pipe.delete(*keys)
            if announce is not None:
                pipe.publish(*announce)
            pipe.execute()
            return True

        if not self._call("delete", delete_and_publish):
            self._owe(keys, announce[0] if announce else None)

    def _owe(self, keys: list[str], channel: str | None) -> None:
        with self._owed_lock:
            if len(self._owed) + len(keys) > self.MAX_OWED:
                self._owed_everything = True
                self._owed.clear()
            elif not self._owed_everything:
                self._owed.update(keys)
            self._owed_channel = channel
            if self._repayer is None or not self._repayer.is_alive():
                self._repayer = threading.Thread(target=self._repay, daemon=True,
                                                 name="cache-owed-invalidations")
                self._repayer.start()

    def owes(self) -> bool:
        """Whether some change could not reach Redis yet."""
        return bool(self._owed) or self._owed_everything

    def _repay(self) -> None:
        # Its own trips, not `_call`'s: the pause after a failure must not delay the debt.
        while True:
            time.sleep(self.REPAY_EVERY)
            with self._owed_lock:
                keys, channel = sorted(self._owed), self._owed_channel
                everything = self._owed_everything
            try:
                if everything:
                    keys = [k.decode() for k in
                            self.client.scan_iter(match=f"{self.prefix}:*", count=1000)]
                for start in range(0, len(keys), 500):
                    batch = keys[start:start + 500]
                    pipe = self.client.pipeline(transaction=False)
                    pipe.delete(*batch)
                    if channel is not None:
                        pipe.publish(channel, json.dumps(batch))
                    pipe.execute()
            except redis.RedisError:
                continue
            with self._owed_lock:
                self._owed.difference_update(keys)
                if everything:
                    self._owed_everything = False
                if not self.owes():
                    self._repayer = None
                    log.warning("redis answers again: %d invalidations it missed are done",
                                len(keys))
                    return

    def incr(self, key: str, ttl: int) -> int | None:
        def count() -> int:
            pipe = self.client.pipeline()
            pipe.incr(key)
            pipe.expire(key, ttl, nx=True)
            return pipe.execute()[0]

        return self._call("incr", count)

    def ping(self) -> None:
        try:
            self.client.ping()
        except redis.RedisError as exc:
            self._fail("ping", exc)
            raise
        self._down_until = 0.0
        self._answered()


class Cache:
    """Namespaced cache-aside: `remember` reads through, `forget` invalidates."""

    def __init__(self, backend: MemoryBackend | RedisBackend, default_ttl: int,
                 prefix: str = "chaoshub", local: LocalLayer | None = None):
        self.backend = backend
        self.default_ttl = default_ttl
        self.prefix = prefix
        self.local = local  # a process's own copies in front of Redis (local_cache.py)
        # Values worked out from entries (`derived`), each with the generation it was made in.
        self._derived: OrderedDict[tuple, tuple[int, float, Any]] = OrderedDict()
        self._derived_seconds = local.seconds if local else MEMORY_DERIVED_SECONDS
        self._derived_items = local.max_items if local else MEMORY_DERIVED_ITEMS
        self._changes = 0  # this process's own `forget`s: the generation without a local layer
        self._derived_lock = threading.Lock()
        # Changes are announced on Redis even by a process that keeps no copies: others may.
        self.channel = prefix + CHANNEL_SUFFIX if isinstance(backend, RedisBackend) else None

    def key(self, service: str, *parts: Any) -> str:
        """The full key of an entry owned by `service`."""
        return ":".join([self.prefix, service, *(str(p) for p in parts)])

    def remember(
        self, key: str, load: Callable[[], Any], ttl: int | None = None
    ) -> Any:
        """The cached JSON value of `key`, loading and storing it on a miss; a value loaded
        while a change came in is answered but not stored (it may be what the change undid)."""
        # Taken before the read: a change that lands while the value loads keeps it from a copy.
        generation = self.local.generation() if self.local else 0
        since = self._generation()
        raw = self._read([key])[0]
        metrics.cache_read(raw is not None)
        if raw is not None:
            try:
                return json.loads(raw)
            except ValueError:
                pass
        value = load()
        if since is not None and self._generation() != since:
            return value  # the change's forget may have come before this store: none
        encoded = json.dumps(value)
        self.backend.set(key, encoded, ttl or self.default_ttl)
        if self.local:
            self.local.keep(key, encoded, generation)
        return value

    def peek(self, *keys: str) -> list[Any]:
        """The cached JSON values of `keys` in one round trip; MISSING for those not held."""
        values = []
        for raw in self._read(list(keys)):
            metrics.cache_read(raw is not None)
            try:
                values.append(MISSING if raw is None else json.loads(raw))
            except ValueError:
                values.append(MISSING)
        return values

    def derived(self, key: tuple, work_out: Callable[[], T],
                keep: Callable[[T], bool] | None = None) -> T:
        """A value worked out from cached entries (`work_out()`, immutable), kept in this process
        until any entry changes and for a few seconds at most (and only when `keep(value)`)."""
        # Any change drops every derived value: they are few, and changes rare next to reads.
        generation = self._generation()
        if generation is None:
            return work_out()
        found = self._derived.get(key)
        if found is not None and found[0] == generation and found[1] > time.monotonic():
            return found[2]
        value = work_out()
        if keep is not None and not keep(value):
            return value
        # Kept with the generation read before working it out: a change meanwhile voids it.
        with self._derived_lock:
            self._derived[key] = (generation, time.monotonic() + self._derived_seconds, value)
            self._derived.move_to_end(key)
            while len(self._derived) > self._derived_items:
                self._derived.popitem(last=False)
        return value

    def _generation(self) -> int | None:
        # With Redis, only a process that hears every change may keep what it worked out.
        if self.local is not None:
            generation = self.local.generation()
            return generation if self.local.listening else None
        return self._changes if isinstance(self.backend, MemoryBackend) else None

    def generation(self) -> int | None:
        """A mark of the changes this process has heard of, to hand to `put` (None when it
        cannot hear them)."""
        return self._generation()

    def put(self, key: str, value: Any, ttl: int | None = None,
            since: int | None = None) -> None:
        """Store `value` (JSON) under `key`, as `remember` does after a load; with `since` (a
        `generation()` taken before the load), not when a change came in meanwhile: what was
        loaded may be what that change undid."""
        if since is not None and self._generation() != since:
            return
        self.backend.set(key, json.dumps(value), ttl or self.default_ttl)

    def forget(self, *keys: str) -> None:
        """Drop entries after a write that changes them, in every process's own copies too."""
        if self.local is not None:
            self.local.drop(keys)
        if self.channel is None:
            self.backend.delete(list(keys))
        else:
            self.backend.delete(list(keys), announce=(self.channel, json.dumps(keys)))
        # Counted once the entries are gone: a value worked out from them before is void.
        with self._derived_lock:
            self._changes += 1

    def _read(self, keys: list[str]) -> list[str | None]:
        # What `put` stores was read from the databases just now, as any process would: only
        # `forget` (a change) needs the other processes told.
        if self.local is None:
            return self.backend.get_many(keys) if len(keys) > 1 else [self.backend.get(keys[0])]
        found = [self.local.get(key) for key in keys]
        wanted = [key for key, raw in zip(keys, found, strict=True) if raw is None]
        if not wanted:
            return found
        generation = self.local.generation()
        fetched = iter(self.backend.get_many(wanted))
        answers = []
        for key, raw in zip(keys, found, strict=True):
            if raw is None:
                raw = next(fetched)
                if raw is not None:
                    self.local.keep(key, raw, generation)
            answers.append(raw)
        return answers

    def hit(self, key: str, window: int) -> int | None:
        """Count one more event in a fixed window of `window` seconds; None if not counted."""
        return self.backend.incr(key, window)

    def status(self) -> str:
        """'ok', 'absent' (no Redis configured) or 'degraded' (Redis not answering)."""
        if isinstance(self.backend, MemoryBackend):
            return "absent"
        try:
            self.backend.ping()
            return "ok"
        except redis.RedisError:
            return "degraded"


def init_app(app: Flask) -> None:
    """Pick the backend from REDIS_URL."""
    config = app.config
    url = config.get("REDIS_URL")
    backend = RedisBackend(url, config["CACHE_PREFIX"]) if url else MemoryBackend()
    local = None
    if url and config["CACHE_LOCAL_SECONDS"] > 0:
        local = LocalLayer(url, config["CACHE_PREFIX"], config["CACHE_LOCAL_SECONDS"],
                           config["CACHE_LOCAL_ITEMS"])
    app.extensions[EXTENSION] = Cache(backend, config["CACHE_TTL"], config["CACHE_PREFIX"],
                                      local)


def cache() -> Cache:
    """The current app's cache."""
    return current_app.extensions[EXTENSION]
