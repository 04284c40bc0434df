"""A gunicorn server's processes as /proc shows them: the CPU time they used, their memory.

Linux only. The hub's workers are non-dumpable, which hides their environment under /proc, not
the figures read here (stat and status stay readable to anyone).
"""

from __future__ import annotations

import os
from pathlib import Path

PROC = Path("/proc")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def workers(master: int) -> list[int]:
    """The pids of the processes whose parent is `master` (gunicorn's workers)."""
    found = []
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields and int(fields[1]) == master:
                found.append(int(entry.name))
    return sorted(found)


def cpu_seconds(master: int) -> float:
    """User and system CPU time of `master` and its workers, in seconds."""
    ticks = 0
    for pid in (master, *workers(master)):
        fields = _stat(pid)
        if fields:
            # utime and stime: the 14th and 15th fields of stat, counted from the pid.
            ticks += int(fields[11]) + int(fields[12])
    return ticks / CLOCK_TICKS


def named_cpu_seconds(name: str) -> float:
    """User and system CPU time of every process whose command is `name` (the machine's
    PostgreSQL server processes for "postgres"), in seconds."""
    ticks = 0
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            try:
                text = (entry / "stat").read_text()
            except OSError:
                continue  # gone meanwhile
            command, _, rest = text.partition(" (")[2].rpartition(") ")
            if command == name:
                fields = rest.split()
                ticks += int(fields[11]) + int(fields[12])
    return ticks / CLOCK_TICKS


def worker_rss_mb(master: int) -> list[float]:
    """The resident memory of each of `master`'s workers, in MB (MiB)."""
    sizes = []
    for pid in workers(master):
        try:
            status = (PROC / str(pid) / "status").read_text()
        except OSError:
            continue  # a worker that gunicorn just replaced
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                sizes.append(int(line.split()[1]) / 1024)
    return sizes


def _stat(pid: int) -> list[str] | None:
    # The fields after the command's name, which is in parentheses and may hold spaces:
    # state, ppid, ... (the 3rd field of stat onwards).
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()
