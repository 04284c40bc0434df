"""`chaoshub hub-run` against a stand-in hub (a local HTTP server): arguments and exit codes."""

from __future__ import annotations

import json
import os
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest
import yaml
from click.testing import CliRunner

from chaoshub_client import hub_run
from chaoshub_client.cli import main

EXPERIMENT = "0b6f1f56-1d2c-4bb8-9d4e-3f1f7a4bd2a1"
JUNIT = b'<?xml version="1.0"?><testsuites><testsuite failures="0"/></testsuites>'


class StandIn:
    """What the stand-in hub answers and what it was asked."""

    def __init__(self) -> None:
        self.experiments = [{"id": EXPERIMENT, "title": "Cache latency"},
                            {"id": "other", "title": "Cache latency, longer"}]
        self.final = {"status": "finished", "reason": "",
                      "execution": {"id": "ex1", "status": "completed", "outcome": "passed",
                                    "deviated": False, "page_url": "http://hub/ex1"}}
        self.activities = [{"name": "alive", "status": "succeeded"}]
        self.polls_to_end = 1  # polls answered "running" before the end
        self.asked: list[tuple[str, str, dict, dict | None]] = []
        self.headers: list[dict] = []
        self.abort_answer = (200, self.run("aborting", []))
        self.on_poll = lambda: None

    def answer(self, method: str, path: str, query: dict, body) -> tuple[int, object]:
        self.asked.append((method, path, query, body))
        if method == "GET" and path == "/api/v1/orgs/alice/workspaces/W/experiments":
            return 200, {"experiments": [e for e in self.experiments
                                         if e["title"].startswith(query["search"][0])],
                         "next_cursor": None}
        if method == "GET" and path.startswith("/api/v1/orgs/"):
            return 404, {"error": "not_found", "message": "no such workspace"}
        if method == "GET" and path == f"/api/v1/experiments/{EXPERIMENT}":
            return 200, self.experiments[0]
        if method == "POST" and path.endswith("/runs"):
            return 202, self.run("queued", [])
        if method == "POST" and path == "/api/v1/runs/r1/abort":
            return self.abort_answer
        if method == "GET" and path == "/api/v1/runs/r1":
            self.on_poll()
            if self.polls_to_end > 0:
                self.polls_to_end -= 1
                return 202, self.run("running", [
                    {"seq": 1, "type": "run-started"},
                    {"seq": 2, "type": "activity-completed", "name": "alive",
                     "status": "succeeded"}])
            return 200, {**self.run("", [{"seq": 3, "type": "run-finished"}]),
                         **self.final, "ended": True}
        if path == "/api/v1/executions/ex1":
            return 200, {"id": "ex1", "activities": self.activities}
        if path == "/api/v1/executions/ex1/junit":
            return 200, JUNIT
        return 404, {"error": "not_found", "message": "no such thing"}

    @staticmethod
    def run(status: str, events: list) -> dict:
        return {"id": "r1", "status": status, "reason": "", "ended": False, "events": events,
                "execution": None, "page_url": "http://hub/run/r1"}


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """The stand-in hub on a free port, and settings that name it."""
    stand_in = StandIn()

    class Handler(BaseHTTPRequestHandler):
        def handle_one(self, method: str) -> None:
            parsed = urlparse(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            stand_in.headers.append(dict(self.headers))
            status, answer = stand_in.answer(method, parsed.path, parse_qs(parsed.query), body)
            data = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):  # noqa: N802 (http.server's name)
            self.handle_one("GET")

        def do_POST(self):  # noqa: N802
            self.handle_one("POST")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings = tmp_path / "settings.yaml"
    settings.write_text(yaml.safe_dump({"vendor": {"chaoshub": {
        "hub_url": f"http://127.0.0.1:{server.server_port}", "token": "chub_secret"}}}))
    for name in ("CHAOSHUB_URL", "CHAOSHUB_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(hub_run, "SETTLE_PAUSE", 0.01)
    stand_in.settings = settings
    yield stand_in
    server.shutdown()
    server.server_close()


def run(hub, *args: str):
    return CliRunner().invoke(main, ["hub-run", *args, "--settings", str(hub.settings)])


def test_a_passing_run_exits_0_and_writes_its_junit(hub, tmp_path):
    out = tmp_path / "chaos.xml"
    done = run(hub, "alice/W/Cache latency", "--wait", "--junit", str(out), "--var", "n=3",
               "--var", "name=eu-west", "--var", "on=true", "--environment", "staging",
               "--rollback-strategy", "always")
    assert done.exit_code == 0, done.output
    assert out.read_bytes() == JUNIT
    assert "run r1: running" in done.output and "activity-completed alive -> succeeded" \
        in done.output and "the run passed" in done.output
    started = next(a for a in hub.asked if a[0] == "POST")
    assert started[1] == f"/api/v1/experiments/{EXPERIMENT}/runs"
    assert started[2] == {"wait": ["20"]}
    assert started[3] == {"environment": "staging", "rollback_strategy": "always",
                          "configuration": {"n": 3, "name": "eu-west", "on": True}}
    polls = [a for a in hub.asked if a[1] == "/api/v1/runs/r1"]
    assert [p[2] for p in polls] == [{"wait": ["20"]}, {"wait": ["20"]}]
    assert {h["Authorization"] for h in hub.headers} == {"Bearer chub_secret"}


@pytest.mark.parametrize(("outcome", "status"), [
    ("deviated", "completed"), ("baseline-not-met", "completed"), ("probe-error", "failed")])
def test_a_run_that_deviated_or_failed_exits_1_and_still_writes_its_junit(hub, tmp_path,
                                                                          outcome, status):
    hub.final["execution"].update(outcome=outcome, status=status, deviated=True)
    out = tmp_path / "chaos.xml"
    done = run(hub, "alice/W/Cache latency", "--wait", "--junit", str(out))
    assert done.exit_code == 1, done.output
    assert out.read_bytes() == JUNIT


def test_a_failed_activity_exits_1_though_the_steady_state_held(hub):
    hub.activities = [{"name": "alive", "status": "succeeded"},
                      {"name": "restart", "status": "failed"}]
    done = run(hub, "alice/W/Cache latency", "--wait")
    assert done.exit_code == 1 and "the run failed: restart" in done.output


@pytest.mark.parametrize("status", ["refused", "aborted", "interrupted"])
def test_a_run_that_could_not_run_exits_2(hub, tmp_path, status):
    hub.final = {"status": status, "reason": "the org's kill switch is engaged",
                 "execution": None}
    out = tmp_path / "chaos.xml"
    done = run(hub, "alice/W/Cache latency", "--wait", "--junit", str(out))
    assert done.exit_code == 2, done.output
    assert f"the run ended {status}: the org's kill switch is engaged" in done.output
    assert not out.exists()


def test_an_experiment_named_by_id_and_no_wait_starts_and_exits_0(hub):
    done = run(hub, f"alice/W/{EXPERIMENT}")
    assert done.exit_code == 0, done.output
    assert "started a run of 'Cache latency': http://hub/run/r1" in done.output
    assert [a[:2] for a in hub.asked] == [("GET", f"/api/v1/experiments/{EXPERIMENT}"),
                                          ("POST", f"/api/v1/experiments/{EXPERIMENT}/runs")]


def test_a_title_that_fits_several_experiments_lists_them_and_exits_2(hub):
    hub.experiments.append({"id": "twin", "title": "Cache latency"})
    done = run(hub, "alice/W/Cache latency", "--wait")
    assert done.exit_code == 2
    assert "2 experiments of alice/W are titled 'Cache latency'" in done.output
    assert EXPERIMENT in done.output and "twin" in done.output
    assert not [a for a in hub.asked if a[0] == "POST"]


@pytest.mark.parametrize(("target", "says"), [
    ("alice/W/No such", "has no experiment titled or numbered 'No such'"),
    ("alice/Nope/Cache latency", "no such workspace")])
def test_an_experiment_not_found_exits_2(hub, target, says):
    done = run(hub, target, "--wait")
    assert done.exit_code == 2 and says in done.output


def test_a_run_still_going_at_the_timeout_is_aborted_and_exits_2(hub):
    hub.polls_to_end = 1000
    done = run(hub, "alice/W/Cache latency", "--wait", "--timeout", "1")
    assert done.exit_code == 2
    assert ("had not ended within --timeout; it was aborted, its rollbacks played: "
            "http://hub/run/r1") in done.output
    assert hub.asked[-1] == ("POST", "/api/v1/runs/r1/abort", {}, {"rollbacks": True})


def test_with_keep_running_the_run_goes_on_after_the_timeout(hub):
    hub.polls_to_end = 1000
    done = run(hub, "alice/W/Cache latency", "--wait", "--timeout", "1", "--keep-running")
    assert done.exit_code == 2
    assert "had not ended within --timeout; it goes on at http://hub/run/r1" in done.output
    assert not any(path.endswith("/abort") for _, path, _, _ in hub.asked)


def test_a_run_that_ended_as_the_timeout_passed_is_said_so(hub):
    hub.polls_to_end = 1000
    hub.abort_answer = (409, {"error": "conflict", "message": "the run has ended"})
    done = run(hub, "alice/W/Cache latency", "--wait", "--timeout", "1")
    assert done.exit_code == 2
    assert "it ended meanwhile: http://hub/run/r1" in done.output


def test_a_cancelled_ci_job_aborts_its_run(hub):
    hub.polls_to_end = 1000
    hub.on_poll = lambda: os.kill(os.getpid(), signal.SIGTERM)  # the CI job is cancelled
    done = run(hub, "alice/W/Cache latency", "--wait")
    assert done.exit_code == 2
    assert "stopped; it was aborted, its rollbacks played: http://hub/run/r1" in done.output
    assert hub.asked[-1][:2] == ("POST", "/api/v1/runs/r1/abort")
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # put back


@pytest.mark.parametrize("args", [
    ["alice/W"], ["alice//x"], ["alice/W/x", "--junit", "out.xml"],
    ["alice/W/x", "--timeout", "5"], ["alice/W/x", "--var", "novalue"],
    ["alice/W/x", "--timeout", "0", "--wait"], ["alice/W/x", "--dry", "everything"]])
def test_bad_arguments_exit_2_and_ask_nothing(hub, args):
    done = run(hub, *args)
    assert done.exit_code == 2, done.output
    assert hub.asked == []


def test_an_unreachable_hub_or_no_login_exits_2(hub, tmp_path, monkeypatch):
    missing = CliRunner().invoke(main, ["hub-run", "alice/W/x", "--settings",
                                        str(tmp_path / "none.yaml")])
    assert missing.exit_code == 2 and "run `chaoshub login` first" in missing.output
    monkeypatch.setenv("CHAOSHUB_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("CHAOSHUB_TOKEN", "chub_other")
    down = run(hub, "alice/W/Cache latency", "--wait")
    assert down.exit_code == 2 and "cannot reach http://127.0.0.1:9" in down.output
    assert "chub_other" not in down.output


def test_a_settings_file_that_is_not_yaml_never_shows_its_token(tmp_path, monkeypatch):
    monkeypatch.delenv("CHAOSHUB_URL", raising=False)
    monkeypatch.delenv("CHAOSHUB_TOKEN", raising=False)
    settings = tmp_path / "settings.yaml"
    # A stray colon in the token's line: PyYAML's own message would quote that line.
    settings.write_text("vendor:\n  chaoshub:\n    hub_url: http://hub\n"
                        "    token: chub_secretvalue: x\n", encoding="utf-8")
    done = CliRunner().invoke(main, ["hub-run", "alice/W/x", "--settings", str(settings)])
    assert done.exit_code == 2, done.output
    assert "not valid YAML: mapping values are not allowed here at line 4" in done.output
    assert "chub_secretvalue" not in done.output
    login = CliRunner().invoke(main, ["login", "--url", "http://127.0.0.1:9",
                                      "--settings", str(settings)], input="chub_x\n")
    assert "at line 4" in login.output and "chub_secretvalue" not in login.output


def test_a_page_that_is_not_the_hubs_or_a_junit_not_written_exits_2_not_1(hub, tmp_path,
                                                                            monkeypatch):
    # A proxy's page where the run's JSON should be: nothing says the run failed.
    answer = hub.answer

    def proxy_page(method, path, query, body):
        if path == "/api/v1/runs/r1":
            hub.asked.append((method, path, query, body))
            return 200, b"<html>gateway</html>"
        return answer(method, path, query, body)

    monkeypatch.setattr(hub, "answer", proxy_page)
    done = run(hub, "alice/W/Cache latency", "--wait")
    assert done.exit_code == 2, done.output
    assert "following run r1: the hub did not answer with JSON (200)" in done.output
    monkeypatch.setattr(hub, "answer", answer)
    unwritable = run(hub, "alice/W/Cache latency", "--wait", "--junit",
                     str(tmp_path / "no-such-folder" / "chaos.xml"))
    assert unwritable.exit_code == 2, unwritable.output
    assert "its JUnit XML could not be written" in unwritable.output


def test_a_token_with_a_line_end_is_trimmed_and_never_printed(hub, monkeypatch):
    monkeypatch.setenv("CHAOSHUB_URL", yaml.safe_load(hub.settings.read_text())["vendor"][
        "chaoshub"]["hub_url"])
    monkeypatch.setenv("CHAOSHUB_TOKEN", "chub_fromfile\n")
    done = run(hub, "alice/W/Cache latency", "--wait")
    assert done.exit_code == 0, done.output
    assert {h["Authorization"] for h in hub.headers} == {"Bearer chub_fromfile"}
    # One that no trimming mends: requests refuses the header and quotes it in its error.
    monkeypatch.setenv("CHAOSHUB_TOKEN", "chub_first\nhalf")
    refused = run(hub, "alice/W/Cache latency", "--wait")
    assert refused.exit_code == 2, refused.output
    assert "cannot reach" in refused.output and "chub_first" not in refused.output
