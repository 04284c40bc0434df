"""Real servers to break on purpose, and a bounded load client to count what breaks.

- `redis_server`: a `redis-server` of its own on a spare loopback port (no persistence unless
  asked), that a test may SIGKILL and start again on the same port;
- `postgres_cluster`: a PostgreSQL cluster made with `initdb` and run with `pg_ctl` (as the
  `postgres` user when the tests run as root), on a spare port, to restart, stop or crash;
- `hub`: `chaoshub run --production` (gunicorn) on those, with its processes and their memory;
  `workers`: `chaoshub worker` processes beside it;
- `cutting_proxy`: an HTTP proxy that drops the connection after the server answered, before
  the client hears (a lost answer);
- `Load` / `run_load`: N threads, each with its own `requests.Session`, sending requests for a
  duration or a count and recording each one's status, latency and error.

Each is a context manager, so that a failing test still stops what it started.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import redis
import requests

from chaoshub.core.config import SERVICES
from tests.experiment_data import journal as journal_fixture
from tests.helpers import (
    BIN,
    clean_env,
    descendants,
    free_port,
    signed_in_session,
    start,
    stop,
    wait_until_up,
)

# Redis ----------------------------------------------------------------------------------------


class RedisServer:
    """A `redis-server` on a port of its own; `kill` it, then `start` it again on that port."""

    def __init__(self, folder: Path, port: int | None = None, *, persistent: bool = False):
        self.folder = folder
        self.port = port or free_port()
        # Persistent: an append-only file written on every command, so that what the server
        # held before a SIGKILL is back after the restart, as with a production Redis.
        self.persistent = persistent
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10) -> None:
        """Start the server (empty: nothing is saved) and wait until it answers."""
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes" if self.persistent else "no", "--appendfsync", "always",
             "--dir", str(self.folder),
             "--logfile", str(self.folder / "redis.log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        _wait(lambda: _answers(client), timeout, f"redis-server on port {self.port}")

    def kill(self) -> None:
        """SIGKILL: the server goes at once, mid-answer, as a lost host would."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        """Stop the server, if it runs."""
        if self.process and self.process.poll() is None:
            stop(self.process)


def _answers(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


@contextlib.contextmanager
def redis_server(root: Path, *, persistent: bool = False) -> Iterator[RedisServer]:
    """A running RedisServer with its files in `root`, stopped on exit."""
    folder = root / "redis"
    folder.mkdir(parents=True, exist_ok=True)
    server = RedisServer(folder, persistent=persistent)
    server.start()
    try:
        yield server
    finally:
        server.stop()


# PostgreSQL -----------------------------------------------------------------------------------


def postgres_binary(name: str) -> str:
    """`initdb`, `pg_ctl`...: from PATH, else Debian's newest /usr/lib/postgresql/*/bin."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                        key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    if not candidates:
        raise FileNotFoundError(f"{name}: no PostgreSQL server binaries on this machine")
    return candidates[-1]


