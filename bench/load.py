"""Load on the hub as gunicorn serves it (PostgreSQL and Redis, then SQLite), by a bare Flask app.

Usage: .venv/bin/python bench/load.py [--quick] [--only postgresql|sqlite] [--duration S]
       [--connections N] [--threads N] [--postgres postgresql://postgres@127.0.0.1:5432]
       [--redis redis://127.0.0.1:6379/0]

Needs wrk (Debian/Ubuntu: apt-get install -y wrk), and for the first pass PostgreSQL (trust auth
for the given user) and Redis. One run makes two passes, one after the other (--only keeps one):

  PostgreSQL and Redis  three throwaway databases and a Redis key prefix of its own
  SQLite                the default set-up: SQLite files in a temporary folder and no REDIS_URL
                        (each worker caches in its own memory); 10k executions only, seeded
                        through SQLAlchemy (seed_executions.seed_through_app)

Each pass serves the hub as the image does, with `gunicorn -w 2
--config=python:chaoshub.gunicorn_config 'chaoshub:create_app()'` (production settings), and a bare
Flask "hello" app with the same gunicorn settings but no hooks, makes an account and an API token
through the auth service, publishes 100 experiments the way the chaos CLI does, and measures with
wrk (16 connections):

  read experiment     GET /{org}/{ws}/experiment/{id} as chaoslib fetches it, cache warm
  list executions     GET /api/v1/experiments/{id}/executions?limit=50, the first page of 50
                      (the API answers pages, each from its query: nothing cached), with 10k,
                      then 1M executions in the database (SQLite: 10k; seed_executions.py: one in
                      ten in the listed experiment, as a CI schedule would gather, the rest
                      spread over the 99 others); and the page's query alone in process
                      (store.executions_after), with the pages PostgreSQL reads for it
  publish experiment  POST /api/{org}/{ws}/experiment, a repeat publish (its chaoshub
                      extension names the experiment: no new version), as every `chaos run`
                      after the first does
  publish journal     POST /api/{org}/{ws}/experiment/{id}/execution, a 20 KB journal whose
                      start time differs on each request, so each one is a new execution
  publish pair        what every `chaos run` sends: the two above, alternating in one wrk
                      script; a pair per second is two requests

Each scenario runs right after the ceiling (hello) on the same machine, so the figures and
their ratios to the ceiling hold even when the machine's load drifts. For every measured run,
the CPU time (user + system, from /proc) of the server's gunicorn master and workers per request
wrk completed; and the resident memory of each hub worker, idle (after its first request) and
after all the pass's load. Then each pass's targets, with PASS or MISS. --quick: 5 s runs, 100k
instead of 1M executions. Ctrl+C (or SIGTERM) still stops the servers and drops the databases.
The hub writes no access line (LOG_LEVEL=WARNING), as neither the ceiling nor gunicorn (by
default) does; the read is measured a second time on a hub writing its access line to stderr
(LOG_LEVEL=INFO, the hub's default), to show what that line costs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import signal
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import listing_query
import psycopg
import redis
from load_payloads import START_PLACEHOLDER, as_run, experiment, journal_template
from load_processes import cpu_seconds, named_cpu_seconds, worker_rss_mb
from load_report import Measured, Memory, print_report, short
from load_servers import Server, gunicorn, redis_keys, throwaway_databases
from seed_executions import seed, seed_through_app
from sqlalchemy import func, select
from wrk_runner import (
    LoadResult,
    pair_post_script,
    require_wrk,
    run,
    static_script,
    unique_post_script,
)

from chaoshub import create_app
from chaoshub.auth import service as auth
from chaoshub.core import db, migrate
from chaoshub.core.claims import development_key_file
from chaoshub.core.config import SERVICES
from chaoshub.experiment import store
from chaoshub.experiment.models import Execution

USERNAME = "bench"
WORKSPACE = "Personal"  # the private workspace of the account's personal org
OTHER_EXPERIMENTS = 99
LISTED = 50  # the page of executions asked for: as many as the experiment page shows
SCOPES = ["experiments:read", "experiments:write", "executions:read", "executions:write"]
# chaoslib 1.x asks for these; the hub answers the document, not the page.
CLI_ACCEPT = "application/json, application/x-yaml"
PASSES = ("postgresql", "sqlite")
# The image's gunicorn hooks: metrics gathered across workers, each worker's loaded app left out
# of the garbage collector's full passes.
HUB_HOOKS = "python:chaoshub.gunicorn_config"
# Adds `count` executions to the listed experiment's workspace after the first `start`.
Seeder = Callable[[str, int, int], float]


@dataclass(frozen=True)
class Plan:
    """How long and how hard each scenario runs, and how many executions are seeded."""

    duration: int
    warmup: int
    connections: int
    wrk_threads: int
    sizes: tuple[int, int]
    query_samples: int


def main() -> None:
    args = _arguments()
    wrk = require_wrk()
    plan = Plan(duration=args.duration or (5 if args.quick else 20),
                warmup=1 if args.quick else 3, connections=args.connections,
                wrk_threads=min(args.connections, 2),
                sizes=(10_000, 100_000 if args.quick else 1_000_000),
                query_samples=200 if args.quick else 1000)
    passes = [args.only] if args.only else list(PASSES)
    if "postgresql" in passes:
        _check_services(args.postgres, args.redis)
    # SIGTERM unwinds like Ctrl+C, so the servers stop and the databases go either way.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    for kind in passes:
        _measure_pass(kind, args, wrk, plan)


def _measure_pass(kind: str, args: argparse.Namespace, wrk: str, plan: Plan) -> None:
    """Set the hub up on PostgreSQL and Redis or on SQLite alone, measure every scenario and
    print the figures."""
    run_id = uuid.uuid4().hex[:8]
    prefix = f"chaoshub-load-{run_id}"
    with tempfile.TemporaryDirectory(prefix="chaoshub-load-") as folder, \
            contextlib.ExitStack() as stack:
        workdir = Path(folder)
        print()
        if kind == "postgresql":
            title = "PostgreSQL and Redis"
            databases = stack.enter_context(
                throwaway_databases(args.postgres, f"chaoshub_load_{run_id}"))
            stack.enter_context(redis_keys(args.redis, prefix))
            redis_url, sizes = args.redis, plan.sizes
            print(f"{title}: databases chaoshub_load_{run_id}_*; Redis prefix {prefix}; "
                  f"folder {workdir}")
        else:
            title = "SQLite, no Redis (each worker caches in its own memory)"
            databases = {service: f"sqlite:///{workdir / 'data' / f'{service}.db'}"
                         for service in SERVICES}
            # No million rows here: 10k shows the default set-up's listing, seeded row by row.
            redis_url, sizes = "", plan.sizes[:1]
            print(f"{title}: SQLite files in {workdir / 'data'}")
        settings = _settings(workdir, databases, redis_url, prefix)
        app, token = _bootstrap(settings)
        stack.callback(db.dispose, app)
        env = {**os.environ, **settings}

        def serve(spec: str, config: str | None = None) -> Server:
            return stack.enter_context(gunicorn(spec, env, workdir, workers=args.workers,
                                                threads=args.threads, config=config))

        ceiling = serve("load_apps:hello()")
        # Like the ceiling (and gunicorn by default), the hub writes no access line; a second
        # hub with its access line on shows what that line costs a read.
        env["LOG_LEVEL"] = "WARNING"
        hub = serve("chaoshub:create_app()", HUB_HOOKS)
        env["LOG_LEVEL"] = "INFO"
        logged_hub = serve("chaoshub:create_app()", HUB_HOOKS)
        env["LOG_LEVEL"] = "WARNING"
        setup = (f"{os.cpu_count()} CPUs; gunicorn -w {args.workers} --threads {args.threads}; "
                 f"wrk -t{plan.wrk_threads} -c{plan.connections} -d{plan.duration}s")
        print(f"{setup}: ceiling {ceiling.url}, hub {hub.url}")
        _first_requests(hub.url, token, args.workers)
        _first_requests(logged_hub.url, token, args.workers)
        idle = worker_rss_mb(hub.pid)

        def seeder(listed: str, count: int, start: int) -> float:
            if kind == "postgresql":
                return seed(databases["experiment"], listed, count, start=start, progress=print)
            return seed_through_app(app, listed, count, start=start, progress=print)

        bench = Bench(wrk, plan, workdir, ceiling, hub, logged_hub)
        results, queries = _scenarios(bench, app, token, sizes, seeder)
        memory = Memory(idle_mb=idle, loaded_mb=worker_rss_mb(hub.pid))
        print_report(title, results, queries, memory, setup)


class Bench:
    """Runs each scenario with wrk: a short warm-up, the ceiling, then the measured run."""

    def __init__(self, wrk: str, plan: Plan, workdir: Path, ceiling: Server, hub: Server,
                 logged_hub: Server):
        self.wrk, self.plan, self.workdir = wrk, plan, workdir
        self.ceiling, self.hub, self.logged_hub = ceiling, hub, logged_hub
        self.runs = 0

    def measure(self, label: str, path: str, make_script, logged: bool = False) -> Measured:
        """Warm up, measure the ceiling, then the scenario (`path` on the hub, or on the hub
        writing access lines when `logged`); `make_script(run_number)` gives each of the
        scenario's runs its script."""
        hub = self.logged_hub if logged else self.hub
        url = hub.url + path
        self._run(url, make_script(self.runs + 1), self.plan.warmup)
        # Right before the scenario: the machine's load then is the scenario's too.
        ceiling, ceiling_cpu = self._measured(self.ceiling, self.ceiling.url + "/",
                                              static_script({}))
        database_before = named_cpu_seconds("postgres")
        result, cpu = self._measured(hub, url, make_script(self.runs + 1))
        # PostgreSQL's share of the two cores (on SQLite, whatever else the machine's server
        # did meanwhile): what the hub's own CPU figure leaves out.
        database = ((named_cpu_seconds("postgres") - database_before) * 1000
                    / max(result.requests, 1))
        print(f"  {label:<40} {result.rps:8.1f} req/s  p50 {result.p50_ms:7.2f} ms  "
              f"p99 {result.p99_ms:7.2f} ms  errors {result.errors}  cpu {cpu:.2f} ms/req   "
              f"postgres {database:.2f} ms/req   "
              f"(ceiling {ceiling.rps:.0f} req/s, p50 {ceiling.p50_ms:.2f} ms)")
        return Measured(label, result, ceiling, cpu, ceiling_cpu)

    def _measured(self, server: Server, url: str, script: str) -> tuple[LoadResult, float]:
        # The server's CPU time over the run, per request wrk completed (in milliseconds).
        before = cpu_seconds(server.pid)
        result = self._run(url, script, self.plan.duration)
        used = cpu_seconds(server.pid) - before
        return result, used * 1000 / max(result.requests, 1)

    def _run(self, url: str, script: str, duration: int) -> LoadResult:
        self.runs += 1
        return run(self.wrk, url, script, self.workdir, duration=duration,
                   connections=self.plan.connections, threads=self.plan.wrk_threads,
                   name=f"run-{self.runs}")


