"""The cache sits behind the services: helpful when Redis answers, harmless when it does not."""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import time
from uuid import uuid4

import pytest
import redis

from chaoshub import create_app
from chaoshub.core.cache import Cache, MemoryBackend, RedisBackend, cache
from tests.conftest import post_json, signed_up_client, unavailable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def own_redis(tmp_path):
    """A Redis server of this test's own, so the test may stop it."""
    binary = shutil.which("redis-server")
    if binary is None:
        unavailable("redis-server", FileNotFoundError("redis-server is not installed"))
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    for _ in range(100):
        try:
            redis.Redis.from_url(url).ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    yield process, url
    process.kill()
    process.wait()


def test_memory_cache_reads_through_and_forgets():
    store = Cache(MemoryBackend(), default_ttl=60)
    calls = []
    key = store.key("dashboard", "role", "org", "acct")
    assert key == "chaoshub:dashboard:role:org:acct"
    load = lambda: calls.append(1) or {"role": "owner"}  # noqa: E731
    assert store.remember(key, load) == {"role": "owner"}
    assert store.remember(key, load) == {"role": "owner"}
    assert len(calls) == 1
    store.forget(key)
    store.remember(key, load)
    assert len(calls) == 2


def test_a_derived_value_is_kept_until_any_entry_changes(monkeypatch):
    store = Cache(MemoryBackend(), default_ttl=60)
    made = []

    def work_out():
        made.append(1)
        return len(made)

    assert store.derived(("grant", "a"), work_out) == 1
    assert store.derived(("grant", "a"), work_out) == 1  # kept
    assert store.derived(("grant", "b"), work_out) == 2  # its own key
    store.forget(store.key("dashboard", "anything"))
    assert store.derived(("grant", "a"), work_out) == 3  # any change drops them all
    # And a few seconds at most.
    now = time.monotonic()
    monkeypatch.setattr(time, "monotonic", lambda: now + 60)
    assert store.derived(("grant", "a"), work_out) == 4


def test_a_derived_value_its_keep_refuses_is_worked_out_each_time():
    store = Cache(MemoryBackend(), default_ttl=60)
    made = []

    def work_out():
        made.append(1)
        return None if len(made) < 3 else len(made)

    def keep(value):
        return value is not None

    assert store.derived(("token", "a"), work_out, keep=keep) is None
    assert store.derived(("token", "a"), work_out, keep=keep) is None  # not kept: again
    assert store.derived(("token", "a"), work_out, keep=keep) == 3
    assert store.derived(("token", "a"), work_out, keep=keep) == 3  # kept now
    assert len(made) == 3


def test_a_value_worked_out_while_an_entry_changed_is_not_kept():
    store = Cache(MemoryBackend(), default_ttl=60)

    def changed_meanwhile():
        store.forget(store.key("dashboard", "roles"))
        return "stale"

    assert store.derived(("grant", "a"), changed_meanwhile) == "stale"
    assert store.derived(("grant", "a"), lambda: "fresh") == "fresh"


def test_nothing_derived_is_kept_with_redis_and_no_copies_of_its_own(redis_url):
    store = Cache(RedisBackend(redis_url), default_ttl=30, prefix=f"chaoshub-test-{uuid4().hex}")
    assert store.derived(("grant", "a"), lambda: 1) == 1
    assert store.derived(("grant", "a"), lambda: 2) == 2  # another process could change it


def test_memory_cache_entries_expire():
    store = Cache(MemoryBackend(), default_ttl=60)
    calls = []
    store.remember("k", lambda: calls.append(1), ttl=1)
    time.sleep(1.05)
    store.remember("k", lambda: calls.append(1), ttl=1)
    assert len(calls) == 2


def test_redis_cache_keeps_values_with_a_ttl(redis_url):
    client = redis.Redis.from_url(redis_url)
    store = Cache(RedisBackend(redis_url), default_ttl=30, prefix=f"chaoshub-test-{uuid4().hex}")
    key = store.key("experiment", "experiment", "e1")
    assert store.remember(key, lambda: {"title": "t"}) == {"title": "t"}
    assert store.remember(key, lambda: pytest.fail("should be cached")) == {"title": "t"}
    assert 0 < client.ttl(key) <= 30
    store.forget(key)
    assert client.get(key) is None


