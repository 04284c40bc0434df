"""gunicorn's hooks for a hub it serves (`gunicorn --config=python:chaoshub.gunicorn_config`, as
the image's command does; `chaoshub run --production` sets the same ones, or does the same in
the process its workers fork from): every worker's metrics go to one fresh folder, which a scrape
of any worker adds up, and a dead worker's live gauges leave it; each worker's loaded app is left
out of the garbage collector's full passes."""

from __future__ import annotations

from typing import Any

from chaoshub.core import heap, metrics


def on_starting(_server: Any) -> None:
    """In the master, before any worker loads the app: a fresh PROMETHEUS_MULTIPROC_DIR."""
    metrics.prepare_multiprocess_dir()


def child_exit(server: Any, worker: Any) -> None:
    """In the master, once a worker has exited."""
    metrics.child_exit(server, worker)


def post_worker_init(_worker: Any) -> None:
    """In each worker, once it has loaded the app."""
    heap.freeze_loaded()
