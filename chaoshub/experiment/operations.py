"""What operators see of runs: the metrics worked out at scrape time from the experiment
database (queue depth, runs by status and outcome, leases, live workers) and the health checks
of the runs queue and the workers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import redis
from flask import Flask, current_app
from rq import Queue
from sqlalchemy import func, select

from chaoshub.core import health, metrics
from chaoshub.core.db import transaction
from chaoshub.core.models import utcnow
from chaoshub.experiment import workers
from chaoshub.experiment.models import Execution, Run

SERVICE = "experiment"
EXTENSION = "chaoshub.experiment.operations"
SEEN_SECONDS = 60  # /status/health's workers: those heard of within the last minute


def queue_depth() -> tuple[int, str]:
    """Runs waiting for a worker, and where they were counted: the RQ queue on Redis (which
    raises redis.RedisError when Redis is down), else the database's queued runs."""
    connection = current_app.extensions[EXTENSION]
    if connection is not None:
        return Queue(current_app.config["RUNS_QUEUE"], connection=connection).count, "redis"
    with transaction(SERVICE) as session:
        return session.scalar(select(func.count()).select_from(Run)
                              .where(Run.status == "queued")) or 0, "database"


def runs_by_status() -> list[tuple[str, str, int]]:
    """(status, outcome of its execution or "", count) of every run the hub knows."""
    with transaction(SERVICE) as session:
        rows = session.execute(
            select(Run.status, Execution.outcome, func.count())
            .select_from(Run).outerjoin(Execution, Execution.id == Run.execution_id)
            .group_by(Run.status, Execution.outcome))
        return [(status, outcome or "", count) for status, outcome, count in rows]


def leases_held() -> int:
    """Runs a worker holds a live lease on."""
    with transaction(SERVICE) as session:
        return session.scalar(select(func.count()).select_from(Run).where(
            Run.status == "running", Run.lease_until > utcnow())) or 0


def collect() -> Iterator[Any]:
    """The scrape-time families of runs (metrics.add_collector)."""
    from prometheus_client.core import GaugeMetricFamily

    depth = GaugeMetricFamily("chaoshub_runs_queue_depth", "Runs waiting for a worker, counted "
                              "on the RQ queue (Redis) or in the database", labels=("source",))
    try:
        count, source = queue_depth()
        depth.add_metric((source,), count)
    except redis.RedisError:
        pass  # Redis away: the family stays, with no sample (health says degraded)
    yield depth
    runs = GaugeMetricFamily("chaoshub_runs", "Runs the hub knows, by status and the outcome "
                             "of their execution (empty before one)", labels=("status", "outcome"))
    for status, outcome, count in runs_by_status():
        runs.add_metric((status, outcome), count)
    yield runs
    yield GaugeMetricFamily("chaoshub_worker_leases_held", "Running runs whose worker holds a "
                            "live lease", value=leases_held())
    yield GaugeMetricFamily("chaoshub_workers_live", "Workers heard of within "
                            f"{workers.LIVE_SECONDS} s", value=len(workers.live()))


def check_queue() -> tuple[str, dict[str, Any]]:
    """The runs queue: its depth, or degraded when Redis does not answer."""
    try:
        depth, source = queue_depth()
    except redis.RedisError:
        return "degraded", {"source": "redis"}
    return "ok", {"depth": depth, "source": source}


def check_workers() -> tuple[str, dict[str, Any]]:
    """The workers seen within the last minute ("none": runs wait until one comes)."""
    since = utcnow() - timedelta(seconds=SEEN_SECONDS)
    seen = [w.name for w in workers.live() if w.last_seen >= since]
    return ("ok" if seen else "none"), {"live": len(seen), "names": seen}


def init_app(app: Flask) -> None:
    """Add the runs' families to the app's /metrics and its checks to /status/health."""
    url = app.config["REDIS_URL"]
    # Timeouts as short as the cache's: a scrape or a probe must not wait on a Redis gone away.
    app.extensions[EXTENSION] = redis.Redis.from_url(
        url, socket_connect_timeout=0.25, socket_timeout=0.5) if url else None
    metrics.add_collector(app, collect)
    # Without Redis the queue is counted in the experiment database.
    health.add_check(app, "runs_queue", check_queue, needs=None if url else SERVICE)
    health.add_check(app, "workers", check_workers, needs=SERVICE)
