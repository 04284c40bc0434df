"""Load on the hub as gunicorn serves it, with PostgreSQL and Redis, next to a bare Flask ceiling.

Usage: .venv/bin/python bench/load.py [--quick] [--duration S] [--connections N] [--threads N]
       [--postgres postgresql://postgres@127.0.0.1:5432] [--redis redis://127.0.0.1:6379/0]

Needs wrk (Debian/Ubuntu: apt-get install -y wrk), PostgreSQL (trust auth for the given user)
and Redis. It makes three throwaway databases and a Redis key prefix of its own, serves the hub
with `gunicorn -w 2 'chaoshub:create_app()'` (production settings) and a bare Flask "hello"
app with the same gunicorn settings, makes an account and an API token through the auth
service, publishes 100 experiments the way the chaos CLI does, and measures with wrk (16
connections):

  read experiment     GET /{org}/{ws}/experiment/{id} as chaoslib fetches it, cache warm
  list executions     GET /api/v1/experiments/{id}/executions with 10k, then 1M executions in
                      the database (seed_executions.py: one in ten in the listed experiment,
                      as a CI schedule would gather, the rest spread over the 99 others), with
                      the cache warm, and with the listing's cache bypassed (a second hub
                      server, load_apps.hub_without_listing_cache) so each request runs its
                      query; and the query alone in process (store.latest_executions), with
                      the pages PostgreSQL reads for it
  publish experiment  POST /api/{org}/{ws}/experiment, a repeat publish (its chaoshub
                      extension names the experiment: no new version), as every `chaos run`
                      after the first does
  publish journal     POST /api/{org}/{ws}/experiment/{id}/execution, a 20 KB journal whose
                      start time differs on each request, so each one is a new execution

Each scenario runs right after the ceiling (hello) on the same machine, so the figures and
their ratios to the ceiling hold even when the machine's load drifts; then the targets, with
PASS or MISS. --quick: 5 s runs, 100k instead of 1M executions. Ctrl+C (or SIGTERM) still
stops the servers and drops the databases. The access log is off for every server.
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
from dataclasses import dataclass
from pathlib import Path

import listing_query
import psycopg
import redis
from load_payloads import START_PLACEHOLDER, as_run, experiment, journal_template
from load_report import Measured, print_report, short
from load_servers import gunicorn, redis_keys, throwaway_databases
from seed_executions import libpq_url, seed
from wrk_runner import LoadResult, require_wrk, run, static_script, unique_post_script

from chaoshub import create_app
from chaoshub.auth import service as auth
from chaoshub.core import db, migrate
from chaoshub.core.cache import cache
from chaoshub.core.claims import development_key_file

USERNAME = "bench"
WORKSPACE = "Personal"  # the private workspace of the account's personal org
OTHER_EXPERIMENTS = 99
LISTED = 50  # how many executions the listing answers (service.LATEST_EXECUTIONS)
SCOPES = ["experiments:read", "experiments:write", "executions:read", "executions:write"]
# chaoslib 1.x asks for these; the hub answers the document, not the page.
CLI_ACCEPT = "application/json, application/x-yaml"


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
    _check_services(args.postgres, args.redis)
    # SIGTERM unwinds like Ctrl+C, so the servers stop and the databases go either way.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    run_id = uuid.uuid4().hex[:8]
    with tempfile.TemporaryDirectory(prefix="chaoshub-load-") as folder, \
            contextlib.ExitStack() as stack:
        workdir = Path(folder)
        databases = stack.enter_context(
            throwaway_databases(args.postgres, f"chaoshub_load_{run_id}"))
        prefix = f"chaoshub-load-{run_id}"
        stack.enter_context(redis_keys(args.redis, prefix))
        print(f"databases chaoshub_load_{run_id}_*; Redis prefix {prefix}; folder {workdir}")
        settings = _settings(workdir, databases, args.redis, prefix)
        app, token = _bootstrap(settings)
        stack.callback(db.dispose, app)
        env = {**os.environ, **settings}

        def serve(spec: str):
            return stack.enter_context(gunicorn(spec, env, workdir, workers=args.workers,
                                                threads=args.threads))

        ceiling = serve("load_apps:hello()")
        hub = serve("chaoshub:create_app()")
        hub_uncached = serve("load_apps:hub_without_listing_cache()")
        setup = (f"{os.cpu_count()} CPUs; gunicorn -w {args.workers} --threads {args.threads}; "
                 f"wrk -t{plan.wrk_threads} -c{plan.connections} -d{plan.duration}s")
        print(f"{setup}: ceiling {ceiling.url}, hub {hub.url}, "
              f"hub without listing cache {hub_uncached.url}")
        bench = Bench(wrk, plan, workdir, ceiling.url + "/")
        results, queries = _scenarios(bench, app, hub, hub_uncached, token,
                                      databases["experiment"], plan)
        print_report(results, queries, plan.sizes, setup)


class Bench:
    """Runs each scenario with wrk: a short warm-up, the ceiling, then the measured run."""

    def __init__(self, wrk: str, plan: Plan, workdir: Path, ceiling_url: str):
        self.wrk, self.plan, self.workdir, self.ceiling_url = wrk, plan, workdir, ceiling_url
        self.runs = 0

    def measure(self, label: str, url: str, make_script) -> Measured:
        """Warm up, measure the ceiling, then the scenario; `make_script(run_number)` gives
        each of the scenario's runs its script."""
        self._run(url, make_script(self.runs + 1), self.plan.warmup)
        # Right before the scenario: the machine's load then is the scenario's too.
        ceiling = self._run(self.ceiling_url, static_script({}), self.plan.duration)
        result = self._run(url, make_script(self.runs + 1), self.plan.duration)
        print(f"  {label:<40} {result.rps:8.1f} req/s  p50 {result.p50_ms:7.2f} ms  "
              f"p99 {result.p99_ms:7.2f} ms  errors {result.errors}   (ceiling "
              f"{ceiling.rps:.0f} req/s, p50 {ceiling.p50_ms:.2f} ms)")
        return Measured(label, result, ceiling)

    def _run(self, url: str, script: str, duration: int) -> LoadResult:
        self.runs += 1
        return run(self.wrk, url, script, self.workdir, duration=duration,
                   connections=self.plan.connections, threads=self.plan.wrk_threads,
                   name=f"run-{self.runs}")


