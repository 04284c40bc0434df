"""The Landlock sandbox of a run's child: real `chaos run` children, real processes and files."""

from __future__ import annotations

import http.server
import subprocess
import threading
import time
from pathlib import Path

import pytest

from chaoshub.core.config import ConfigError, load_settings
from chaoshub.experiment import sandbox
from chaoshub.experiment.child import ChildSpec, supervise
from tests.test_run_child import Recorder, experiment, probe


def test_this_kernel_offers_landlock():
    # The machines this project runs on and its CI have it, at the ABI that confines runs as
    # the README says: without it these tests must fail rather than pass unconfined.
    assert sandbox.abi() >= sandbox.FULL_ABI
    assert sandbox.gaps(sandbox.FULL_ABI) == []
    assert len(sandbox.gaps(2)) == 2


def run_sandboxed(*probes: dict, **options) -> dict:
    spec = ChildSpec(experiment(list(probes)), deadline=60, sandbox=True, **options)
    outcome = supervise(spec, Recorder(), lambda: None)
    assert outcome.journal is not None, outcome.log_tail
    return outcome.journal


def outputs(journal: dict) -> dict[str, dict]:
    return {r["activity"]["name"]: r.get("output") or {} for r in journal["run"]}


def test_a_sandboxed_run_reads_the_system_and_writes_only_its_own_folder(tmp_path):
    private = tmp_path / "service-key.pem"
    private.write_text("-----BEGIN PRIVATE KEY-----\n")
    journal = run_sandboxed(
        probe("system", "/bin/cat", "/etc/os-release"),
        probe("private", "/bin/cat", str(private)),
        probe("home", "/bin/sh", "-c", 'echo kept > "$HOME/note" && cat "$HOME/note"'),
        probe("tmp", "/usr/bin/touch", "/tmp/chaoshub-sandbox-escape"),
    )
    seen = outputs(journal)
    assert seen["system"]["status"] == 0 and "ID=" in seen["system"]["stdout"]
    assert seen["private"]["status"] != 0 and "Permission denied" in seen["private"]["stderr"]
    assert seen["home"]["stdout"].strip() == "kept"
    assert seen["tmp"]["status"] != 0
    assert not Path("/tmp/chaoshub-sandbox-escape").exists()


def test_a_sandboxed_run_cannot_read_or_signal_a_process_of_the_same_user():
    worker_like = subprocess.Popen(["sleep", "60"], env={"CHAOSHUB_SECRET_KEY": "hunter2"})
    try:
        journal = run_sandboxed(
            probe("environ", "/bin/cat", f"/proc/{worker_like.pid}/environ"),
            probe("cmdline", "/bin/cat", f"/proc/{worker_like.pid}/cmdline"),
            probe("signal", "/bin/kill", "-0", str(worker_like.pid)),
            probe("machine", "/bin/cat", "/proc/loadavg"),
        )
    finally:
        worker_like.kill()
        worker_like.wait()
    seen = outputs(journal)
    assert "hunter2" not in str(journal)
    assert seen["environ"]["status"] != 0 and seen["cmdline"]["status"] != 0
    assert seen["signal"]["status"] != 0
    assert seen["machine"]["status"] == 0 and seen["machine"]["stdout"].strip()


def _process_with(argument: str, timeout: float = 30.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for entry in Path("/proc").iterdir():
            try:
                if entry.name.isdigit() and argument.encode() in (entry / "cmdline").read_bytes():
                    return int(entry.name)
            except OSError:
                continue
        time.sleep(0.1)
    raise AssertionError(f"no process with {argument}")


def test_two_runs_cannot_read_each_other():
    first_done: dict = {}
    marker = "4242.5"  # the sleep of the first run, found by its argument

    def first() -> None:
        spec = ChildSpec(experiment([probe("wait", "/bin/sleep", marker, timeout=60)]),
                         deadline=60, sandbox=True, environment={"RUN_SECRET": "first-run-only"})
        first_done["outcome"] = supervise(spec, Recorder(), lambda: first_done.get("stop"))

    thread = threading.Thread(target=first)
    thread.start()
    try:
        neighbour = _process_with(marker)
        journal = run_sandboxed(probe("peek", "/bin/cat", f"/proc/{neighbour}/environ"))
    finally:
        first_done["stop"] = "abort-now"
        thread.join(30)
    peek = outputs(journal)["peek"]
    assert peek["status"] != 0 and "first-run-only" not in str(journal)
    assert first_done["outcome"].ended_by == "abort"


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (the standard library's name)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"hello")

    def log_message(self, *args):
        pass


def test_a_sandboxed_run_still_reaches_the_network():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        journal = run_sandboxed({"type": "probe", "name": "http", "provider": {
            "type": "http", "url": url, "timeout": 10}})
    finally:
        server.shutdown()
    result = journal["run"][0]
    assert result["status"] == "succeeded", result
    assert result["output"]["status"] == 200 and result["output"]["body"] == "hello"


def test_extra_readable_paths_come_from_the_settings(tmp_path):
    tool = tmp_path / "tool.txt"
    tool.write_text("a tool's data")
    journal = run_sandboxed(probe("tool", "/bin/cat", str(tool)), sandbox_read=(str(tmp_path),))
    assert outputs(journal)["tool"]["stdout"] == "a tool's data"


def test_the_sandbox_setting_is_checked():
    with pytest.raises(ConfigError, match="RUN_SANDBOX"):
        load_settings({"RUN_SANDBOX": "sometimes"})
    with pytest.raises(ConfigError, match="absolute"):
        load_settings({"RUN_SANDBOX_READ": "/opt/tools:tools"})
    assert load_settings({"RUN_SANDBOX": " Off "})["RUN_SANDBOX"] == "off"


def test_the_supervisor_reads_no_link_a_run_leaves_in_place_of_its_journal(tmp_path):
    private = tmp_path / "service-key.pem"
    private.write_text('{"status": "completed", "stolen": "-----BEGIN PRIVATE KEY-----"}')
    # The run replaces its journal with a link to a file only the worker may read.
    swap = probe("swap", "/bin/ln", "-sf", str(private), "../journal.json")
    spec = ChildSpec(experiment([swap]), deadline=60, sandbox=True)
    outcome = supervise(spec, Recorder(), lambda: None)
    assert (tmp_path / "service-key.pem").read_text().startswith('{"status"')  # untouched
    assert outcome.journal is None
