"""Throwaway PostgreSQL databases, Redis keys and gunicorn servers for the load bench.

Each is a context manager, so that an interrupted bench still stops what it started and drops
what it made.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import redis

from chaoshub.core.config import SERVICES

BENCH = Path(__file__).resolve().parent
GUNICORN = Path(sys.executable).parent / "gunicorn"
PR_SET_PDEATHSIG = 1


@contextlib.contextmanager
def throwaway_databases(server_url: str, prefix: str) -> Iterator[dict[str, str]]:
    """One new database per service on `server_url` (postgresql://user@host:port), dropped
    on exit; yields their SQLAlchemy URLs by service."""
    names = {service: f"{prefix}_{service}" for service in SERVICES}
    made = []
    try:
        with psycopg.connect(f"{server_url}/postgres", autocommit=True) as admin:
            for name in names.values():
                admin.execute(f'CREATE DATABASE "{name}"')
                made.append(name)
        base = server_url.replace("postgresql://", "postgresql+psycopg://", 1)
        yield {service: f"{base}/{name}" for service, name in names.items()}
    finally:
        with psycopg.connect(f"{server_url}/postgres", autocommit=True) as admin:
            for name in made:
                # FORCE: a server that did not stop cleanly may still hold connections.
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def redis_keys(url: str, prefix: str) -> Iterator[None]:
    """Delete the keys under `prefix` on exit (they would expire anyway: this is tidiness)."""
    try:
        yield
    finally:
        client = redis.Redis.from_url(url)
        for batch in _batched(client.scan_iter(match=f"{prefix}:*", count=1000), 500):
            client.delete(*batch)


@dataclass(frozen=True)
class Server:
    """A running gunicorn: its address, its log and its master's pid."""

    url: str
    log: Path
    pid: int


@contextlib.contextmanager
def gunicorn(app: str, env: dict[str, str], logdir: Path, *, workers: int,
             threads: int, config: str | None = None) -> Iterator[Server]:
    """Serve `app` ('module:factory()') with gunicorn on a free port until exit, with the
    hooks of `config` (a gunicorn --config value) when given."""
    port = _free_port()
    name = app.split(":")[0].replace(".", "-")
    log = logdir / f"gunicorn-{name}-{port}.log"
    command = [str(GUNICORN), "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
               "--threads", str(threads), "--pythonpath", str(BENCH), "--no-control-socket",
               "--error-logfile", str(log), *([f"--config={config}"] if config else []), app]
    process = subprocess.Popen(command, env=env, cwd=logdir, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                               start_new_session=True, preexec_fn=_die_with_parent)
    try:
        server = Server(url=f"http://127.0.0.1:{port}", log=log, pid=process.pid)
        _wait_until_serving(server, process)
        yield server
    finally:
        _stop(process)


def _wait_until_serving(server: Server, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited ({process.returncode}):\n{_tail(server.log)}")
        try:
            urllib.request.urlopen(server.url + "/", timeout=2).close()
            return
        except urllib.error.HTTPError:
            return  # it answers: a 404 is an answer
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not answer within {timeout:.0f} s:\n{_tail(server.log)}")


def _tail(log: Path, lines: int = 30) -> str:
    # The log lives in the bench's temporary folder, gone once the bench exits: show it now.
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)  # gunicorn's graceful stop; its workers follow
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # its own session: only its processes
        process.wait()


def _die_with_parent() -> None:
    # Should the bench itself be killed outright, the kernel stops gunicorn for it (Linux).
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _batched(items, size: int):
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
