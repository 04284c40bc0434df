"""Workers as real processes: `chaoshub run`'s embedded worker on SQLite, and `chaoshub worker`
processes on PostgreSQL + Redis (RQ), one of them killed with SIGKILL in the middle of a run."""

from __future__ import annotations

import os
import signal
import time

import pytest

from chaoshub.experiment import runs
from tests.helpers import (
    BIN,
    clean_env,
    descendants,
    running_hub,
    signed_in_session,
    start,
    stop,
)
from tests.run_data import runnable, sleeping, wait_for

pytestmark = pytest.mark.workers

RUNNER = ["experiments:read", "experiments:write", "executions:read", "executions:write",
          "runs:execute"]


def experiment(seconds: int = 0) -> dict:
    return sleeping(f"Wait {seconds} s", seconds) if seconds else runnable("Quick")


def test_the_embedded_worker_of_chaoshub_run_runs_an_experiment(tmp_path):
    with running_hub(tmp_path) as url:
        http = signed_in_session(url, "alice")
        saved = http.post(f"{url}/api/v1/orgs/alice/workspaces/Personal/experiments",
                          json=experiment()).json()
        started = http.post(f"{url}/api/v1/experiments/{saved['id']}/runs", json={})
        assert started.status_code == 202, started.text
        run_url = started.json()["url"]
        done = wait_for(lambda: (r := http.get(run_url).json())["status"] == "finished" and r,
                        60, "the run finished")
        assert done["origin"] == "hub" and done["execution_id"]
        assert done["node"].endswith(f":{_worker_pid(done)}")


def _worker_pid(run: dict) -> str:
    return run["node"].rsplit(":", 1)[1]


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_rq_workers_run_experiments_and_a_killed_one_loses_its_run_within_the_lease(
        app, settings, tmp_path, backend):
    env = clean_env(**{k: str(v) for k, v in settings.items()}, RUN_LEASE_SECONDS="4",
                    LOG_LEVEL="INFO")
    workers = [start([str(BIN / "chaoshub"), "worker"], tmp_path, env, tmp_path / f"w{n}.log")
               for n in range(2)]
    try:
        client = app.test_client()
        token = _token(app)
        headers = {"Authorization": f"Bearer {token}"}

        def create(document):
            answer = client.post("/api/v1/orgs/alice/workspaces/Personal/experiments",
                                 json=document, headers=headers)
            assert answer.status_code == 201, answer.get_json()
            return answer.get_json()["id"]

        def run(experiment_id):
            answer = client.post(f"/api/v1/experiments/{experiment_id}/runs", json={},
                                 headers=headers)
            assert answer.status_code == 202, answer.get_json()
            return answer.get_json()["id"]

        def status(run_id):
            with app.app_context():
                return runs.load_run(run_id)

        quick = run(create(experiment()))
        wait_for(lambda: status(quick).status == "finished", 60, "a quick run finished")

        slow = run(create(experiment(60)))
        row = wait_for(lambda: (r := status(slow)).event_count >= 3 and r, 60,
                       "the slow run started its method")
        pid = int(row.worker.rsplit(":", 1)[1])
        victim = next(w for w in workers if w.pid == pid)
        # The worker, its work-horse and the run's child (in its own session) all go at once.
        for process in [pid, *descendants(pid)]:
            os.kill(process, signal.SIGKILL)
        killed_at = time.monotonic()
        lost = wait_for(lambda: (r := status(slow)).status == "interrupted" and r, 30,
                        "the lost run interrupted")
        # Within the lease (4 s) and a round of the survivor's reaper (5 s).
        assert time.monotonic() - killed_at < 4 + 5 + 3
        assert lost.reason == "its worker was lost before the journal arrived"
        assert lost.event_count >= 3  # its events so far are kept
        assert victim.wait(5) == -signal.SIGKILL

        again = run(create(experiment()))
        wait_for(lambda: status(again).status == "finished", 60, "the survivor took a new run")
    finally:
        stop(*workers)
        for n in range(2):
            print((tmp_path / f"w{n}.log").read_text()[-3000:])


def _token(app) -> str:
    from tests.conftest import signed_up_client
    from tests.experiment_data import make_token

    return make_token(signed_up_client(app, "alice"), RUNNER)



def test_a_worker_without_the_signing_key_runs_for_a_hub_that_hosts_every_service(tmp_path):
    """The Kubernetes hub layout: the hub hosts all three services; a worker hosts experiment
    alone, holds the hub's service key but not its signing key, and asks the hub's auth and
    dashboard over /internal/rpc. A worker with a key of its own is refused there."""
    from tests.test_hardening_split import rpc

    with running_hub(tmp_path, "--no-worker") as url:
        instance = tmp_path / "instance"
        http = signed_in_session(url, "alice")
        saved = http.post(f"{url}/api/v1/orgs/alice/workspaces/Personal/experiments",
                          json=runnable("Run by a separate worker")).json()
        env = clean_env(CHAOSHUB_INSTANCE_PATH=str(tmp_path / "worker"),
                        CHAOSHUB_SERVICES="experiment", PROXY_HOPS="0",
                        EXPERIMENT_DATABASE_URL=f"sqlite:///{instance / 'experiment.db'}",
                        AUTH_SERVICE_URL=url, DASHBOARD_SERVICE_URL=url,
                        CHAOSHUB_SERVICE_KEY_FILE=str(instance / "service-key.pem"))
        worker = start([str(BIN / "chaoshub"), "worker"], tmp_path, env, tmp_path / "w.log")
        try:
            started = http.post(f"{url}/api/v1/experiments/{saved['id']}/runs", json={})
            assert started.status_code == 202, started.text
            done = wait_for(lambda: (r := http.get(started.json()["url"]).json())["status"]
                            not in ("queued", "running") and r, 60, "the run ended")
            assert (done["status"], done["reason"]) == ("finished", ""), (
                done, (tmp_path / "w.log").read_text()[-3000:])
            assert not list((tmp_path / "worker").glob("signing-key*"))  # never made one
        finally:
            stop(worker)
        # The hub takes calls from its own service's key only.
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        stranger = rpc({"auth": url}, "auth", "run_claim",
                       {"account_id": "x", "scopes": ["executions:read"], "run_id": "r"},
                       caller="experiment", key=Ed25519PrivateKey.generate())
        assert stranger.status_code == 401