class PostgresCluster:
    """A cluster of its own: made with `initdb`, run with `pg_ctl` on a spare loopback port."""

    SETTINGS = {
        "listen_addresses": "'127.0.0.1'",
        # Every test database and connection pool of a gunicorn hub fits.
        "max_connections": "200",
        "shared_buffers": "32MB",
        # Durability against an OS crash is not what these tests are about; speed is welcome.
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
    }

    def __init__(self, folder: Path, port: int | None = None):
        self.folder = folder  # owned by the user the server runs as
        self.data = folder / "data"
        self.log = folder / "postgres.log"
        self.port = port or free_port()

    @property
    def url(self) -> str:
        """The server's address for psycopg (trust authentication, user postgres)."""
        return f"postgresql://postgres@127.0.0.1:{self.port}"

    def _as_owner(self, *command: str, timeout: float = 60) -> None:
        # PostgreSQL refuses to run as root: as root, the cluster belongs to `postgres`.
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        done = subprocess.run([*prefix, *command], capture_output=True, text=True,
                              timeout=timeout, cwd=self.folder)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n"
                               f"{done.stdout}{done.stderr}\n{self.log_tail()}")

    def init(self) -> None:
        """Make the cluster (trust authentication) with this class's settings."""
        self._as_owner(postgres_binary("initdb"), "-D", str(self.data), "-U", "postgres",
                       "--auth=trust", "--no-sync", "-E", "UTF8", "--no-instructions")
        lines = [f"{k} = {v}" for k, v in self.SETTINGS.items()]
        lines += [f"port = {self.port}", f"unix_socket_directories = '{self.folder}'"]
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write("\n".join(lines) + "\n")

    def pg_ctl(self, action: str, *options: str) -> None:
        """Run `pg_ctl ACTION` on the cluster and wait for it to finish."""
        self._as_owner(postgres_binary("pg_ctl"), action, "-D", str(self.data), "-l",
                       str(self.log), "-w", "-t", "30", *options)

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        self.pg_ctl("start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: `fast` (sessions ended cleanly) or `immediate` (a crash)."""
        self.pg_ctl("stop", "-m", mode)

    def restart(self, mode: str = "fast") -> None:
        """Stop then start again."""
        self.pg_ctl("restart", "-m", mode)

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def connect(self, database: str = "postgres") -> psycopg.Connection:
        """An autocommit connection to one of its databases."""
        return psycopg.connect(f"{self.url}/{database}", autocommit=True, connect_timeout=3)

    def create_databases(self, prefix: str = "chaoshub") -> dict[str, str]:
        """One database per service; their SQLAlchemy URLs by service."""
        with self.connect() as admin:
            for service in SERVICES:
                admin.execute(f'CREATE DATABASE "{prefix}_{service}"')
        base = self.url.replace("postgresql://", "postgresql+psycopg://", 1)
        return {service: f"{base}/{prefix}_{service}" for service in SERVICES}

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no PostgreSQL log)"


@contextlib.contextmanager
def postgres_cluster() -> Iterator[PostgresCluster]:
    """A running PostgresCluster in a new folder of /tmp (the postgres user must reach it),
    stopped and removed on exit."""
    folder = Path(tempfile.mkdtemp(prefix="chaoshub-faults-pg-"))
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(folder, owner.pw_uid, owner.pw_gid)
    cluster = PostgresCluster(folder)
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        if cluster.running():
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                cluster.stop("immediate")
        shutil.rmtree(folder, ignore_errors=True)


# The hub --------------------------------------------------------------------------------------


@dataclass
class Hub:
    """`chaoshub run --production`: its URL, its process (gunicorn's master) and its log."""

    url: str
    process: subprocess.Popen
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def processes(self) -> list[int]:
        """The master and every process below it (gunicorn's workers)."""
        return [self.pid, *descendants(self.pid)]

    def rss_mb(self) -> float:
        """The resident memory of the master and its workers together, in MiB."""
        return sum(rss_mb(pid) for pid in self.processes())

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def hub_env(root: Path, databases: dict[str, str] | None = None, redis_url: str = "",
            **extra: str) -> dict[str, str]:
    """The settings of a test hub in `root`: its databases, its Redis, test-friendly limits."""
    env = clean_env(CHAOSHUB_INSTANCE_PATH=str(root / "instance"), SECRET_KEY="faults-secret",
                    PASSWORD_HASHING="fast", SIGNUP_LIMIT_PER_HOUR="1000", LOG_LEVEL="WARNING",
                    REDIS_URL=redis_url)
    for service, url in (databases or {}).items():
        env[f"{service.upper()}_DATABASE_URL"] = url
    env.update(extra)
    return env


@contextlib.contextmanager
def hub(root: Path, env: dict[str, str], *, workers: int = 2,
        embedded_worker: bool = False) -> Iterator[Hub]:
    """`chaoshub run --production` (migrates, then gunicorn) on a free port, stopped on exit."""
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = root / f"hub-{port}.log"
    args = [str(BIN / "chaoshub"), "run", "--production", "--port", str(port),
            "--workers", str(workers), "--worker" if embedded_worker else "--no-worker"]
    process = start(args, root, env, log)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/status/live", process, log, timeout=60)
        yield Hub(f"http://127.0.0.1:{port}", process, log)
    finally:
        stop(process)


@contextlib.contextmanager
def workers(root: Path, env: dict[str, str], count: int = 1) -> Iterator[list[subprocess.Popen]]:
    """`chaoshub worker` processes (RQ on the hub's Redis), stopped on exit."""
    started = [start([str(BIN / "chaoshub"), "worker"], root, env, root / f"worker-{n}.log")
               for n in range(count)]
    try:
        yield started
    finally:
        stop(*started)


