"""The supervised `chaos run` child: the real Chaos Toolkit CLI, real processes and signals."""

from __future__ import annotations

import os
import time

import pytest

from chaoshub.experiment.child import ChildSpec, supervise


def probe(name: str, path: str, *arguments: str, timeout: int = 30) -> dict:
    return {"type": "probe", "name": name, "provider": {
        "type": "process", "path": path, "arguments": list(arguments), "timeout": timeout}}


def action(name: str, path: str, *arguments: str) -> dict:
    return {**probe(name, path, *arguments), "type": "action"}


def experiment(method: list[dict], rollbacks: list[dict] | None = None) -> dict:
    return {
        "title": "child test", "description": "d",
        "steady-state-hypothesis": {"title": "ok", "probes": [
            {**probe("alive", "/bin/true"), "tolerance": 0}]},
        "method": method, "rollbacks": rollbacks or [],
    }


class Recorder:
    def __init__(self, stop_after: str | None = None, answer: str = "abort"):
        self.events: list[dict] = []
        self.stop_after = stop_after
        self.answer = answer

    def __call__(self, batch: list[dict]) -> None:
        self.events.extend(batch)

    def should_stop(self) -> str | None:
        seen = any(e["type"] == "activity-started" and e.get("name") == self.stop_after
                   for e in self.events)
        return self.answer if self.stop_after and seen else None


def test_a_run_ends_with_its_journal_and_numbered_events():
    recorder = Recorder()
    outcome = supervise(ChildSpec(experiment([action("touch", "/bin/true")]), deadline=60),
                        recorder, recorder.should_stop)
    assert (outcome.ended_by, outcome.exit_code) == ("exit", 0)
    assert outcome.journal["status"] == "completed"
    types = [e["type"] for e in recorder.events]
    assert types[0] == "run-started" and types[-1] == "run-finished"
    assert [e["seq"] for e in recorder.events] == list(range(1, len(types) + 1))
    assert outcome.events == len(types)


def test_the_child_sees_only_its_own_environment(monkeypatch):
    monkeypatch.setenv("CHAOSHUB_DATABASE_URL", "postgresql://hub:hunter2@db/hub")
    monkeypatch.setenv("REDIS_URL", "redis://secret-host")
    spec = ChildSpec(experiment([probe("env", "/usr/bin/env")]), deadline=60,
                     environment={"TARGET": "staging", "PATH": "/tmp/evil"})
    outcome = supervise(spec, Recorder(), lambda: None)
    output = outcome.journal["run"][0]["output"]["stdout"]
    variables = dict(line.split("=", 1) for line in output.splitlines() if "=" in line)
    assert variables["TARGET"] == "staging"
    assert "hunter2" not in output and "secret-host" not in output
    assert not variables["PATH"].startswith("/tmp/evil")
    assert variables["HOME"] != os.environ.get("HOME")
    assert set(variables) <= {"TARGET", "PATH", "LANG", "LC_ALL", "HOME", "TMPDIR",
                              "PYTHONDONTWRITEBYTECODE", "PWD", "SHLVL", "_"}


def test_configuration_and_secrets_reach_the_run_through_a_var_file():
    document = experiment([probe("echo", "/bin/echo", "${target}")])
    document["configuration"] = {"target": "default"}
    spec = ChildSpec(document, deadline=60, configuration={"target": "from-the-hub"})
    outcome = supervise(spec, Recorder(), lambda: None)
    assert outcome.journal["run"][0]["output"]["stdout"].strip() == "from-the-hub"


def test_an_abort_interrupts_the_method_and_plays_the_rollbacks():
    recorder = Recorder(stop_after="sleep")
    document = experiment([action("sleep", "/bin/sleep", "30")],
                          [action("restore", "/bin/true")])
    started = time.monotonic()
    outcome = supervise(ChildSpec(document, deadline=60, grace=20, rollback_strategy="always"),
                        recorder, recorder.should_stop)
    assert time.monotonic() - started < 15
    assert outcome.ended_by == "abort"
    assert outcome.journal["status"] == "interrupted"
    assert [r["activity"]["name"] for r in outcome.journal["rollbacks"]] == ["restore"]


