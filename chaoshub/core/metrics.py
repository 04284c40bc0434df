"""Prometheus metrics at /metrics: requests by route template, the cache, the database pools,
the calls to other services, webhooks, and what services add at scrape time (runs, queue,
workers).

Under gunicorn every worker writes its values to files in PROMETHEUS_MULTIPROC_DIR and a scrape
of any worker adds them all up (prometheus-client's multiprocess mode); without that variable
(the development server) the process's own registry answers. prometheus_client is imported when
the first app is made, not with this module: it picks its mode from the environment then, and
`chaoshub run --production` sets that variable first.
"""

from __future__ import annotations

import atexit
import glob
import hmac
import ipaddress
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, Response, current_app, request

from chaoshub.core import access_log
from chaoshub.core.errors import Forbidden, Unauthorized

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
EXTENSION = "chaoshub.metrics"
PATH = "/metrics"
UNMATCHED = "<unmatched>"  # the route label of a request no rule matched (404, 405): no raw path
# Seconds: from a cached read (~1 ms) to the slowest page worth telling apart.
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
WEBHOOK_OUTCOMES = ("delivered", "failed")
# The method label's values: a client may send any token as a method, and each new one would be a
# new series in every worker's files (and every scrape) for as long as the hub runs.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "other"

# Set by `_families()` once prometheus_client is imported: what the hot paths count into.
HTTP_REQUESTS: Any = None
HTTP_LATENCY: Any = None
CACHE_HITS: Any = None
CACHE_MISSES: Any = None
POOL_IN_USE: Any = None
POOL_SIZE: Any = None
SERVICE_CALLS: Any = None
SERVICE_CALL_LATENCY: Any = None
WEBHOOK_DELIVERIES: Any = None


def _families() -> None:
    """Make the process's metric families, once."""
    global HTTP_REQUESTS, HTTP_LATENCY, CACHE_HITS, CACHE_MISSES, POOL_IN_USE, POOL_SIZE
    global SERVICE_CALLS, SERVICE_CALL_LATENCY, WEBHOOK_DELIVERIES
    if HTTP_REQUESTS is not None:
        return
    from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

    disable_created_metrics()  # a `_created` series beside each counter says nothing here
    labels = ("route", "method", "status")
    HTTP_REQUESTS = Counter("chaoshub_http_requests", "HTTP requests served, by route template "
                            "(the URL rule, never the raw path), method and status", labels)
    HTTP_LATENCY = Histogram("chaoshub_http_request_duration_seconds", "Time to answer a request "
                             "(until the response is ready; a stream's body is not counted)",
                             labels, buckets=LATENCY_BUCKETS)
    CACHE_HITS = Counter("chaoshub_cache_hits", "Cache reads that found their entry")
    CACHE_MISSES = Counter("chaoshub_cache_misses", "Cache reads that did not (then loaded)")
    # livesum: a scrape adds the pools of the live workers (a dead one's are dropped).
    POOL_IN_USE = Gauge("chaoshub_db_pool_in_use", "Database connections checked out, by "
                        "service", ("service",), multiprocess_mode="livesum")
    POOL_SIZE = Gauge("chaoshub_db_pool_size", "Connections the database pools keep (each may "
                      "open its overflow more under load), by service", ("service",),
                      multiprocess_mode="livesum")
    SERVICE_CALLS = Counter("chaoshub_service_calls", "Calls to a service hosted by another "
                            "process, by service, function and outcome (ok, error: the service "
                            "answered an error; unreachable)", ("service", "function", "outcome"))
    SERVICE_CALL_LATENCY = Histogram("chaoshub_service_call_duration_seconds", "Time of a call "
                                     "to another process's service, by service and function",
                                     ("service", "function"), buckets=LATENCY_BUCKETS)
    # Issue 15's webhooks count their deliveries here (`webhook_delivery`); defined now so that
    # dashboards and alerts can be written against the family before the first delivery.
    WEBHOOK_DELIVERIES = Counter("chaoshub_webhook_deliveries", "Webhook deliveries, by outcome",
                                 ("outcome",))
    for outcome in WEBHOOK_OUTCOMES:
        WEBHOOK_DELIVERIES.labels(outcome)  # shown at 0 before any delivery


