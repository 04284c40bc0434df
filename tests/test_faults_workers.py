"""A worker killed (SIGKILL) in the middle of a run, and a worker host lost: the run ends
`interrupted` within the lease, the runs queued meanwhile are taken by the surviving worker, and
the lost worker's late writes, when it comes back, are refused.

Servers of the module's own (tests/fault_servers.py): redis-server, a PostgreSQL cluster, the hub
under gunicorn, and three `chaoshub worker` processes (RQ) with a 3 s lease: both faults at once,
so that their waits overlap. The runs' state is read from the hub's database, as the hub and the
reaper see it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests import fault_servers
from tests.helpers import BIN, descendants, signed_in_session
from tests.run_data import runnable, sleeping, wait_for

pytestmark = pytest.mark.faults
LEASE = 3
REAP = 5  # the survivor's reaper runs with RQ's maintenance, every REAP_SECONDS
COLUMNS = ("status", "reason", "worker", "event_count", "last_seq", "lease_until",
           "finished_at", "execution_id")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """The servers, the hub's settings (for its workers) and alice's signed-in session."""
    root = tmp_path_factory.mktemp("faults-workers")
    with fault_servers.redis_server(root) as redis, fault_servers.postgres_cluster() as pg:
        databases = pg.create_databases()
        with pg.connect() as admin:
            # As README advises: a worker host lost in the middle of a write holds its row
            # locks until PostgreSQL ends its session.
            admin.execute("ALTER DATABASE chaoshub_experiment "
                          "SET idle_in_transaction_session_timeout = '5s'")
        env = fault_servers.hub_env(root, databases, redis.url, RUN_LEASE_SECONDS=str(LEASE),
                                    LOG_LEVEL="INFO")
        upgraded = subprocess.run([str(BIN / "chaoshub"), "db", "upgrade"], env=env, cwd=root,
                                  capture_output=True, text=True, timeout=120)
        assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
        logs = root / "workers"
        logs.mkdir()
        # The workers start while the hub does: each takes seconds to load.
        with fault_servers.workers(logs, env, count=3) as workers, \
                fault_servers.hub(root / "hub", env, workers=1) as hub:
            try:
                http = signed_in_session(hub.url, "alice")
                # The quick runs in a workspace of their own: one runs 3 at once at most.
                made = http.post(f"{hub.url}/api/v1/orgs/alice/workspaces",
                                 json={"name": "Queue"})
                assert made.status_code == 201, made.text
                yield {"hub": hub, "pg": pg, "http": http, "workers": workers, "logs": logs,
                       "experiments": {
                           "quick": save(hub.url, http, "Queue", runnable("Quick")),
                           "slow": save(hub.url, http, "Personal", sleeping("Waits 4 s", 4))}}
            finally:
                # A warm shutdown (RQ's first SIGTERM), all at once; an idle worker is gone
                # within a second. The one frozen and resumed does not finish its warm shutdown
                # (it waited out 15 s here): fault_servers.workers' second SIGTERM, RQ's cold
                # shutdown, ends it at once.
                for process in workers:
                    if process.poll() is None:
                        process.terminate()
                deadline = time.monotonic() + 3
                for process in workers:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        process.wait(max(deadline - time.monotonic(), 0))


def save(url: str, http, workspace: str, document: dict) -> str:
    answer = http.post(f"{url}/api/v1/orgs/alice/workspaces/{workspace}/experiments",
                       json=document)
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def start_run(stack, which: str) -> str:
    url = stack["hub"].url
    answer = stack["http"].post(f"{url}/api/v1/experiments/{stack['experiments'][which]}/runs",
                                json={})
    assert answer.status_code == 202, answer.text
    return answer.json()["id"]


def row(stack, run_id: str) -> dict:
    """The run as the hub's database holds it."""
    with stack["pg"].connect("chaoshub_experiment") as db:
        values = db.execute(f"SELECT {', '.join(COLUMNS)} FROM runs WHERE id = %s",
                            (run_id,)).fetchone()
        events = db.execute("SELECT count(*) FROM run_events WHERE run_id = %s",
                            (run_id,)).fetchone()[0]
        executions = db.execute("SELECT count(*) FROM executions WHERE experiment_id = "
                                "(SELECT experiment_id FROM runs WHERE id = %s)",
                                (run_id,)).fetchone()[0]
    return {**dict(zip(COLUMNS, values, strict=True)), "events": events,
            "executions": executions}


def running_on(stack, workers, run_id: str):
    """The worker process holding the run, once its method's sleep has started."""
    def sleeping():
        with stack["pg"].connect("chaoshub_experiment") as db:
            return db.execute("SELECT count(*) FROM run_events WHERE run_id = %s AND type = "
                              "'activity-started' AND data->>'name' = 'wait'",
                              (run_id,)).fetchone()[0]

    wait_for(sleeping, 60, "the slow run started its sleep")
    pid = int(row(stack, run_id)["worker"].rsplit(":", 1)[1])
    return next(w for w in workers if w.pid == pid)


