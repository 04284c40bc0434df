"""Redis killed (SIGKILL) under load, then started again: the hub serves every request from its
databases meanwhile, says `degraded`, and comes back to Redis by itself, refusing a member
removed while Redis was away (a Redis that keeps its data, as a production one does)."""

from __future__ import annotations

import time

import pytest
import redis
import requests

from tests.experiment_data import experiment
from tests.fault_servers import (
    Load,
    bearer_session,
    hub,
    hub_env,
    postgres_cluster,
    redis_server,
    unique_journal,
    wait_for,
    with_token,
)

pytestmark = pytest.mark.faults
CLIENTS = 16
ROUNDS = 24  # requests on fresh connections: gunicorn's workers race to accept them


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults-redis")
    with redis_server(root, persistent=True) as cache, postgres_cluster() as postgres:
        env = hub_env(root, postgres.create_databases(), cache.url, CACHE_LOCAL_SECONDS="30")
        with hub(root / "hub", env, workers=2) as served:
            yield served, cache


def health(url: str) -> str:
    return requests.get(f"{url}/status/health", timeout=5).json()["status"]


def statuses(url: str, secret: str) -> set[int]:
    return {requests.get(url, headers={"Authorization": f"Bearer {secret}"}, timeout=5)
            .status_code for _ in range(ROUNDS)}


def cache_commands(client: redis.Redis) -> int:
    """The cache's reads, writes and announcements Redis has served (not pings, not ours)."""
    stats = client.info("commandstats")
    return sum(stats.get(f"cmdstat_{name}", {}).get("calls", 0)
               for name in ("get", "mget", "set", "del", "publish"))


def test_redis_killed_under_load_costs_no_request_and_leaves_no_stale_permission(servers):
    served, cache = servers
    url = served.url
    alice, secret = bearer_session(url, "alice")
    _, bob_secret = bearer_session(url, "bob")
    assert alice.post(f"{url}/api/v1/orgs", json={"name": "team"}).status_code == 201
    assert alice.post(f"{url}/api/v1/orgs/team/workspaces", json={"name": "ops"}).status_code == 201
    assert alice.post(f"{url}/api/v1/orgs/team/members",
                      json={"username": "bob", "role": "member"}).status_code == 201
    secret_doc = alice.post(f"{url}/api/v1/orgs/team/workspaces/ops/experiments",
                            json=experiment()).json()
    # Private: what bob may read there rests on his membership alone.
    bobs_read = f"{url}/team/ops/experiment/{secret_doc['id']}"
    assert statuses(bobs_read, bob_secret) == {200}  # his grant is in Redis now, and kept

    mine = alice.post(f"{url}/api/v1/orgs/alice/workspaces/Personal/experiments",
                      json=experiment()).json()
    read_url = f"{url}/alice/Personal/experiment/{mine['id']}"
    publish_url = f"{url}/api/alice/Personal/experiment/{mine['id']}/execution"
    load = Load({
        "read": lambda s, n: s.get(read_url, timeout=10),
        "publish": lambda s, n: s.post(publish_url, json=unique_journal(), timeout=10),
    }, CLIENTS, session=with_token(secret))
    hits = redis.Redis.from_url(cache.url)

    with load:
        wait_for(lambda: len(load.report) > 50, 30, "the load warmed up")
        cache.kill()
        killed_at = load.now()
        seen, took = wait_for(lambda: health(url) == "degraded", 10, "health said degraded")
        print(f"\nredis killed at {killed_at:.1f} s; health degraded after {took:.2f} s")
        # Removed while Redis is away: the hub could not drop the grant it keeps there.
        assert alice.delete(f"{url}/api/v1/orgs/team/members/bob").status_code == 204
        assert health(url) == "degraded"
        time.sleep(1)
        cache.start()
        back_at = load.now()
        _, recovered = wait_for(lambda: all(health(url) == "ok" for _ in range(6)), 15,
                                "health said ok on every worker")
        before = cache_commands(hits)
        _, reused = wait_for(lambda: cache_commands(hits) > before + 20, 15,
                             "the hub used Redis again")
        print(f"redis back at {back_at:.1f} s; health ok after {recovered:.2f} s, "
              f"cache used again after {recovered + reused:.2f} s")
        refused = statuses(bobs_read, bob_secret)
        time.sleep(1)
    report = load.report
    print(report.summary(f"{CLIENTS} clients, reads and journal publishes"))
    down = report.between(killed_at, back_at)
    print(f"while redis was down: {len(down)} requests, "
          f"{len(report.failures(lambda s: s in down and (s.status or 500) >= 400))} failed")

    assert len(down) > 20, "the load went on while Redis was down"
    assert report.failures(lambda s: s.status not in (200, 201)) == []
    # Refused (404: the workspace is private) by every worker, right after the recovery and on.
    assert refused == {404}
    assert statuses(bobs_read, bob_secret) == {404}
    assert "Traceback" not in served.log.read_text(errors="replace")