def _scenarios(bench: Bench, app, token: str, sizes: tuple[int, ...], seeder: Seeder):
    hub_url = bench.hub.url
    auth_header = {"Authorization": f"Bearer {token}"}
    results: dict[str, Measured] = {}
    queries: dict[int, listing_query.QueryTiming] = {}
    print("publishing the experiments as the chaos CLI does ...")
    listed = _publish(hub_url, token, as_run(experiment()))
    for n in range(OTHER_EXPERIMENTS):
        _publish(hub_url, token, as_run(experiment(f"Bench experiment {n + 1}")))
    page = f"/{USERNAME}/{WORKSPACE}/experiment/{listed}"

    print("measuring (wrk: warm-up, ceiling, scenario):")
    cli_get = {**auth_header, "Accept": CLI_ACCEPT}
    _expect(hub_url + page, cli_get, lambda body: any(
        e.get("experiment") == listed for e in body.get("extensions", [])))
    results["read"] = bench.measure("read experiment (CLI, warm cache)", page,
                                    lambda _: static_script(cli_get))
    results["read logged"] = bench.measure("  the same, access log on", page,
                                           lambda _: static_script(cli_get), logged=True)

    listing = f"/api/v1/experiments/{listed}/executions?limit={LISTED}"
    seeded = 0
    for size in sizes:
        print(f"seeding executions up to {size:,} ...")
        took = seeder(listed, size - seeded, seeded)
        print(f"  {size - seeded:,} executions in {took:.1f} s")
        seeded = size
        with app.app_context():
            queries[size] = listing_query.measure(listed, LISTED, bench.plan.query_samples)
        # A full page, and more after it: the listed experiment has a tenth of the executions.
        _expect(hub_url + listing, auth_header,
                lambda body: len(body["executions"]) == LISTED and body["next_cursor"])
        results[f"list {size}"] = bench.measure(
            f"list executions @{short(size)} (?limit={LISTED})", listing,
            lambda _: static_script(auth_header))

    experiment_path = f"/api/{USERNAME}/{WORKSPACE}/experiment"
    again = as_run(experiment(), listed)
    if _publish(hub_url, token, again) != listed:
        raise RuntimeError("a repeat publish made another experiment: the scenario would not "
                           "measure what `chaos run` does")
    publish_headers = {**auth_header, "Accept": "application/json",
                       "Content-Type": "application/json"}
    results["publish experiment"] = bench.measure(
        "publish experiment (legacy, repeat)", experiment_path,
        lambda _: static_script(publish_headers, "POST", json.dumps(again)))

    journal = journal_template(again)
    path = f"{experiment_path}/{listed}/execution"
    before = _executions(app, listed)
    results["publish journal"] = bench.measure(
        f"publish {len(journal) // 1024} KB journal (legacy)", path,
        lambda number: unique_post_script(path, publish_headers, journal, START_PLACEHOLDER,
                                          _day(number)))
    _check_new(app, listed, before, results["publish journal"].result.requests)

    before = _executions(app, listed)
    results["publish pair"] = bench.measure(
        "publish pair (experiment, then journal)", path,
        lambda number: pair_post_script(experiment_path, json.dumps(again), path,
                                        publish_headers, journal, START_PLACEHOLDER,
                                        _day(number)))
    _check_new(app, listed, before, results["publish pair"].result.requests // 2)
    return results, queries


def _check_new(app, listed: str, before: int, sent: int) -> None:
    made = _executions(app, listed) - before
    print(f"  {made:,} new executions for {sent:,} measured journals and the warm-up's"
          if made >= sent else
          f"WARNING: only {made:,} new executions for {sent:,} journals: repeats?")


def _day(run_number: int) -> str:
    # A date of its own for each wrk run, so no two runs send the same journal.
    return f"2027-{1 + run_number // 28 % 12:02d}-{1 + run_number % 28:02d}"


def _settings(workdir: Path, databases: dict[str, str], redis_url: str,
              prefix: str) -> dict[str, str]:
    """The hub's environment: production rules, this pass's databases, Redis (or none) and
    keys."""
    return {
        "CHAOSHUB_ENV": "production",
        "PUBLIC_URL": "http://127.0.0.1",  # only in the links answers carry; nobody follows them
        "SECRET_KEY": secrets.token_urlsafe(32),
        "CHAOSHUB_SIGNING_KEY_FILE": str(development_key_file(str(workdir))),
        "CHAOSHUB_INSTANCE_PATH": str(workdir / "instance"),
        "REDIS_URL": redis_url,
        "CACHE_PREFIX": prefix,
        **{f"{service.upper()}_DATABASE_URL": url for service, url in databases.items()},
    }


def _bootstrap(settings: dict[str, str]):
    """Migrate the databases and make the account and its API token, as `chaoshub user create`
    and `chaoshub token create` do; returns the app and the token."""
    app = create_app({**settings, "LOG_LEVEL": "WARNING"})  # the bench's own output stays short
    migrate.upgrade(app)
    with app.app_context():
        auth.create_local_account(USERNAME, secrets.token_urlsafe(24))
        token = auth.create_token_for(USERNAME, "load bench", SCOPES).secret
    db.dispose(app)  # the servers open their own connections
    return app, token


def _first_requests(hub_url: str, token: str, workers: int) -> None:
    """A first request for each worker: several at once, so that every worker takes one."""
    url = f"{hub_url}/api/v1/orgs/{USERNAME}/workspaces/{WORKSPACE}/experiments"
    headers = {"Authorization": f"Bearer {token}"}
    with ThreadPoolExecutor(max_workers=4 * workers) as pool:
        list(pool.map(lambda _: _expect(url, headers, lambda body: "experiments" in body),
                      range(4 * workers)))


def _publish(hub_url: str, token: str, document: dict) -> str:
    """Publish an experiment through the legacy API; its id."""
    request = urllib.request.Request(
        f"{hub_url}/api/{USERNAME}/{WORKSPACE}/experiment", data=json.dumps(document).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                 "Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)["id"]


def _expect(url: str, headers: dict[str, str], check) -> None:
    """Fail early when a scenario's request does not answer what it should (wrk would only
    count errors)."""
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                timeout=30) as response:
        body = json.load(response)
    if not check(body):
        raise RuntimeError(f"unexpected answer from {url}: {str(body)[:300]}")


def _executions(app, experiment_id: str) -> int:
    with app.app_context(), db.database(store.SERVICE).engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(Execution).where(
            Execution.experiment_id == experiment_id))


def _check_services(postgres: str, redis_url: str) -> None:
    try:
        psycopg.connect(f"{postgres}/postgres", connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        raise SystemExit(f"PostgreSQL is not reachable at {postgres}: {exc}") from exc
    try:
        redis.Redis.from_url(redis_url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        raise SystemExit(f"Redis is not reachable at {redis_url}: {exc}") from exc


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="5 s runs, 100k executions instead of 1M")
    parser.add_argument("--only", choices=PASSES,
                        help="one pass: PostgreSQL and Redis, or SQLite alone (default: both)")
    parser.add_argument("--duration", type=int, default=0, help="seconds per measured run")
    parser.add_argument("--connections", type=int, default=16, help="concurrent clients")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=1,
                        help="gunicorn threads per worker (1: sync workers; the image uses 4)")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    return parser.parse_args()


if __name__ == "__main__":
    started = time.perf_counter()
    try:
        main()
    except KeyboardInterrupt:
        print("interrupted: servers stopped, databases dropped")
        sys.exit(130)
    print(f"done in {time.perf_counter() - started:.0f} s")
