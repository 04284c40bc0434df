"""Two gunicorn workers of one hub with Redis: what one changes, the other stops serving from its
own copies within a second (chaoshub/core/local_cache.py)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
import redis
import requests

from tests.experiment_data import experiment
from tests.helpers import running_hub, signed_in_session

pytestmark = pytest.mark.workers
BOUND = 1.0  # seconds: the README's promise
ROUNDS = 40  # requests on fresh connections, spread over both workers


def answers(url: str, headers: dict) -> list[requests.Response]:
    # A new connection each time: gunicorn's two workers race to accept them.
    return [requests.get(url, headers=headers, timeout=10) for _ in range(ROUNDS)]


@pytest.fixture
def hub(tmp_path, redis_url):
    with running_hub(tmp_path, "--production", "--workers", "2", "--no-worker",
                     REDIS_URL=redis_url, CACHE_PREFIX=f"chaoshub-test-{uuid.uuid4().hex[:12]}",
                     CACHE_LOCAL_SECONDS="30") as url:
        yield url, server_pid(url)


def listening_workers(redis_url: str, server: int) -> set[int]:
    """The gunicorn workers of `server` that subscribed to invalidations (after a first read)."""
    names = [c.get("name", "") for c in redis.Redis.from_url(redis_url).client_list()]
    pids = {int(n.rsplit("-", 1)[1]) for n in names
            if n.startswith("chaoshub-invalidations-")}
    return {pid for pid in pids if parent_of(pid) == server}


def server_pid(url: str) -> int:
    """The pid of the `chaoshub run` serving `url` (gunicorn's master: the workers' parent)."""
    port = url.rsplit(":", 1)[1]
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"run" in argv and b"--port" in argv and port.encode() in argv:
            return int(entry.name)
    raise AssertionError(f"no chaoshub run on port {port}")


def parent_of(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def test_a_token_revoked_and_a_document_changed_through_one_worker_hold_on_both(
        hub, redis_url):
    hub, hub_pid = hub
    http = signed_in_session(hub, "alice")
    made = http.post(f"{hub}/api/v1/tokens", json={"name": "ci", "scopes": ["full"]}).json()
    bearer = {"Authorization": f"Bearer {made['secret']}"}
    saved = http.post(f"{hub}/api/v1/orgs/alice/workspaces/Personal/experiments",
                      json=experiment()).json()
    document_url = f"{hub}/api/v1/experiments/{saved['id']}"
    # Warm: both workers keep the token, the grant and the document (for 30 s, left alone).
    assert {r.status_code for r in answers(document_url, bearer)} == {200}
    assert len(listening_workers(redis_url, hub_pid)) == 2  # both answered some of them

    changed = {**experiment(), "title": "Changed through one worker"}
    assert http.put(document_url, json=changed).status_code == 200
    time.sleep(BOUND)
    titles = {r.json()["experiment"]["title"] for r in answers(document_url, bearer)}
    assert titles == {"Changed through one worker"}

    assert http.delete(f"{hub}/api/v1/tokens/{made['id']}").status_code == 204
    time.sleep(BOUND)
    refused = {r.status_code for r in answers(document_url, bearer)}
    # Refused everywhere: 401, then 429 once the address has failed too often.
    assert 401 in refused and refused <= {401, 429}


def test_a_member_removed_through_one_worker_is_refused_by_both(hub):
    hub, _ = hub
    alice, bob = signed_in_session(hub, "alice"), signed_in_session(hub, "bob")
    assert alice.post(f"{hub}/api/v1/orgs", json={"name": "team"}).status_code == 201
    assert alice.post(f"{hub}/api/v1/orgs/team/workspaces", json={"name": "ops"}).status_code == 201
    assert alice.post(f"{hub}/api/v1/orgs/team/members",
                      json={"username": "bob", "role": "member"}).status_code == 201
    saved = alice.post(f"{hub}/api/v1/orgs/team/workspaces/ops/experiments",
                       json=experiment()).json()
    made = bob.post(f"{hub}/api/v1/tokens", json={"name": "ci", "scopes": ["full"]}).json()
    bearer = {"Authorization": f"Bearer {made['secret']}"}
    # The workspace is private: what bob may read there rests on his membership alone.
    document_url = f"{hub}/team/ops/experiment/{saved['id']}"
    # Warm: both workers keep bob's token, his grant in the workspace and the document.
    assert {r.status_code for r in answers(document_url, bearer)} == {200}

    assert alice.delete(f"{hub}/api/v1/orgs/team/members/bob").status_code == 204
    time.sleep(BOUND)
    assert {r.status_code for r in answers(document_url, bearer)} == {404}