def finished_by(stack, run_ids: list[str], survivor) -> list[float]:
    """Wait until each run finished on the survivor; the seconds each took from now."""
    began, took = time.monotonic(), []
    for run_id in run_ids:
        done = wait_for(lambda r=run_id: (x := row(stack, r))["status"] not in
                        ("queued", "running") and x, 60, "a run queued meanwhile ended")
        assert done["status"] == "finished", done
        assert done["worker"].endswith(f":{survivor.pid}") and done["execution_id"]
        took.append(round(time.monotonic() - began, 1))
    return took


def interrupted_within_the_lease(stack, run_id: str, since: float) -> tuple[dict, float]:
    lost = wait_for(lambda: (r := row(stack, run_id))["status"] == "interrupted" and r,
                    LEASE + REAP + 10, "the lost run interrupted")
    after = time.monotonic() - since
    # Within the lease and a round of the survivor's reaper, give or take a few seconds of a
    # busy machine (polling, RQ's maintenance coming after a job).
    assert after < LEASE + REAP + 4, after
    assert lost["reason"] == "its worker was lost before the journal arrived"
    assert lost["lease_until"] is None and lost["execution_id"] is None
    assert lost["event_count"] >= 3 and lost["events"] == lost["event_count"]
    return lost, after


def worker_logs(root: Path) -> str:
    return "\n".join(p.read_text(errors="replace")[-3000:] for p in root.glob("worker-*.log"))


def test_a_killed_worker_and_a_lost_host_lose_their_runs_and_the_survivor_runs_the_queue(
        stack):
    """One worker is killed (SIGKILL of the worker, its work-horse and the run's child, which
    has a session of its own); another's host is lost, by freezing (SIGSTOP) the worker and
    every process below it: they answer nothing and renew nothing, their connections stay open
    but silent. Both runs end `interrupted` within the lease; the runs queued meanwhile go to
    the third worker. Then the frozen run's child is resumed (SIGCONT) first and ends its run,
    writing its events and journal; then its worker and work-horse, which read them and try to
    keep them: their events, lease renewal, journal and final status are all refused."""
    workers, logs = stack["workers"], stack["logs"]
    frozen: list[int] = []
    try:
        doomed = {fault: start_run(stack, "slow") for fault in ("killed", "frozen")}
        holders = {fault: running_on(stack, workers, run) for fault, run in doomed.items()}
        (survivor,) = [w for w in workers if w not in holders.values()]
        killed, stopped = holders["killed"], holders["frozen"]
        (horse,) = [p for p in descendants(stopped.pid) if _parent(p) == stopped.pid]
        frozen = [stopped.pid, *descendants(stopped.pid)]
        for pid in [killed.pid, *descendants(killed.pid)]:
            os.kill(pid, signal.SIGKILL)
        for pid in frozen:
            os.kill(pid, signal.SIGSTOP)
        fault_at = time.monotonic()
        queued = [start_run(stack, "quick") for _ in range(2)]
        lost = {fault: interrupted_within_the_lease(stack, run, fault_at)
                for fault, run in doomed.items()}
        took = finished_by(stack, queued, survivor)
        assert killed.wait(5) == -signal.SIGKILL

        # The run's child first: it finishes its run while its supervisor is still away.
        child = [p for p in frozen if p not in (stopped.pid, horse)]
        for pid in child:
            os.kill(pid, signal.SIGCONT)
        wait_for(lambda: all(_ended(p) for p in child), 30, "the run's child ended")
        for pid in (horse, stopped.pid):
            os.kill(pid, signal.SIGCONT)
        frozen = []
        # The work-horse reads what the child left, reports it, and exits.
        wait_for(lambda: _ended(horse), 30, "the resumed work-horse ended its job")
        late = row(stack, doomed["frozen"])
        assert late == lost["frozen"][0], "the resumed worker changed the run"
        assert stopped.poll() is None  # it goes on serving the queue
        said = (logs / f"worker-{workers.index(stopped)}.log").read_text()
        # It did try: its events and its outcome were refused.
        run = doomed["frozen"]
        assert f"run {run}: events not kept: the run has ended (interrupted)" in said
        assert f"run {run}: no longer this worker's" in said
    except BaseException:
        print(worker_logs(logs))
        raise
    finally:
        for pid in frozen:
            os.kill(pid, signal.SIGCONT)
    assert "Traceback" not in worker_logs(logs)
    for fault, (row_, after) in lost.items():
        print(f"{fault} worker: its run interrupted {after:.1f} s after the fault (lease "
              f"{LEASE} s, reaper every {REAP} s), {row_['events']} events kept")
    print(f"{len(queued)} runs queued meanwhile finished on the survivor after {took} s; the "
          f"frozen worker, resumed, left its run {late['status']} with {late['events']} events "
          f"and {late['executions']} executions")


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _ended(pid: int) -> bool:
    """Gone, or a zombie its parent has yet to reap."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
