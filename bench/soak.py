"""Soak: mixed reads, journal publishes and hub runs at 32 clients for ten minutes, against a
gunicorn hub on PostgreSQL and Redis with a worker, each started here on spare ports.

Usage: .venv/bin/python bench/soak.py [--seconds 600] [--clients 32] [--hub-workers 2]

Needs what the fault tests need: PostgreSQL's server binaries (`initdb`, `pg_ctl`; as root, a
`postgres` user to run them) and `redis-server`. It prints its figures beside their goals and
exits 1 when one is missed:

  errors       0: no request unanswered, none answered 5xx or refused, every hub run finished
  memory       the hub's resident memory (master and workers together) grows less than 10%
               from the end of the first window to the end
  p99          the last window's p99 within 1.5x of the first window's

A window is a minute, or a third of the run after its warm-up when that is shorter than three
minutes; the first one starts after the warm-up (a tenth of the run, 30 s at most).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.experiment_data import experiment  # noqa: E402
from tests.fault_servers import (  # noqa: E402
    Hub,
    Load,
    Report,
    bearer_session,
    hub,
    hub_env,
    postgres_cluster,
    redis_server,
    unique_journal,
    wait_for,
    with_token,
    workers,
)
from tests.run_data import runnable  # noqa: E402

RUN_EVERY = 3.0  # seconds between two hub runs started by the load (each is a `chaos run`)
EXPERIMENTS = 8  # read, listed and published to in turn
GOALS = {"errors": 0, "rss_growth": 0.10, "p99_ratio": 1.5}


@dataclass
class Figures:
    """What a soak measured."""

    report: Report
    window: float
    warm_up: float
    rss_start_mb: float
    rss_end_mb: float
    runs_started: int
    runs_finished: int
    runs_other: dict[str, int]

    @property
    def errors(self) -> int:
        refused = self.report.failures(lambda s: s.status is None or s.status >= 400)
        return len(refused) + self.runs_started - self.runs_finished

    @property
    def rss_growth(self) -> float:
        return (self.rss_end_mb - self.rss_start_mb) / self.rss_start_mb

    def p99(self, start: float) -> float:
        return self.report.percentile(99, self.report.between(start, start + self.window))

    @property
    def first_p99(self) -> float:
        return self.p99(self.warm_up)

    @property
    def last_p99(self) -> float:
        return self.p99(self.report.seconds - self.window)

    @property
    def p99_ratio(self) -> float:
        return self.last_p99 / self.first_p99 if self.first_p99 else float("inf")

    def missed(self) -> list[str]:
        """The goals not met."""
        return [name for name, ok in (
            ("errors", self.errors <= GOALS["errors"]),
            ("memory", self.rss_growth < GOALS["rss_growth"]),
            ("p99", self.p99_ratio <= GOALS["p99_ratio"])) if not ok]

    def lines(self) -> list[str]:
        """The figures beside their goals."""
        mark = {name: "MISS" if name in self.missed() else "PASS"
                for name in ("errors", "memory", "p99")}
        refused = self.report.failures(lambda s: s.status is None or s.status >= 400)
        return [
            self.report.summary("soak"),
            f"  by kind: {_by_kind(self.report)}",
            f"  hub runs: {self.runs_started} started, {self.runs_finished} finished"
            + (f", others {self.runs_other}" if self.runs_other else ""),
            f"  errors  {self.errors:>8}          goal 0          {mark['errors']}"
            + (f"  (first: {refused[0]})" if refused else ""),
            f"  memory  {self.rss_start_mb:8.1f} -> {self.rss_end_mb:.1f} MiB "
            f"({self.rss_growth:+.1%})  goal < +10%  {mark['memory']}",
            f"  p99     {self.first_p99 * 1000:8.0f} -> {self.last_p99 * 1000:.0f} ms "
            f"(x{self.p99_ratio:.2f}, windows of {self.window:.0f} s)  goal <= x1.5  "
            f"{mark['p99']}",
        ]


def _by_kind(report: Report) -> str:
    kinds: dict[str, list] = {}
    for sample in report.samples:
        kinds.setdefault(sample.name, []).append(sample)
    return ", ".join(f"{name} {len(found)} (p99 {report.percentile(99, found) * 1000:.0f} ms)"
                     for name, found in sorted(kinds.items()))


class Runs:
    """Starts a hub run at most every RUN_EVERY seconds, and only while fewer than AT_ONCE of
    its runs are queued or running (the workspace's policy refuses more); the clients between
    read the runs' list."""

    AT_ONCE = 2

    def __init__(self, url: str, experiment_id: str):
        self.url = url
        self.experiment_id = experiment_id
        self.started: list[str] = []
        self._open: list[str] = []  # started, not known to have ended
        self._next = 0.0
        self._lock = threading.Lock()

    def __call__(self, session: requests.Session, n: int) -> requests.Response:
        with self._lock:
            due = time.monotonic() >= self._next
            if due:
                self._next = time.monotonic() + RUN_EVERY
        runs = f"{self.url}/api/v1/experiments/{self.experiment_id}/runs"
        if due:
            self._open = [r for r in self._open if not self._ended(session, r)]
        if not due or len(self._open) >= self.AT_ONCE:
            return session.get(runs, timeout=30)
        answer = session.post(runs, json={}, timeout=30)
        if answer.status_code == 202:
            with self._lock:
                self.started.append(answer.json()["id"])
                self._open.append(answer.json()["id"])
        return answer

    def _ended(self, session: requests.Session, run_id: str) -> bool:
        answer = session.get(f"{self.url}/api/v1/runs/{run_id}", timeout=30)
        return answer.status_code == 200 and answer.json()["status"] not in ("queued", "running")

    def statuses(self, session: requests.Session) -> dict[str, str]:
        return {run_id: session.get(f"{self.url}/api/v1/runs/{run_id}", timeout=30)
                .json()["status"] for run_id in self.started}


def soak(root: Path, seconds: float, clients: int = 32, hub_workers: int = 2,
         progress=print) -> Figures:
    """Start the servers in `root`, soak the hub for `seconds`, stop them; the figures."""
    warm_up = min(30.0, seconds / 10)
    window = min(60.0, (seconds - warm_up) / 3)
    with redis_server(root) as cache, postgres_cluster() as postgres:
        env = hub_env(root, postgres.create_databases(), cache.url, CACHE_PREFIX="soak")
        with hub(root / "hub", env, workers=hub_workers) as served, \
                workers(root, env, count=1):
            return _soak(served, seconds, clients, warm_up, window, progress)


def _soak(served: Hub, seconds: float, clients: int, warm_up: float, window: float,
          progress) -> Figures:
    url = served.url
    _, secret = bearer_session(url, "soak")
    http = with_token(secret)()
    # Several experiments, as a team's CI publishes for many: publishes to one experiment take
    # its row's lock in turn, and a single one would measure that queue alone.
    saved = [http.post(f"{url}/api/v1/orgs/soak/workspaces/Personal/experiments",
                       json={**experiment(), "title": f"Soak {n}"}).json()["id"]
             for n in range(EXPERIMENTS)]
    quick = http.post(f"{url}/api/v1/orgs/soak/workspaces/Personal/experiments",
                      json=runnable("Soak run")).json()
    # The worker registers itself: a run asked before would be refused.
    wait_for(lambda: http.post(f"{url}/api/v1/experiments/{quick['id']}/runs", json={},
                               timeout=30).status_code == 202, 60, "the worker took runs")
    runs = Runs(url, quick["id"])
    page = f"{url}/soak/Personal"

    def one(n: int) -> str:
        return saved[n % EXPERIMENTS]

    load = Load({
        "read": lambda s, n: s.get(f"{url}/soak/Personal/experiment/{one(n)}", timeout=30),
        "publish": lambda s, n: s.post(f"{url}/api/soak/Personal/experiment/{one(n)}/execution",
                                       json=unique_journal(), timeout=30),
        "list": lambda s, n: s.get(f"{url}/api/v1/experiments/{one(n)}/executions", timeout=30),
        "page": lambda s, n: s.get(page, timeout=30),
        "runs": runs,
    }, clients, session=with_token(secret), seconds=seconds)
    progress(f"soak: {clients} clients for {seconds:.0f} s against {url} "
             f"(hub pid {served.pid}, workers {served.processes()[1:]})")
    load.start()
    time.sleep(warm_up + window)
    rss_start = served.rss_mb()
    progress(f"  {load.now():.0f} s: {len(load.report)} requests, hub RSS {rss_start:.1f} MiB")
    while load.now() < seconds - 1:
        time.sleep(min(30.0, max(0.5, seconds - 1 - load.now())))
        progress(f"  {load.now():.0f} s: {len(load.report)} requests, "
                 f"{len(load.report.failures())} failed, hub RSS {served.rss_mb():.1f} MiB")
    rss_end = served.rss_mb()
    report = load.wait()
    # The last runs finish after the load: they are counted once they had the time.
    settled = ("finished", "aborted", "interrupted", "refused")
    try:
        statuses = wait_for(lambda: (found := runs.statuses(http)) and all(
            v in settled for v in found.values()) and found, 60, "the hub runs ended")[0]
    except AssertionError:
        statuses = runs.statuses(http)
    others: dict[str, int] = {}
    for status in statuses.values():
        if status != "finished":
            others[status] = others.get(status, 0) + 1
    return Figures(report, window, warm_up, rss_start, rss_end, len(statuses),
                   sum(1 for v in statuses.values() if v == "finished"), others)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--hub-workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="chaoshub-soak-") as folder:
        figures = soak(Path(folder), args.seconds, args.clients, args.hub_workers)
    print("\n".join(figures.lines()))
    return 1 if figures.missed() else 0


if __name__ == "__main__":
    sys.exit(main())