def multiprocess() -> bool:
    """True when this process writes its metrics for a scrape to add up (gunicorn)."""
    return bool(os.environ.get(MULTIPROC_ENV))


def prepare_multiprocess_dir() -> str:
    """Point PROMETHEUS_MULTIPROC_DIR at a folder holding no earlier run's values: emptied when
    the operator set it, else a new one; before prometheus_client is imported."""
    folder = os.environ.get(MULTIPROC_ENV)
    if folder:
        os.makedirs(folder, exist_ok=True)
        for stale in glob.glob(os.path.join(folder, "*.db")):
            os.remove(stale)  # a previous run's counts would be added to this one's
    else:
        folder = tempfile.mkdtemp(prefix="chaoshub-metrics-")
        os.environ[MULTIPROC_ENV] = folder
        # Removed when this process ends, not when a forked worker does (they inherit atexit).
        atexit.register(_remove_folder, folder, os.getpid())
    return folder


def _remove_folder(folder: str, owner: int) -> None:
    if os.getpid() == owner:
        shutil.rmtree(folder, ignore_errors=True)


def forget_process(pid: int) -> None:
    """Drop a process's live gauges (its pool in use) from what scrapes add up."""
    if multiprocess():
        from prometheus_client import multiprocess as mp

        mp.mark_process_dead(pid)


def child_exit(_server: Any, worker: Any) -> None:
    """gunicorn's child_exit hook: a dead worker's connections are nobody's any more."""
    forget_process(worker.pid)


# Counting --------------------------------------------------------------------------------------


def cache_read(hit: bool) -> None:
    """Count one cache read."""
    counter = CACHE_HITS if hit else CACHE_MISSES
    if counter is not None:
        counter.inc()


def webhook_delivery(outcome: str) -> None:
    """Count one webhook delivery, "delivered" or "failed" (for issue 15's webhooks)."""
    if WEBHOOK_DELIVERIES is not None:
        WEBHOOK_DELIVERIES.labels(outcome).inc()


def service_call(service: str, function: str, outcome: str, seconds: float) -> None:
    """Count one call to another process's service, with its time."""
    if SERVICE_CALLS is not None:
        SERVICE_CALLS.labels(service, function, outcome).inc()
        SERVICE_CALL_LATENCY.labels(service, function).observe(seconds)


def _watch_pools(databases: dict[str, Any]) -> None:
    from sqlalchemy import event

    for service, database in databases.items():
        pool = database.engine.pool
        in_use, size = POOL_IN_USE.labels(service), POOL_SIZE.labels(service)
        in_use.inc(0)  # shown at 0 before the first request
        kept = pool.size() if callable(getattr(pool, "size", None)) else 1
        # Set on each process's first connection: a forked worker counts its own pool.
        event.listen(pool, "connect", lambda *_a, gauge=size, n=kept: gauge.set(n))
        event.listen(pool, "checkout", lambda *_a, gauge=in_use: gauge.inc())
        event.listen(pool, "checkin", lambda *_a, gauge=in_use: gauge.dec())


# Requests ----------------------------------------------------------------------------------------

STARTED = "chaoshub.metrics.started"


class _Timed:
    """WSGI middleware noting when a request came in: before Flask's own checks, so that a
    request they refuse is timed too."""

    def __init__(self, wsgi_app: Callable[..., Any]):
        self.wsgi_app = wsgi_app

    def __call__(self, environ: dict, start_response: Callable[..., Any]) -> Any:
        environ[STARTED] = time.perf_counter()
        return self.wsgi_app(environ, start_response)


# Each (route, method, status)'s two children: as many as prometheus_client keeps anyway.
_COUNTED: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def _finish(response: Response) -> Response:
    current = request._get_current_object()  # once: each use of the proxy looks it up again
    started = current.environ.get(STARTED)
    if started is None:
        return response
    seconds = time.perf_counter() - started
    rule = current.url_rule
    route = rule.rule if rule is not None else UNMATCHED
    status = response.status_code
    method = current.method if current.method in METHODS else OTHER_METHOD
    labels = (route, method, status)
    counted = _COUNTED.get(labels)
    if counted is None:
        # prometheus_client's labels() validates and locks each time: its children kept here.
        named = (route, method, str(status))
        counted = _COUNTED[labels] = (HTTP_REQUESTS.labels(*named), HTTP_LATENCY.labels(*named))
    counted[0].inc()
    counted[1].observe(seconds)
    access_log.write(current, route, status, seconds)
    return response


