"""A process's own copy of hot cache entries in front of Redis, dropped the moment any process
says they changed.

Every request reads a resolved credential, a grant and often an experiment document: a Redis
round trip each. Here each process keeps what it read, for at most a few seconds, and listens on
Redis pub/sub, where every change (`Cache.forget`) names its keys; a named key is dropped at once
in every process. Copies are served only while the subscription is up: when it breaks, they are
emptied and reads go to Redis until it is back, so a revoked token or a removed member is refused
everywhere as fast as the message travels (milliseconds), and never later than the copies' short
life even if a message were lost without the connection failing.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Iterable

import redis

log = logging.getLogger(__name__)

RECONNECT_SECONDS = 1.0
PING_SECONDS = 1.0  # quiet this long, the listener asks Redis whether it is still there
SILENCE_SECONDS = 3.0  # and with no answer for this long, takes the connection for lost
CHANNEL_SUFFIX = ":invalidations"


class LocalLayer:
    """Bounded, short-lived copies of raw cache values, kept correct by invalidation messages."""

    def __init__(self, url: str, prefix: str, seconds: float, max_items: int):
        self.url = url
        self.channel = prefix + CHANNEL_SUFFIX
        self.seconds = seconds
        self.max_items = max_items
        self.listening = False  # set by the listener: copies are served only while it hears
        self._items: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self._lock = threading.Lock()
        self._generation = 0  # counts invalidations: a read that saw one in flight keeps nothing
        self._listener: _Listener | None = None

    def generation(self) -> int:
        """The invalidation count to hand back to `keep` after reading Redis."""
        if self._listener is None or not self._listener.alive():
            self._join()
        return self._generation

    def get(self, key: str) -> str | None:
        """The copy of `key`, if this process holds a live one and may serve it."""
        if not self.listening or self._listener is None or not self._listener.alive():
            return None
        item = self._items.get(key)
        if item is None or item[0] < time.monotonic():
            return None
        return item[1]

    def keep(self, key: str, raw: str, generation: int) -> None:
        """Keep what Redis answered for `key`, unless an invalidation arrived meanwhile."""
        if raw.isdigit():
            return  # a counter (`Cache.hit`): it changes without a message
        with self._lock:
            if not self.listening or generation != self._generation:
                return
            self._items[key] = (time.monotonic() + self.seconds, raw)
            self._items.move_to_end(key)
            while len(self._items) > self.max_items:
                self._items.popitem(last=False)

    def drop(self, keys: Iterable[str]) -> None:
        """Forget `keys` (a change named them, here or in another process)."""
        with self._lock:
            self._generation += 1
            for key in keys:
                self._items.pop(key, None)

    def reset(self, listening: bool) -> None:
        """Forget everything: the subscription started or broke, messages may have been missed."""
        with self._lock:
            self._generation += 1
            self._items.clear()
            self.listening = listening

    def _join(self) -> None:
        # A forked process inherits copies it would never hear about, and perhaps a lock the
        # parent's listener held at the fork: it starts afresh.
        self._lock = threading.Lock()
        self.reset(listening=False)
        self._listener = _Listener.of(self.url)
        self._listener.add(self)


class _Listener:
    """One subscriber thread per process and Redis, for every layer of that Redis."""

    _lock = threading.Lock()
    _running: dict[tuple[int, str], _Listener] = {}

    @classmethod
    def of(cls, url: str) -> _Listener:
        with cls._lock:
            key = (os.getpid(), url)
            if key not in cls._running or not cls._running[key].alive():
                cls._running[key] = listener = cls(url)
                listener.thread.start()
            return cls._running[key]

    def __init__(self, url: str):
        self.url = url
        self.pid = os.getpid()
        self.subscribed = False
        self._layers: weakref.WeakSet[LocalLayer] = weakref.WeakSet()
        self._lock = threading.Lock()
        self.thread = threading.Thread(target=self._listen, name="cache-invalidations",
                                       daemon=True)

    def alive(self) -> bool:
        return self.pid == os.getpid() and self.thread.is_alive()

    @classmethod
    def _after_fork(cls) -> None:
        cls._lock = threading.Lock()  # the parent's thread may have held it at the fork

    def add(self, layer: LocalLayer) -> None:
        with self._lock:
            self._layers.add(layer)
            layer.reset(listening=self.subscribed)

    def _each(self, channel: str | None = None) -> list[LocalLayer]:
        with self._lock:
            return [x for x in self._layers if channel is None or x.channel == channel]

    def _set(self, subscribed: bool) -> bool:
        with self._lock:
            was, self.subscribed = self.subscribed, subscribed
            layers = list(self._layers)
        for layer in layers:
            layer.reset(listening=subscribed)  # nothing is missed from a new subscription on
        return was

    def _listen(self) -> None:
        # Named in Redis's CLIENT LIST: which process listens, for operators (and tests).
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5, socket_timeout=2.0,
                                      client_name=f"chaoshub-invalidations-{os.getpid()}")
        while True:
            pubsub = client.pubsub()
            try:
                # Every hub on this Redis, whatever its prefix: each layer takes its own channel.
                pubsub.psubscribe("*" + CHANNEL_SUFFIX)
                heard = time.monotonic()
                while True:
                    message = pubsub.get_message(timeout=0.5)
                    now = time.monotonic()
                    if message is not None:
                        heard = now
                        self._take(message)
                    elif now - heard > SILENCE_SECONDS:
                        # The pings below went unanswered: a connection lost without a word.
                        raise redis.ConnectionError("Redis stopped answering")
                    elif now - heard > PING_SECONDS:
                        pubsub.ping()
            except Exception as exc:  # noqa: BLE001 (whatever broke, copies must not outlive it)
                if self._set(False):
                    log.warning("cache invalidations lost (%s): reading from Redis alone", exc)
                time.sleep(RECONNECT_SECONDS)
            finally:
                try:
                    pubsub.close()
                except Exception:  # noqa: BLE001, S110 (a dead connection closes as it can)
                    pass

    def _take(self, message: dict) -> None:
        if message["type"] == "psubscribe":
            self._set(True)
        elif message["type"] == "pmessage":
            try:
                keys = json.loads(message["data"])
            except ValueError:
                keys = None
            if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
                log.warning("an invalidation message that names no keys was ignored")
                return
            for layer in self._each(message["channel"].decode()):
                layer.drop(keys)


os.register_at_fork(after_in_child=_Listener._after_fork)
