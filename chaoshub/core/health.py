"""Liveness and health: each database this process owns, and the cache."""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, jsonify
from sqlalchemy.exc import SQLAlchemyError

from chaoshub.core.cache import cache
from chaoshub.core.db import EXTENSION as DATABASES

log = logging.getLogger(__name__)

health = Blueprint("health", __name__, url_prefix="/status")


@health.get("/live")
def live():
    """The process is up and serving."""
    return jsonify({"status": "ok"})


@health.get("/health")
def check():
    """ok when everything answers, degraded without Redis, down (503) when a database fails."""
    checks: dict[str, str] = {}
    for service, db in current_app.extensions[DATABASES].items():
        try:
            db.ping()
            checks[f"{service}_database"] = "ok"
        except SQLAlchemyError as exc:
            log.warning("%s database unavailable: %s", service, exc.__class__.__name__)
            checks[f"{service}_database"] = "down"
    checks["redis"] = cache().status()
    if "down" in checks.values():
        status = "down"
    elif checks["redis"] == "degraded":
        status = "degraded"
    else:
        status = "ok"
    return jsonify({"status": status, "checks": checks}), 503 if status == "down" else 200