def _scenarios(bench: Bench, app, hub, hub_uncached, token: str, experiment_url: str,
               plan: Plan):
    auth_header = {"Authorization": f"Bearer {token}"}
    results: dict[str, Measured] = {}
    queries: dict[int, listing_query.QueryTiming] = {}
    print("publishing the experiments as the chaos CLI does ...")
    listed = _publish(hub.url, token, as_run(experiment()))
    for n in range(OTHER_EXPERIMENTS):
        _publish(hub.url, token, as_run(experiment(f"Bench experiment {n + 1}")))
    page = f"/{USERNAME}/{WORKSPACE}/experiment/{listed}"

    print("measuring (wrk: warm-up, ceiling, scenario):")
    cli_get = {**auth_header, "Accept": CLI_ACCEPT}
    _expect(hub.url + page, cli_get, lambda body: any(
        e.get("experiment") == listed for e in body.get("extensions", [])))
    results["read"] = bench.measure("read experiment (CLI, warm cache)", hub.url + page,
                                    lambda _: static_script(cli_get))

    listing = f"/api/v1/experiments/{listed}/executions"
    seeded = 0
    for size in plan.sizes:
        print(f"seeding executions up to {size:,} ...")
        took = seed(experiment_url, listed, size - seeded, start=seeded,
                    progress=lambda line: print(line))
        print(f"  {size - seeded:,} executions in {took:.1f} s")
        seeded = size
        with app.app_context():
            # Rows written behind the service's back: drop its cached listing, as a publish does.
            cache().forget(cache().key("experiment", "executions", listed))
            queries[size] = listing_query.measure(listed, LISTED, plan.query_samples)
        _expect(hub.url + listing, auth_header, lambda body: len(body["executions"]) == LISTED)
        results[f"list {size}"] = bench.measure(
            f"list executions @{short(size)} (warm cache)", hub.url + listing,
            lambda _: static_script(auth_header))
        results[f"list {size} uncached"] = bench.measure(
            f"list executions @{short(size)} (query)", hub_uncached.url + listing,
            lambda _: static_script(auth_header))

    again = json.dumps(as_run(experiment(), listed))
    publish_headers = {**auth_header, "Accept": "application/json",
                       "Content-Type": "application/json"}
    results["publish experiment"] = bench.measure(
        "publish experiment (legacy, repeat)", f"{hub.url}/api/{USERNAME}/{WORKSPACE}/experiment",
        lambda _: static_script(publish_headers, "POST", again))

    journal = journal_template(as_run(experiment(), listed))
    before = _executions(experiment_url, listed)
    path = f"/api/{USERNAME}/{WORKSPACE}/experiment/{listed}/execution"
    results["publish journal"] = bench.measure(
        f"publish {len(journal) // 1024} KB journal (legacy)", hub.url + path,
        lambda number: unique_post_script(path, publish_headers, journal, START_PLACEHOLDER,
                                          _day(number)))
    made = _executions(experiment_url, listed) - before
    sent = results["publish journal"].result.requests
    print(f"  {made:,} new executions for {sent:,} measured publishes and the warm-up's"
          if made >= sent else
          f"WARNING: only {made:,} new executions for {sent:,} publishes: repeats?")
    return results, queries


def _day(run_number: int) -> str:
    # A date of its own for each wrk run, so no two runs send the same journal.
    return f"2027-{1 + run_number // 28 % 12:02d}-{1 + run_number % 28:02d}"


def _settings(workdir: Path, databases: dict[str, str], redis_url: str,
              prefix: str) -> dict[str, str]:
    """The hub's environment: production rules, this run's databases, Redis and keys."""
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


def _executions(experiment_url: str, experiment_id: str) -> int:
    with psycopg.connect(libpq_url(experiment_url)) as connection:
        return connection.execute("SELECT count(*) FROM executions WHERE experiment_id = %s",
                                  (experiment_id,)).fetchone()[0]


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