def test_an_abort_without_rollbacks_plays_none():
    recorder = Recorder(stop_after="sleep", answer="abort-now")
    document = experiment([action("sleep", "/bin/sleep", "30")],
                          [action("restore", "/bin/true")])
    outcome = supervise(ChildSpec(document, deadline=60, rollback_strategy="always"),
                        recorder, recorder.should_stop)
    assert outcome.ended_by == "abort"
    assert outcome.journal["status"] == "interrupted"
    assert outcome.journal["rollbacks"] == []


def test_the_deadline_stops_a_run_and_a_child_that_ignores_sigterm_is_killed():
    # A process activity that traps SIGTERM: the grace period ends with SIGKILL of the group.
    stubborn = action("stubborn", "/bin/sh", "-c", "trap '' TERM; sleep 60")
    started = time.monotonic()
    outcome = supervise(ChildSpec(experiment([stubborn]), deadline=2, grace=2),
                        Recorder(), lambda: None)
    assert time.monotonic() - started < 15
    assert outcome.ended_by == "deadline"
    assert outcome.exit_code != 0


def test_no_chaos_cli_is_a_clear_problem_not_a_crash():
    outcome = supervise(ChildSpec(experiment([]), deadline=5, chaos=("/nonexistent/chaos",)),
                        Recorder(), lambda: None)
    assert (outcome.ended_by, outcome.journal) == ("lost", None)
    assert "could not start" in outcome.problem


def test_a_supervisor_that_fails_leaves_no_child_behind():
    def broken(batch):
        raise RuntimeError("the supervisor broke")

    document = experiment([action("sleep", "/bin/sleep", "77")])
    with pytest.raises(RuntimeError):
        supervise(ChildSpec(document, deadline=60), broken, lambda: None)
    time.sleep(0.5)
    alive = [p for p in os.listdir("/proc") if p.isdigit()
             and _cmdline(p) == "/bin/sleep\x0077\x00"]
    assert alive == []


def _cmdline(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/cmdline") as f:
            return f.read()
    except OSError:
        return ""


def test_a_run_reads_its_values_file_only_until_it_has_started():
    document = experiment([action("wait", "/bin/sleep", "1"),
                           action("look", "/bin/cat", "../vars.json")])
    spec = ChildSpec(document, deadline=60, secrets={"db": {"password": "hunter2-secret"}})
    outcome = supervise(spec, Recorder(), lambda: None)
    look = outcome.journal["run"][1]
    assert look["output"]["status"] != 0 and "hunter2" not in look["output"]["stdout"]


def test_a_hidden_process_environment_is_unreadable_by_its_children():
    import subprocess
    from pathlib import Path

    from chaoshub.core import process

    # The module as it is, run by the system's Python as an ordinary user, as the hub runs
    # (root reads every process's /proc whatever it says).
    module = Path(process.__file__).read_text()
    look = ("\nimport os, subprocess\n{hide}"
            "r = subprocess.run(['/bin/cat', f'/proc/{{os.getpid()}}/environ'], "
            "capture_output=True)\nprint(r.returncode, b'HUB_SECRET' in r.stdout)\n")
    user = "nobody" if os.getuid() == 0 else None
    env = {"PATH": "/usr/bin:/bin", "HUB_SECRET": "x", "HOME": "/tmp"}

    def run(hide: str) -> list[str]:
        done = subprocess.run(["/usr/bin/python3", "-c", module + look.format(hide=hide)],
                              env=env, user=user, capture_output=True, text=True, timeout=30)
        return done.stdout.split()

    assert run("") == ["0", "True"]  # the check can fail: unhidden, the child reads it
    hidden = run("hide_from_children()\n")
    assert hidden[1] == "False" and hidden[0] != "0"