def test_writes_invalidate_what_they_change(app, backend, sample_experiment):
    alice = signed_up_client(app, "alice")
    bob = signed_up_client(app, "bob")
    # Bob is refused (the refusal is cached), then the experiment appears in a public workspace.
    assert post_json(bob, "/api/v1/orgs/alice/workspaces/Public/experiments",
                     sample_experiment).status_code == 403
    created = post_json(alice, "/api/v1/orgs/alice/workspaces/Public/experiments",
                        sample_experiment).get_json()
    assert bob.get(f"/api/v1/experiments/{created['id']}").status_code == 200
    with app.app_context():
        key = cache().key("experiment", "experiment", created["id"])
        assert cache().backend.get(key) is not None


def test_a_dead_redis_port_costs_nothing_but_speed(settings, sample_experiment, caplog):
    app = create_app({**settings, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"})
    with caplog.at_level(logging.WARNING, logger="chaoshub.core.cache"):
        alice = signed_up_client(app, "alice")
        created = post_json(alice, "/api/v1/orgs/alice/workspaces/Personal/experiments",
                            sample_experiment)
        assert created.status_code == 201
        assert alice.get(created.headers["Location"]).status_code == 200
    assert "redis unavailable" in caplog.text


def test_stopping_a_real_redis_mid_way(settings, own_redis, sample_experiment, caplog):
    process, url = own_redis
    app = create_app({**settings, "REDIS_URL": url})
    alice = signed_up_client(app, "alice")
    created = post_json(alice, "/api/v1/orgs/alice/workspaces/Personal/experiments",
                        sample_experiment)
    location = created.headers["Location"]
    assert alice.get(location).status_code == 200
    assert redis.Redis.from_url(url).dbsize() > 0  # Redis really held the cache

    process.kill()
    process.wait()
    with caplog.at_level(logging.WARNING, logger="chaoshub.core.cache"):
        assert alice.get(location).status_code == 200
        assert alice.get("/").status_code == 200
        again = post_json(alice, "/api/v1/orgs/alice/workspaces/Personal/experiments",
                          sample_experiment)
        assert again.status_code == 201
    assert "redis unavailable" in caplog.text
    assert app.test_client().get("/status/health").get_json()["status"] == "degraded"


def test_a_change_that_could_not_reach_redis_is_done_once_redis_answers(redis_url):
    prefix = f"chaoshub-test-{uuid4().hex}"
    writer, reader = RedisBackend(redis_url, prefix), RedisBackend(redis_url, prefix)
    store = Cache(writer, default_ttl=30, prefix=prefix)
    key = store.key("dashboard", "roles", "org", "bob")
    store.put(key, {"member": True})
    listener = redis.Redis.from_url(redis_url).pubsub()
    listener.subscribe(store.channel)
    # As after a failure: this process skips Redis for a while, its delete goes nowhere.
    writer._down_until = time.monotonic() + 60
    store.forget(key)
    assert writer.owes() and reader.get(key) is not None  # stale in Redis, for now
    deadline = time.monotonic() + 3
    while writer.owes() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not writer.owes()
    assert reader.get(key) is None  # deleted despite the pause: the debt does not wait
    messages = [listener.get_message(timeout=1) for _ in range(2)]
    assert any(m and m["type"] == "message" and key in m["data"].decode() for m in messages)
    listener.close()


def test_reads_wait_a_moment_once_redis_answers_after_a_failure(redis_url):
    backend = RedisBackend(redis_url, f"chaoshub-test-{uuid4().hex}")
    backend.set(f"{backend.prefix}:k", "v", 30)
    assert backend.get(f"{backend.prefix}:k") == "v"
    backend._fail("get", redis.ConnectionError("as if Redis were away"))
    backend.ping()  # it answers again
    # Another process may still owe Redis a change: this one reads the databases meanwhile.
    assert backend.get(f"{backend.prefix}:k") is None
    assert backend.get_many([f"{backend.prefix}:k"]) == [None]
    backend._reads_from = time.monotonic()  # the moment has passed
    assert backend.get(f"{backend.prefix}:k") == "v"