# The endpoint ----------------------------------------------------------------------------------


def add_collector(app: Flask, collect: Callable[[], Iterable[Any]]) -> None:
    """Have each scrape of `app` also call `collect()` in an app context: it yields
    prometheus_client metric families worked out then (from a database, say)."""
    app.extensions[EXTENSION]["collectors"].append(collect)


def _allowed_networks(value: str) -> list[Any]:
    try:
        return [ipaddress.ip_network(part.strip(), strict=False)
                for part in str(value or "").split(",") if part.strip()]
    except ValueError as exc:
        from chaoshub.core.config import ConfigError

        raise ConfigError(f"METRICS_ALLOW holds networks (CIDRs), comma-separated: {exc}") from exc


def _check_access() -> None:
    state = current_app.extensions[EXTENSION]
    if state["allow"]:
        try:
            address = ipaddress.ip_address(request.remote_addr or "")
        except ValueError:
            address = None
        if address is None or not any(address in network for network in state["allow"]):
            raise Forbidden("metrics are not served to this address (METRICS_ALLOW)")
    token = current_app.config.get("METRICS_TOKEN") or ""
    if token:
        scheme, _, sent = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(sent.strip().encode(),
                                                                 token.encode()):
            raise Unauthorized("send the metrics token: Authorization: Bearer <METRICS_TOKEN>")


class _AppCollector:
    """The families services work out at scrape time, in the scraping app's context."""

    def __init__(self, collectors: list[Callable[[], Iterable[Any]]]):
        self.collectors = collectors

    def collect(self) -> Iterable[Any]:
        for collect in self.collectors:
            try:
                yield from collect()
            except Exception:  # a database down: the other families are still worth a scrape
                log.warning("metrics: %s failed; left out of this scrape",
                            getattr(collect, "__qualname__", collect), exc_info=True)


def serve() -> Response:
    """The metrics in Prometheus's text format (every worker's under gunicorn)."""
    _check_access()
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

    scraped = CollectorRegistry(auto_describe=False)
    scraped.register(_AppCollector(current_app.extensions[EXTENSION]["collectors"]))
    if multiprocess():
        from prometheus_client import multiprocess as mp

        base = CollectorRegistry()
        base.register(_WorkerFiles(mp.MultiProcessCollector))
    else:
        base = REGISTRY
    body = generate_latest(base) + generate_latest(scraped)
    return Response(body, content_type=CONTENT_TYPE_LATEST)


class _WorkerFiles:
    """Every worker's values from their files, leaving out a file still being created."""

    def __init__(self, collector: type) -> None:
        self._collector = collector

    def collect(self) -> Iterable[Any]:
        """The merged families of every file holding something."""
        # A worker creates its file empty and sizes it a moment later (and one killed in between
        # leaves it empty for good): reading it would fail the whole scrape.
        files = [path for path in glob.glob(os.path.join(os.environ[MULTIPROC_ENV], "*.db"))
                 if _size(path)]
        return self._collector.merge(files, accumulate=True)


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except FileNotFoundError:  # a dead worker's live gauges, removed since the glob
        return 0


def init_app(app: Flask) -> None:
    """Count every request (and write its access log line), watch the databases' pools, and
    serve /metrics."""
    from chaoshub.core.db import EXTENSION as DATABASES

    _families()
    app.extensions[EXTENSION] = {"collectors": [],
                                 "allow": _allowed_networks(app.config.get("METRICS_ALLOW"))}
    app.wsgi_app = _Timed(app.wsgi_app)
    # Last of the after_request functions (they run in reverse): the status is the one sent,
    # a 304 made from a 200, say.
    app.after_request_funcs.setdefault(None, []).insert(0, _finish)
    _watch_pools(app.extensions.get(DATABASES, {}))
    app.add_url_rule(PATH, "metrics", serve, methods=["GET"])
