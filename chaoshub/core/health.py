"""Liveness, readiness and health: each database this process owns, the cache, and what the
services add (the runs queue and the live workers, where experiment is hosted), with latencies.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify
from sqlalchemy.exc import SQLAlchemyError

from chaoshub.core.cache import cache
from chaoshub.core.db import EXTENSION as DATABASES

log = logging.getLogger(__name__)

EXTENSION = "chaoshub.health"
# A check answers its status ("ok", "absent", "degraded", "down") and what else it tells.
Check = Callable[[], tuple[str, dict[str, Any]]]

health = Blueprint("health", __name__, url_prefix="/status")


def add_check(app: Flask, name: str, check: Check, needs: str | None = None) -> None:
    """Have /status/health run `check()` (in an app context) and list it under `name`; its
    "down" makes the hub degraded, not down: only a database makes it down. A check that
    `needs` a service's database is "unknown" while that database is down (not asked again:
    each attempt may wait for the connection's timeout)."""
    app.extensions[EXTENSION][name] = (check, needs)


def _timed(check: Callable[[], tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    started = time.perf_counter()
    status, details = check()
    return {"status": status, "latency_ms": round((time.perf_counter() - started) * 1000, 2),
            **details}


def _databases() -> dict[str, dict[str, Any]]:
    found = {}
    for service, db in current_app.extensions[DATABASES].items():
        def ping(db=db, service=service) -> tuple[str, dict[str, Any]]:
            try:
                db.ping()
                return "ok", {}
            except SQLAlchemyError as exc:
                log.warning("%s database unavailable: %s", service, exc.__class__.__name__)
                return "down", {}

        found[f"{service}_database"] = _timed(ping)
    return found


def _others(databases: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    found = {"redis": _timed(lambda: (cache().status(), {}))}
    for name, (check, needs) in current_app.extensions[EXTENSION].items():
        if needs and databases.get(f"{needs}_database", {}).get("status") == "down":
            found[name] = {"status": "unknown", "latency_ms": 0.0}
            continue
        def guarded(check=check, name=name) -> tuple[str, dict[str, Any]]:
            try:
                return check()
            except Exception:  # a check that breaks says so; the others still answer
                log.warning("health check %s failed", name, exc_info=True)
                return "down", {}

        found[name] = _timed(guarded)
    return found


@health.get("/live")
def live():
    """The process is up and serving (whatever its dependencies do)."""
    return jsonify({"status": "ok"})


@health.get("/ready")
def ready():
    """200 while every database this process owns answers, else 503: take traffic or not."""
    databases = _databases()
    down = any(d["status"] == "down" for d in databases.values())
    return jsonify({"status": "not ready" if down else "ready",
                    "dependencies": databases}), 503 if down else 200


@health.get("/health")
def check():
    """ok when everything answers, degraded without Redis (or the runs queue), down (503) when
    a database fails; each dependency with its status and latency."""
    databases = _databases()
    dependencies = {**databases, **_others(databases)}
    databases_down = any(d["status"] == "down" for n, d in dependencies.items()
                         if n.endswith("_database"))
    if databases_down:
        status = "down"
    elif any(d["status"] in ("degraded", "down") for d in dependencies.values()):
        status = "degraded"
    else:
        status = "ok"
    checks = {name: d["status"] for name, d in dependencies.items()}
    return jsonify({"status": status, "checks": checks, "dependencies": dependencies}), \
        503 if status == "down" else 200


def init_app(app: Flask) -> None:
    """Serve /status; the services add their checks with `add_check`."""
    app.extensions[EXTENSION] = {}
    app.register_blueprint(health)