# A connection that drops mid-answer ----------------------------------------------------------


class CuttingProxy:
    """An HTTP/1.1 proxy in front of `upstream` (host, port), request by request (keep-alive
    too) that, for its next `cut` requests, forwards the whole request, waits for the whole
    answer, and drops the client's connection (a reset) before it gets a byte of it: the server
    did the work, the client never heard. Other requests go through as they are."""

    def __init__(self, upstream: tuple[str, int]):
        self.upstream = upstream
        self.cut = 0
        self.cuts = 0  # answers dropped so far
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._closed.set()
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _cutting(self) -> bool:
        with self._lock:
            if self.cut <= 0:
                return False
            self.cut -= 1
            self.cuts += 1
            return True

    def _serve(self, client: socket.socket) -> None:
        with client, socket.create_connection(self.upstream) as server, \
                contextlib.suppress(OSError):
            while request := _read_message(client):
                server.sendall(request)
                answer = _read_message(server)  # the whole answer: the work is done
                if self._cutting():
                    # A reset rather than a clean close: what a dropped connection looks like.
                    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                      struct.pack("ii", 1, 0))
                    return
                client.sendall(answer)


def _read_message(sock: socket.socket) -> bytes:
    """One HTTP/1.1 message (headers and a Content-Length body) from `sock`."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


@contextlib.contextmanager
def cutting_proxy(url: str) -> Iterator[CuttingProxy]:
    """A CuttingProxy in front of the server at `url` (http://host:port), closed on exit."""
    host, port = url.removeprefix("http://").split(":")
    proxy = CuttingProxy((host, int(port)))
    try:
        yield proxy
    finally:
        proxy.close()


# Accounts and payloads ------------------------------------------------------------------------


def bearer_session(hub_url: str, username: str, scopes: tuple[str, ...] = ("full",)
                   ) -> tuple[requests.Session, str]:
    """A signed-in browser session of a new account, and an API token of it."""
    http = signed_in_session(hub_url, username)
    made = http.post(f"{hub_url}/api/v1/tokens", json={"name": "faults", "scopes": list(scopes)})
    assert made.status_code == 201, made.text
    return http, made.json()["secret"]


def with_token(secret: str) -> Callable[[], requests.Session]:
    """A factory of sessions sending `secret` as their bearer token."""
    def session() -> requests.Session:
        made = requests.Session()
        made.headers["Authorization"] = f"Bearer {secret}"
        return made
    return session


_journals = itertools.count()


def unique_journal() -> dict:
    """The sample journal with a start time of its own: each one is a new execution."""
    journal = journal_fixture()
    n = next(_journals)
    minutes, micro = divmod(n, 1_000_000)
    journal["start"] = f"2026-01-01T00:{minutes % 60:02d}:00.{micro:06d}+00:00"
    return journal


# Processes, read from /proc ---------------------------------------------------------------------



def rss_mb(pid: int) -> float:
    """The resident memory of one process in MiB (0 if it is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


# The load client ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """One request: when it started (seconds since the load began), how long it took, its
    status (None when no answer came) and the error it raised."""

    name: str
    started: float
    seconds: float
    status: int | None
    error: str = ""
    body: str = ""  # kept for answers of 400 and more only: what the client saw
    headers: dict[str, str] = field(default_factory=dict)  # likewise
    answer_id: str = ""  # the `id` of a 2xx JSON answer that has one (what was made)


def failed(sample: Sample) -> bool:
    """No answer, or a 5xx one."""
    return sample.status is None or sample.status >= 500


@dataclass
class Report:
    """What a load counted."""

    samples: list[Sample] = field(default_factory=list)
    seconds: float = 0.0

    def __len__(self) -> int:
        return len(self.samples)

    def failures(self, predicate: Callable[[Sample], bool] = failed) -> list[Sample]:
        return [s for s in self.samples if predicate(s)]

    def statuses(self) -> Counter:
        return Counter(s.status for s in self.samples)

    def percentile(self, p: float, samples: list[Sample] | None = None) -> float:
        """The `p`th percentile of the latencies, in seconds (0 without samples)."""
        latencies = sorted(s.seconds for s in (self.samples if samples is None else samples))
        if not latencies:
            return 0.0
        return latencies[min(len(latencies) - 1, int(round(p / 100 * (len(latencies) - 1))))]

    def between(self, start: float, end: float) -> list[Sample]:
        """The samples that started in [start, end) (seconds since the load began)."""
        return [s for s in self.samples if start <= s.started < end]

    def summary(self, label: str = "load") -> str:
        """One line: requests, rate, failures, statuses and latencies."""
        rate = len(self) / self.seconds if self.seconds else 0.0
        statuses = dict(sorted(self.statuses().items(), key=str))
        ms = {p: self.percentile(p) * 1000 for p in (50, 99, 100)}
        return (f"{label}: {len(self)} requests in {self.seconds:.1f} s ({rate:.0f}/s), "
                f"{len(self.failures())} failed, statuses {statuses}, "
                f"p50 {ms[50]:.0f} ms, p99 {ms[99]:.0f} ms, max {ms[100]:.0f} ms")


Action = Callable[[requests.Session, int], requests.Response]


class Load:
    """`clients` threads, each with its own session, cycling through `actions` (name ->
    action(session, n), n counting that thread's requests) until stopped, `seconds` pass or
    `count` requests were sent in all."""

    def __init__(self, actions: dict[str, Action], clients: int, *,
                 session: Callable[[], requests.Session] = requests.Session,
                 seconds: float | None = None, count: int | None = None):
        self.actions = list(actions.items())
        self.clients = clients
        self.session = session
        self.seconds = seconds
        self.count = count
        self.report = Report()
        self._sent = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._began = 0.0

    def now(self) -> float:
        """Seconds since the load began (the time base of its samples)."""
        return time.monotonic() - self._began

    def start(self) -> Load:
        self._began = time.monotonic()
        sessions = [self.session() for _ in range(self.clients)]
        self._threads = [threading.Thread(target=self._client, args=(n, s), daemon=True)
                         for n, s in enumerate(sessions)]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> Report:
        """Stop sending, wait for the requests in flight, and report."""
        self._stop.set()
        return self.wait()

    def wait(self) -> Report:
        """Wait until the load ends by itself (duration or count), and report."""
        for thread in self._threads:
            thread.join()
        self.report.seconds = self.now()
        self.report.samples.sort(key=lambda s: s.started)
        return self.report

    def _take_turn(self) -> bool:
        if self._stop.is_set() or (self.seconds is not None and self.now() >= self.seconds):
            return False
        with self._lock:
            if self.count is not None and self._sent >= self.count:
                return False
            self._sent += 1
        return True

    def _client(self, client: int, session: requests.Session) -> None:
        n = 0
        with session:
            while self._take_turn():
                name, action = self.actions[(client + n) % len(self.actions)]
                began = self.now()
                status, error, body, headers, made = None, "", "", {}, ""
                try:
                    answer = action(session, n)
                    status = answer.status_code
                    if status >= 400:
                        body, headers = answer.text[:500], dict(answer.headers)
                    elif status == 201:
                        made = _made_id(answer)
                except Exception as exc:  # noqa: BLE001 (every failure is counted, not raised)
                    error = f"{type(exc).__name__}: {exc}"[:500]
                sample = Sample(name, began, self.now() - began, status, error, body, headers,
                                made)
                with self._lock:
                    self.report.samples.append(sample)
                n += 1

    def __enter__(self) -> Load:
        return self.start()

    def __exit__(self, *_exc) -> None:
        self.stop()


def _made_id(answer: requests.Response) -> str:
    try:
        body = answer.json()
    except ValueError:
        return ""
    return str(body.get("id", "")) if isinstance(body, dict) else ""


def run_load(actions: dict[str, Action], clients: int, *, seconds: float | None = None,
             count: int | None = None,
             session: Callable[[], requests.Session] = requests.Session) -> Report:
    """Send the load and wait for it to end; its report."""
    assert seconds is not None or count is not None, "a bounded load: give seconds or count"
    return Load(actions, clients, session=session, seconds=seconds, count=count).start().wait()


# Waiting --------------------------------------------------------------------------------------


def _wait(predicate: Callable[[], object], timeout: float, what: str, every: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"{what}: not within {timeout} s")


def wait_for(predicate: Callable[[], object], timeout: float, what: str,
             every: float = 0.05) -> tuple[object, float]:
    """The first true value of `predicate()` within `timeout` s, and the seconds it took."""
    began = time.monotonic()
    value = _wait(predicate, timeout, what, every)
    return value, time.monotonic() - began
