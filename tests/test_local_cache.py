"""Each process's own copies of cache entries in front of a real Redis, and the pub/sub
messages that drop them everywhere when something changes."""

from __future__ import annotations

import time
from uuid import uuid4

import pytest
import redis

from chaoshub.core.cache import MISSING, Cache, RedisBackend
from chaoshub.core.local_cache import LocalLayer
from tests.test_cache import own_redis  # noqa: F401 (a fixture)


def two_processes(url: str, seconds: float = 5) -> tuple[Cache, Cache]:
    """Two caches of one hub as two processes see it: one Redis, a local layer each."""
    prefix = f"chaoshub-test-{uuid4().hex[:12]}"
    return tuple(Cache(RedisBackend(url), 60, prefix, LocalLayer(url, prefix, seconds, 100))
                 for _ in range(2))


def until(check, timeout: float = 5.0) -> float:
    """Seconds until `check()` holds; fails after `timeout`."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout, "never happened"
        time.sleep(0.005)
    return time.monotonic() - started


def listening(store: Cache) -> bool:
    store.local.generation()  # joins the listener
    return store.local.listening


def test_a_copy_is_served_without_redis_and_dropped_everywhere_by_a_change(redis_url):
    first, second = two_processes(redis_url)
    until(lambda: listening(first) and listening(second))
    key = first.key("experiment", "experiment", "e1")
    assert first.remember(key, lambda: {"title": "v1"}) == {"title": "v1"}
    assert second.remember(key, lambda: pytest.fail("in Redis")) == {"title": "v1"}
    # Changed in Redis behind the hub's back: both still answer their own copy, no round trip.
    redis.Redis.from_url(redis_url).set(key, '{"title": "elsewhere"}')
    assert first.remember(key, lambda: pytest.fail("kept")) == {"title": "v1"}
    assert second.peek(key) == [{"title": "v1"}]
    # A change through one process: the other drops its copy as the message arrives.
    second.forget(key)
    assert second.remember(key, lambda: {"title": "v2"}) == {"title": "v2"}
    # v2 is in Redis, or not at all when the message reached second's own copies while it
    # loaded v2 (then nothing is cached): either way, first no longer answers v1. The 1 s
    # bound is timed by tests/test_cache_processes.py alone on the machine; here, beside the
    # other tests' load, the message only has to come well before the copy's 5 s end.
    until(lambda: first.peek(key) in ([{"title": "v2"}], [MISSING]), timeout=2.0)


def test_counters_are_never_copied(redis_url):
    store, _ = two_processes(redis_url)
    until(lambda: listening(store))
    key = store.key("auth", "failures", "10.0.0.1")
    store.hit(key, 60)
    assert store.peek(key) == [1]
    store.hit(key, 60)
    assert store.peek(key) == [2]


def test_a_read_that_crossed_a_change_keeps_no_copy(redis_url):
    store, _ = two_processes(redis_url)
    until(lambda: listening(store))
    generation = store.local.generation()
    store.local.drop(["other"])  # a change arrived while the read was on its way
    store.local.keep("k", '{"stale": true}', generation)
    assert store.local.get("k") is None
    store.local.keep("k", '{"fresh": true}', store.local.generation())
    assert store.local.get("k") == '{"fresh": true}'


def test_copies_live_a_few_seconds_at_most(redis_url):
    store, _ = two_processes(redis_url, seconds=0.2)
    until(lambda: listening(store))
    store.local.keep("k", '"v"', store.local.generation())
    assert store.local.get("k") == '"v"'
    time.sleep(0.25)
    assert store.local.get("k") is None


def test_no_copy_is_served_while_the_messages_cannot_arrive(own_redis):  # noqa: F811
    process, url = own_redis
    store, _ = two_processes(url)
    until(lambda: listening(store))
    key = store.key("auth", "token", "t1")
    assert store.remember(key, lambda: {"account": "a"}) == {"account": "a"}
    assert store.local.get(key) is not None
    process.kill()
    process.wait()
    # Redis gone: the copy goes with the subscription, and reads load from the databases.
    until(lambda: not store.local.listening, timeout=5.0)
    assert store.local.get(key) is None
    assert store.remember(key, lambda: {"account": "from the database"}) == {
        "account": "from the database"}


def test_a_message_that_names_no_keys_changes_nothing_and_stops_nothing(redis_url):
    first, second = two_processes(redis_url)
    until(lambda: listening(first) and listening(second))
    key = first.key("experiment", "experiment", "e2")
    assert first.remember(key, lambda: {"title": "v1"}) == {"title": "v1"}
    client = redis.Redis.from_url(redis_url)
    for junk in (b"1", b"not json", b'{"a": 1}', b"[1, 2]"):
        client.publish(first.channel, junk)
    # The listener lives on: a real change still arrives.
    second.forget(key)
    until(lambda: first.local.get(key) is None, timeout=1.0)
    assert first.local.listening


def test_a_process_keeping_no_copies_still_announces_its_changes(redis_url):
    keeper, _ = two_processes(redis_url)
    until(lambda: listening(keeper))
    plain = Cache(RedisBackend(redis_url), 60, keeper.prefix)  # CACHE_LOCAL_SECONDS=0
    key = keeper.key("auth", "token", "t2")
    assert keeper.remember(key, lambda: {"account": "a"}) == {"account": "a"}
    plain.forget(key)
    until(lambda: keeper.local.get(key) is None, timeout=1.0)


def test_a_derived_value_is_dropped_by_a_change_in_another_process(redis_url):
    first, second = two_processes(redis_url)
    until(lambda: listening(first) and listening(second))
    assert first.derived(("grant", "bob"), lambda: "member") == "member"
    assert first.derived(("grant", "bob"), lambda: pytest.fail("kept")) == "member"
    second.forget(second.key("dashboard", "roles", "bob"))
    until(lambda: first.derived(("grant", "bob"), lambda: "gone") == "gone", timeout=1.0)


def test_nothing_derived_is_kept_while_the_messages_cannot_arrive(own_redis):  # noqa: F811
    process, url = own_redis
    store, _ = two_processes(url)
    until(lambda: listening(store))
    assert store.derived(("grant", "bob"), lambda: "member") == "member"
    process.kill()
    process.wait()
    until(lambda: not store.local.listening, timeout=5.0)
    assert store.derived(("grant", "bob"), lambda: "asked again") == "asked again"


def test_a_value_loaded_while_another_process_changed_it_is_not_stored(redis_url):
    first, second = two_processes(redis_url)
    until(lambda: listening(first) and listening(second))
    key = first.key("dashboard", "members", "ws1")

    def load_across_a_change():
        # The member is removed through the other process while this one reads the old list.
        second.forget(key)
        until(lambda: first.local.generation() != before)  # its message has arrived
        return {"members": ["alice", "bob"]}

    before = first.local.generation()
    assert first.remember(key, load_across_a_change) == {"members": ["alice", "bob"]}
    # Answered, but cached nowhere: the next read loads the list as it is now.
    assert first.peek(key) == [MISSING] and second.peek(key) == [MISSING]
    assert second.remember(key, lambda: {"members": ["alice"]}) == {"members": ["alice"]}
    assert until(lambda: first.peek(key) == [{"members": ["alice"]}]) < 1.0
