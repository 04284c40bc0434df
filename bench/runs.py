"""Runs on the hub: queue-to-start latency, runs per minute with 1 and 2 workers, and the wall
time of a hub run beside the same experiment run with `chaos run` on the command line.

Usage: .venv/bin/python bench/runs.py [--redis redis://127.0.0.1:6379/14] [-n 20]
Starts real `chaoshub worker` processes on a fresh SQLite hub (with --redis: RQ workers).
Goals: queue-to-start p99 under 1 s on an idle worker; hub overhead under 1 s per run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from timing import median_p99  # bench/timing.py, beside this script

from chaoshub import create_app
from chaoshub.auth import service as auth
from chaoshub.core import claims, migrate
from chaoshub.dashboard import service as dashboard
from chaoshub.dashboard.service import RunPolicy
from chaoshub.experiment import runs

BIN = Path(sys.executable).parent
PASSWORD = "a long enough passphrase"


def experiment() -> dict:
    """A short experiment: a probe and an action, each a process."""
    true = {"type": "process", "path": "/bin/true", "arguments": [], "timeout": 30}
    return {"title": "Bench", "description": "A short run.",
            "steady-state-hypothesis": {"title": "ok", "probes": [
                {"type": "probe", "name": "alive", "provider": true, "tolerance": 0}]},
            "method": [{"type": "action", "name": "act", "provider": true}]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", default="", help="REDIS_URL: RQ workers (default: polling)")
    parser.add_argument("-n", type=int, default=20, help="runs per round")
    args = parser.parse_args()

    folder = tempfile.mkdtemp(prefix="chaoshub-bench-runs-")
    settings = {"CHAOSHUB_INSTANCE_PATH": folder, "REDIS_URL": args.redis,
                "CACHE_PREFIX": f"chaoshub-bench-{os.getpid()}", "LOG_LEVEL": "WARNING",
                "PASSWORD_HASHING": "fast"}
    app = create_app(settings)
    migrate.upgrade(app)
    with app.app_context():
        auth.create_local_account("bench", PASSWORD)
        secret = auth.create_token_for("bench", "bench", ["full"]).secret
    client = app.test_client()
    headers = {"Authorization": f"Bearer {secret}"}
    saved = client.post("/api/v1/orgs/bench/workspaces/Personal/experiments",
                        json=experiment(), headers=headers).get_json()
    # The bench queues many runs at once: the default policy allows three.
    with app.app_context():
        me = client.get("/api/v1/me", headers=headers).get_json()
        session = claims.sign(sub=me["id"], name="bench", scopes=claims.SESSION_SCOPES)
        dashboard.set_run_policy(session, "bench", "Personal",
                                 RunPolicy(max_concurrent_runs=args.n + 5))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAOSHUB_")}
    env.update({k: str(v) for k, v in settings.items()})
    print(f"hub: SQLite in {folder}; queue: {'Redis (RQ)' if args.redis else 'database'}")

    cli = cli_seconds(folder)
    print(f"{'chaos run on the command line':<44} {cli:7.3f} s per run (median of 5)")
    for count in (1, 2):
        round_of(app, client, headers, saved["id"], env, count, args.n, cli)


def round_of(app, client, headers, experiment_id: str, env: dict, count: int, n: int,
             cli: float) -> None:
    """Start `count` workers, queue `n` runs, and print the figures once all have ended."""
    workers = [subprocess.Popen([str(BIN / "chaoshub"), "worker"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
               for _ in range(count)]
    try:
        time.sleep(3)  # the workers start and go idle
        idle = []
        for _ in range(5):  # one at a time: an idle worker's latency
            run_id = start(client, headers, experiment_id)
            idle.append(wait(app, [run_id])[0])
        started = time.monotonic()
        ids = [start(client, headers, experiment_id) for _ in range(n)]
        rows = wait(app, ids)
        elapsed = time.monotonic() - started
    finally:
        for worker in workers:
            worker.terminate()
            worker.wait(30)
    latencies = [(r.started_at - r.created_at).total_seconds() for r in idle]
    walls = [(r.finished_at - r.created_at).total_seconds() for r in idle]
    p50, p99 = median_p99(latencies)
    print(f"{count} worker(s): queue-to-start on an idle worker  p50 {p50:6.3f} s  "
          f"p99 {p99:6.3f} s   goal p99 < 1 s  {'ok' if p99 < 1 else 'OVER'}")
    overhead = statistics.median(walls) - cli
    print(f"{count} worker(s): hub run wall time  median {statistics.median(walls):6.3f} s, "
          f"overhead {overhead:6.3f} s   goal < 1 s  {'ok' if overhead < 1 else 'OVER'}")
    finished = sum(r.status == "finished" for r in rows)
    print(f"{count} worker(s): {n} runs in {elapsed:6.2f} s = {n / elapsed * 60:6.1f} runs per "
          f"minute ({finished} finished)")


def start(client, headers, experiment_id: str) -> str:
    answer = client.post(f"/api/v1/experiments/{experiment_id}/runs", json={},
                         headers=headers)
    if answer.status_code != 202:
        raise SystemExit(f"the run was not started: {answer.get_json()}")
    return answer.get_json()["id"]


def wait(app, run_ids: list[str], timeout: float = 600) -> list:
    """The runs' rows once every one has ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with app.app_context():
            rows = [runs.load_run(run_id) for run_id in run_ids]
        if all(r.status not in ("queued", "running") for r in rows):
            return rows
        time.sleep(0.05)
    raise SystemExit("the runs did not end in time")


def cli_seconds(folder: str) -> float:
    """The median wall time of `chaos run` of the same experiment, five times."""
    path = Path(folder) / "bench-experiment.json"
    path.write_text(json.dumps(experiment()))
    times = []
    for _ in range(5):
        started = time.monotonic()
        subprocess.run([str(BIN / "chaos"), "--no-version-check", "--no-log-file", "run",
                        "--journal-path", str(Path(folder) / "journal.json"), str(path)],
                       cwd=folder, capture_output=True, check=False)
        times.append(time.monotonic() - started)
    return statistics.median(times)


if __name__ == "__main__":
    main()
