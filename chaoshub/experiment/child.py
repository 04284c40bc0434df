"""One run of an experiment as a supervised `chaos run` child process.

The child gets its own session and process group, a fresh temporary HOME and working directory,
an empty settings file, a minimal explicit environment (never the hub's), resource limits, a
Landlock sandbox (the system and its own folder only, no other process), and the hub's own
deadline: SIGTERM, a grace period for rollbacks, then SIGKILL of the whole group. chaoslib
cannot be trusted to stop by itself (a python activity has no timeout, RQ's job timeout is
swallowed inside one, and RQ's stop-job leaves the child orphaned), so nothing else stops it.

This module imports nothing of chaoslib: the experiment is code, and only the child runs it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Literal

from chaoshub.experiment import sandbox

POLL_SECONDS = 0.1  # how often the supervisor reads new events and asks whether to stop
MAX_JOURNAL_BYTES = 16 * 1024 * 1024
MAX_EVENT_LINE = 256 * 1024  # a longer line is cut off and dropped (the journal has it all)
LOG_TAIL_BYTES = 8 * 1024
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"
# Per child: CPU seconds are set from the deadline; memory, processes and file sizes are caps
# that stop a runaway experiment from taking the worker down with it.
ADDRESS_SPACE = 4 * 1024**3
PROCESSES = 512
FILE_SIZE = 256 * 1024**2

EndedBy = Literal["exit", "abort", "deadline", "lost"]


@dataclass(frozen=True)
class ChildSpec:
    """What to run and how: the experiment, the CLI's options, the run's own values."""

    experiment: dict[str, Any]
    deadline: float  # seconds the run may take before the hub stops it
    grace: float = 30.0  # seconds between SIGTERM and SIGKILL: time for rollbacks
    dry: str | None = None
    rollback_strategy: str | None = None
    configuration: dict[str, Any] = field(default_factory=dict)  # --var-file values
    secrets: dict[str, dict[str, Any]] = field(default_factory=dict)  # --var-file secrets
    environment: dict[str, str] = field(default_factory=dict)  # the child's own variables
    chaos: tuple[str, ...] = ()  # the command that starts the CLI; found next to Python
    sandbox: bool = False  # confine the child with Landlock (sandbox.py)
    sandbox_read: tuple[str, ...] = ()  # what a sandboxed child may read beyond the system


@dataclass
class ChildOutcome:
    """How the child ended: its journal (None when it wrote none), exit code and why."""

    journal: dict[str, Any] | None
    exit_code: int | None
    ended_by: EndedBy
    events: int
    log_tail: str = ""
    problem: str = ""


def chaos_command() -> tuple[str, ...]:
    """The `chaos` CLI of this installation: beside the running Python, else on PATH."""
    beside = Path(sys.executable).with_name("chaos")
    if beside.exists():
        return (str(beside),)
    found = shutil.which("chaos")
    return (found,) if found else ()


def child_environment(spec: ChildSpec, home: Path) -> dict[str, str]:
    """The child's whole environment: a PATH, a language, its HOME, and the run's variables."""
    chaos_bin = Path(spec.chaos[0]).parent if spec.chaos else None
    path = f"{chaos_bin}:{SYSTEM_PATH}" if chaos_bin else SYSTEM_PATH
    base = {"PATH": path, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "HOME": str(home),
            "TMPDIR": str(home), "PYTHONDONTWRITEBYTECODE": "1"}
    # The run's own variables may not redirect where the child looks for programs or files.
    return {**{k: v for k, v in spec.environment.items() if k not in base}, **base}


def supervise(spec: ChildSpec, on_events: Callable[[list[dict[str, Any]]], None],
              should_stop: Callable[[], str | None]) -> ChildOutcome:
    """Run the experiment in a child until it ends, the deadline passes or `should_stop` asks.

    `on_events` gets each batch of new `--events-file` events, numbered from 1 (`seq`).
    `should_stop` returns None to go on, "abort" (rollbacks played: SIGTERM, then the grace
    period) or "abort-now" (no rollbacks: SIGUSR2, which chaoslib exits on without them).
    """
    chaos = spec.chaos or chaos_command()
    if not chaos:
        return ChildOutcome(None, None, "lost", 0,
                            problem="the Chaos Toolkit CLI (chaos) is not installed here")
    spec = ChildSpec(**{**spec.__dict__, "chaos": chaos})
    with tempfile.TemporaryDirectory(prefix="chaoshub-run-") as folder:
        root = Path(folder)
        home, work = root / "home", root / "work"
        home.mkdir(mode=0o700)
        work.mkdir(mode=0o700)
        files = _write_inputs(spec, root)
        log = root / "chaostoolkit.log"
        with open(root / "output.log", "wb") as output:
            try:
                process = subprocess.Popen(  # noqa: S603 (a list, no shell)
                    _launcher(spec, root, _command(spec, files, log)), cwd=work,
                    env=child_environment(spec, home), stdin=subprocess.DEVNULL,
                    stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
                    close_fds=True,
                )
            except OSError as exc:
                return ChildOutcome(None, None, "lost", 0,
                                    problem=f"the Chaos Toolkit CLI could not start: {exc}")
            try:
                outcome = _watch(process, spec, files["events"], on_events, should_stop)
            finally:
                # Whatever went wrong while watching, no child outlives its supervision.
                _signal(process, signal.SIGKILL)
                process.wait()
        outcome.journal = _journal(files["journal"])
        outcome.log_tail = _tail(log) or _tail(root / "output.log")
        if outcome.exit_code == sandbox.LAUNCH_FAILED and outcome.journal is None and \
                not outcome.events:
            outcome.ended_by = "lost"
            outcome.problem = _tail(root / "output.log").strip()[-500:] or \
                "the Chaos Toolkit CLI could not start"
        return outcome


def _write_inputs(spec: ChildSpec, root: Path) -> dict[str, Path]:
    files = {"experiment": root / "experiment.json", "settings": root / "settings.yaml",
             "vars": root / "vars.json", "journal": root / "journal.json",
             "events": root / "events.ndjson"}
    files["experiment"].write_text(json.dumps(spec.experiment), encoding="utf-8")
    # An empty settings file: no controls, notifications or auths of whoever runs the worker.
    files["settings"].write_text("{}\n", encoding="utf-8")
    values = {"configuration": spec.configuration, "secrets": spec.secrets}
    files["vars"].write_text(json.dumps(values), encoding="utf-8")
    files["vars"].chmod(0o600)
    files["events"].touch()
    return files


def _command(spec: ChildSpec, files: dict[str, Path], log: Path) -> list[str]:
    command = [*spec.chaos, "--no-version-check", "--log-file", str(log),
               "--settings", str(files["settings"]), "run",
               "--journal-path", str(files["journal"]), "--events-file", str(files["events"])]
    if spec.dry:
        command += ["--dry", spec.dry]
    if spec.rollback_strategy:
        command += ["--rollback-strategy", spec.rollback_strategy]
    if spec.configuration or spec.secrets:
        command += ["--var-file", str(files["vars"])]
    return [*command, str(files["experiment"])]


def _launcher(spec: ChildSpec, root: Path, command: list[str]) -> list[str]:
    # The limits and the sandbox are applied by a program of their own that then execs the
    # CLI: the worker has threads, so no Python runs between its fork and exec.
    limits = {"RLIMIT_CPU": int(spec.deadline + spec.grace) + 60,
              "RLIMIT_AS": ADDRESS_SPACE, "RLIMIT_NPROC": PROCESSES,
              "RLIMIT_FSIZE": FILE_SIZE, "RLIMIT_CORE": 0}
    rules = sandbox.rules([str(root)], spec.sandbox_read) if spec.sandbox else None
    return sandbox.launcher_command(limits, rules, command)


def _watch(process: subprocess.Popen, spec: ChildSpec, events_file: Path,
           on_events: Callable[[list[dict[str, Any]]], None],
           should_stop: Callable[[], str | None]) -> ChildOutcome:
    reader = _EventReader(events_file)
    values_file = events_file.with_name("vars.json")
    started = time.monotonic()
    ended_by: EndedBy = "exit"
    kill_at: float | None = None
    while process.poll() is None:
        _deliver(reader, on_events)
        if reader.seq and values_file.exists():
            # The CLI read its values before its first event: gone from the disk, no other
            # process of the same user reads this run's secrets there.
            values_file.unlink(missing_ok=True)
        now = time.monotonic()
        if kill_at is None:
            wanted = _asked(should_stop)
            if now - started > spec.deadline:
                ended_by, kill_at = "deadline", now + spec.grace
                _signal(process, signal.SIGTERM)
            elif wanted == "abort":
                ended_by, kill_at = "abort", now + spec.grace
                _signal(process, signal.SIGTERM)
            elif wanted == "abort-now":
                # SIGUSR2: chaoslib stops without rollbacks; the short wait lets it write
                # its journal.
                ended_by, kill_at = "abort", now + min(spec.grace, 5.0)
                _signal(process, signal.SIGUSR2)
        elif now > kill_at:
            _signal(process, signal.SIGKILL)
            kill_at = float("inf")
        time.sleep(POLL_SECONDS)
    # Whatever the child left behind in its group (a process activity's children) goes too.
    _signal(process, signal.SIGKILL)
    _deliver(reader, on_events)
    return ChildOutcome(None, process.returncode, ended_by, reader.seq)


def _asked(should_stop: Callable[[], str | None]) -> str | None:
    try:
        return should_stop()
    except Exception:  # a lost connection to the queue must not stop the run; ask again
        return None


def _deliver(reader: _EventReader, on_events: Callable[[list[dict[str, Any]]], None]) -> None:
    batch = reader.read()
    if batch:
        on_events(batch)


def _signal(process: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(process.pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


class _EventReader:
    """Reads the complete lines the child appended to its events file since the last read."""

    def __init__(self, path: Path):
        self.path = path
        self.offset = 0
        self.seq = 0
        self.partial = b""

    def read(self) -> list[dict[str, Any]]:
        try:
            with _open_own(self.path) as stream:
                stream.seek(self.offset)
                chunk = stream.read()
        except OSError:
            return []
        self.offset += len(chunk)
        lines = (self.partial + chunk).split(b"\n")
        self.partial = lines.pop()
        if len(self.partial) > MAX_EVENT_LINE:
            self.partial = b""
        events = []
        for line in lines:
            try:
                event = json.loads(line)
            except (ValueError, RecursionError):  # the child wrote what it liked there
                continue
            if isinstance(event, dict) and isinstance(event.get("type"), str):
                self.seq += 1
                events.append({**event, "seq": self.seq})
        return events


def _journal(path: Path) -> dict[str, Any] | None:
    try:
        with _open_own(path) as stream:
            data = stream.read(MAX_JOURNAL_BYTES + 1)
        if len(data) > MAX_JOURNAL_BYTES:
            return None
        journal = json.loads(data.decode("utf-8"))
    except (OSError, ValueError):
        return None
    return journal if isinstance(journal, dict) else None


def _tail(path: Path) -> str:
    try:
        with _open_own(path) as stream:
            stream.seek(max(0, os.fstat(stream.fileno()).st_size - LOG_TAIL_BYTES))
            return stream.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _open_own(path: Path) -> BinaryIO:
    # The child owns its folder and may leave a link or a pipe there in a file's place: the
    # supervisor reads regular files only, never through a link, never blocking.
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(f"{path.name} is not a regular file")
    return os.fdopen(fd, "rb")
