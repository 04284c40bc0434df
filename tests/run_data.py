"""Experiments the hub's workers run in tests (processes only), and waiting on what they do."""

from __future__ import annotations

import time


def process(kind: str, name: str, path: str = "/bin/true", *arguments: str,
            timeout: int = 120) -> dict:
    """A probe or an action running a program, with its arguments as a list."""
    return {"type": kind, "name": name, "provider": {
        "type": "process", "path": path, "arguments": list(arguments), "timeout": timeout}}


def runnable(title: str = "Run me", method: list[dict] | None = None,
             rollbacks: list[dict] | None = None, **extra) -> dict:
    """A short experiment: a probe that holds, an action, and a rollback ("restore")."""
    return {
        "title": title, "description": "It runs on the hub's workers.",
        "steady-state-hypothesis": {"title": "ok", "probes": [
            {**process("probe", "alive"), "tolerance": 0}]},
        "method": method or [process("action", "act")],
        "rollbacks": [process("action", "restore")] if rollbacks is None else rollbacks,
        **extra,
    }


def sleeping(title: str = "Waits", seconds: int = 60) -> dict:
    """An experiment whose method sleeps: long enough to be watched, aborted or lost."""
    return runnable(title, [process("action", "wait", "/bin/sleep", str(seconds))])


def wait_for(predicate, timeout: float, what: str):
    """The first true value `predicate()` gives within `timeout` seconds; fails saying `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout} s")


def deviating(title: str = "Deviates") -> dict:
    """An experiment whose method breaks its own hypothesis: the probe finds no marker file
    before the method, the method makes one (in the run's working folder), and the probe after
    it deviates."""
    return runnable(title, [process("action", "make-marker", "/usr/bin/touch", "marker")],
                    **{"steady-state-hypothesis": {"title": "no marker", "probes": [
                        {**process("probe", "no-marker", "/usr/bin/test", "!", "-e", "marker"),
                         "tolerance": 0}]}})
