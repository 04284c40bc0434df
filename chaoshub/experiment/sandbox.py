"""A Landlock sandbox for a run's child: it reads the system and its Python, writes its own folder.

Runs of one worker share its user, so without this a run could read another run's environment
under /proc, the files of the worker (its service key, a SQLite database), or signal its
neighbours. Landlock (Linux 5.13+) needs no privilege: the child restricts itself between fork
and exec, and the kernel then refuses it any file outside the rules, any ptrace-like access
(/proc/<pid>/environ, /proc/<pid>/mem) to a process outside its own domain, and, from ABI 6, any
signal or abstract Unix socket outside it. Each run gets its own domain, so runs are as
separated from each other as from the worker.

Written against the kernel's small, stable system-call interface with ctypes: the Python
bindings on PyPI are young single-author projects, and this needs three calls.

It runs as a program of its own (`launcher_command`): the child execs it, it sets its resource
limits, confines itself and execs `chaos`. Nothing runs in Python between fork and exec in the
worker, which has threads (Python's preexec_fn is not safe then), and this file imports nothing
beyond the standard library, so it starts with `python -I -S`.

What the kernel's ABI leaves out: before ABI 3 (Linux 6.2) a run may truncate files it cannot
open, before ABI 6 (Linux 6.12) it may signal any process of the same user; Unix and TCP sockets
are not confined at all (network rules would refuse http probes).
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import sys
from collections.abc import Iterable
from dataclasses import asdict, dataclass

# The same numbers on every architecture (allocated after the syscall tables were unified).
_CREATE_RULESET, _ADD_RULE, _RESTRICT_SELF = 444, 445, 446
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38

EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_V1_ALL = (1 << 13) - 1  # execute .. make_sym
REFER, TRUNCATE, IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
_SCOPE_ABSTRACT_UNIX_SOCKET, _SCOPE_SIGNAL = 1 << 0, 1 << 1

READ = EXECUTE | READ_FILE | READ_DIR
# Where a child reads: the programs and libraries of the system and its configuration
# (certificate authorities, resolver, time zones).
SYSTEM_READ = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc")
# Of /proc, only what describes the machine, and the folder of the `chaos` process itself
# (granted in the child): Landlock guards /proc/<pid>/mem of other processes but not their
# environ or maps. The programs an experiment starts have other pids: /proc/self is closed to
# them.
PROC_READ = ("/proc/cpuinfo", "/proc/meminfo", "/proc/stat", "/proc/loadavg", "/proc/uptime",
             "/proc/version", "/proc/filesystems", "/proc/sys")
DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty")

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1  # the kernel's struct is packed
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


class SandboxError(OSError):
    """The kernel refused a step of building or entering the sandbox."""


def abi() -> int:
    """The Landlock ABI version this kernel offers; 0 when it has none or it is disabled."""
    version = _libc.syscall(_CREATE_RULESET, None, ctypes.c_size_t(0),
                            ctypes.c_uint32(_CREATE_RULESET_VERSION))
    return max(int(version), 0)


def _handled(version: int) -> int:
    rights = _V1_ALL
    if version >= 2:
        rights |= REFER
    if version >= 3:
        rights |= TRUNCATE
    if version >= 5:
        rights |= IOCTL_DEV
    return rights


@dataclass(frozen=True)
class Rules:
    """What one child may touch: paths it reads and executes, and its own folder it owns."""

    version: int
    read: tuple[str, ...]
    own: tuple[str, ...]

    def apply(self) -> None:
        """Restrict the calling process (the launcher, before it execs `chaos`) to these."""
        handled = _handled(self.version)
        scoped = _SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL if self.version >= 6 else 0
        attr = _RulesetAttr(handled, 0, scoped)
        size = 24 if self.version >= 6 else 8  # the struct grew with the ABI; older kernels
        ruleset = _call(_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size),
                        ctypes.c_uint32(0))
        try:
            for path in (*self.read, *PROC_READ, f"/proc/{os.getpid()}"):
                _allow(ruleset, path, READ)
            for path in DEVICES:
                _allow(ruleset, path, READ_FILE | WRITE_FILE)
            for path in self.own:
                _allow(ruleset, path, handled)
            _call_libc("prctl", _PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
            _call(_RESTRICT_SELF, ctypes.c_int(ruleset), ctypes.c_uint32(0))
        finally:
            os.close(ruleset)


def rules(own: Iterable[str], extra_read: Iterable[str] = (), version: int | None = None) -> Rules:
    """The rules of a run whose own folder is `own`: the system, this Python, and `extra_read`."""
    python = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    read = [p for p in (*SYSTEM_READ, *sorted(python), *extra_read) if p and os.path.exists(p)]
    return Rules(abi() if version is None else version, tuple(read), tuple(own))


def _allow(ruleset: int, path: str, access: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return  # a path this machine lacks grants nothing
    try:
        if not os.path.isdir(path):
            # Rights that only make sense on a folder may not be granted on a file.
            access &= EXECUTE | READ_FILE | WRITE_FILE | TRUNCATE | IOCTL_DEV
        rule = _PathBeneathAttr(access, fd)
        _call(_ADD_RULE, ctypes.c_int(ruleset), ctypes.c_int(_RULE_PATH_BENEATH),
              ctypes.byref(rule), ctypes.c_uint32(0))
    finally:
        os.close(fd)


def _call(number: int, *args) -> int:
    result = _libc.syscall(ctypes.c_long(number), *args)
    if result < 0:
        errno = ctypes.get_errno()
        raise SandboxError(errno, f"landlock call {number}: {os.strerror(errno)}")
    return int(result)


def _call_libc(name: str, *args) -> None:
    if getattr(_libc, name)(*args) != 0:
        errno = ctypes.get_errno()
        raise SandboxError(errno, f"{name}: {os.strerror(errno)}")


# The ABI from which a run is confined as the README says: no truncation outside its folder and
# no signal to processes outside its domain.
FULL_ABI = 6
LAUNCH_FAILED = 125  # the launcher's exit code when it could not confine or start the CLI


def gaps(version: int) -> list[str]:
    """What a kernel of this Landlock ABI leaves unconfined (beyond sockets, never confined)."""
    found = []
    if version < 3:
        found.append("truncating files outside the run's folder")
    if version < FULL_ABI:
        found.append("signalling other processes of the same user")
    return found


def launcher_command(limits: dict[str, int], confine: Rules | None,
                     command: list[str]) -> list[str]:
    """The command that starts `command` under `limits` (RLIMIT_* names) and `confine`."""
    plan = {"limits": limits, "rules": asdict(confine) if confine else None}
    return [sys.executable, "-I", "-S", os.path.abspath(__file__), json.dumps(plan), "--",
            *command]


def _launch(argv: list[str]) -> None:
    plan, command = json.loads(argv[1]), argv[3:]
    for name, value in plan["limits"].items():
        limit = getattr(resource, name)
        _, hard = resource.getrlimit(limit)
        capped = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(limit, (capped, capped))
    if plan["rules"]:
        found = plan["rules"]
        Rules(found["version"], tuple(found["read"]), tuple(found["own"])).apply()
    os.execv(command[0], command)


if __name__ == "__main__":
    try:
        _launch(sys.argv)
    except Exception as exc:  # noqa: BLE001 (the supervisor reads this in the run's output)
        sys.stderr.write(f"the run could not start: {exc}\n")
        sys.exit(LAUNCH_FAILED)
