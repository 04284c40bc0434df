"""Where queued hub runs wait for a worker: an RQ queue on Redis, or the database alone.

The run's row is the truth (a worker claims it with a conditional update); the queue only
wakes a worker up. With Redis, `chaoshub worker` processes on any number of machines take RQ
jobs, each in a fresh forked work-horse that supervises the run's child. Without Redis (the
SQLite set-up), the embedded worker polls the database for queued runs.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from flask import current_app
from rq import Queue

log = logging.getLogger(__name__)

JOB = "chaoshub.experiment.worker.run_job"
# Past the hub's own deadline and grace: RQ's timeout must never be what stops a run (it is
# swallowed inside a python activity, and its kill leaves the child orphaned).
JOB_TIMEOUT_MARGIN = 120


def enqueue(run_id: str) -> bool:
    """Wake a worker for the run; False when there is no Redis (the database is polled)."""
    config = current_app.config
    if not config["REDIS_URL"]:
        return False
    try:
        queue(config).enqueue(
            JOB, run_id, job_id=f"run-{run_id}",
            job_timeout=config["RUN_MAX_SECONDS"] + config["RUN_GRACE_SECONDS"]
            + JOB_TIMEOUT_MARGIN, result_ttl=3600, failure_ttl=7 * 24 * 3600)
    except redis.RedisError as exc:
        # The run stays queued in the database: `chaoshub worker` sweeps such runs at start.
        log.warning("run %s: could not be queued on Redis (%s); it waits for a sweep", run_id,
                    exc)
        return False
    return True


def queue(config: Any) -> Queue:
    """The RQ queue of runs on the configured Redis."""
    connection = redis.Redis.from_url(config["REDIS_URL"], socket_timeout=30,
                                      socket_connect_timeout=5)
    return Queue(config["RUNS_QUEUE"], connection=connection)
