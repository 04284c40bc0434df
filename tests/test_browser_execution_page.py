"""An execution's page tells failures from successes: what each activity's verdict is and reads
as, the command a process activity ran, and an error as one line with its traceback folded.
The journals are real: the sample's (a probe outside its tolerance after the method) and one
chaostoolkit wrote for a process that timed out and a Python function that raised."""

from __future__ import annotations

import json

import pytest

from chaoshub.experiment import run_timeline
from tests.experiment_data import FIXTURES, experiment, journal
from tests.helpers import running_hub, sign_in_browser, signed_in_session


def failing_journal() -> dict:
    """A deviated run: `slow-sleep` timed out, `read-missing-file-size` raised, and the marker
    it deleted was missing after the method."""
    return json.loads((FIXTURES / "failing-journal.json").read_text())


# What each activity reads as (no browser) ---------------------------------------------------


def test_a_probe_outside_its_tolerance_is_no_success():
    after = journal()["steady_states"]["after"]["probes"]
    before = journal()["steady_states"]["before"]["probes"]
    [missed] = run_timeline.journal_entries(after)
    assert (missed["status"], missed["tolerance_met"]) == ("succeeded", False)  # chaoslib's
    assert (missed["verdict"], missed["verdict_label"]) == ("missed", "tolerance not met")
    met = run_timeline.journal_entries(before)
    assert [(e["verdict"], e["verdict_label"]) for e in met] == [
        ("succeeded", "succeeded"), ("succeeded", "succeeded")]


def test_a_failed_activity_fails_and_an_unfinished_one_says_so():
    runs = failing_journal()["run"]
    entries = run_timeline.journal_entries(runs)
    assert [e["verdict"] for e in entries] == ["failed", "failed", "succeeded"]
    cut = journal()["run"][0]
    del cut["status"]
    [unfinished] = run_timeline.journal_entries([cut])
    assert (unfinished["verdict"], unfinished["verdict_label"]) == ("unknown", "did not finish")
    assert run_timeline.journal_entries("not a list") == []
    assert run_timeline.journal_entries([None])[0]["verdict"] == "unknown"


def test_a_process_activity_shows_the_command_it_ran():
    entries = run_timeline.journal_entries(failing_journal()["run"])
    assert [e["command"] for e in entries] == [
        "sleep 3", "", "rm -f /tmp/chaoshub-demo/failing/marker"]
    spaced = {"activity": {"type": "action", "name": "x", "provider": {
        "type": "process", "path": "echo", "arguments": ["two words", "$HOME"]}}}
    as_string = {"activity": {"type": "action", "name": "y", "provider": {
        "type": "process", "path": "ls", "arguments": "-la /tmp"}}}
    assert [e["command"] for e in run_timeline.journal_entries([spaced, as_string])] == [
        "echo 'two words' '$HOME'", "ls -la /tmp"]


def test_an_error_is_one_line_and_its_traceback_is_kept_apart():
    timeout, raised, fine = run_timeline.journal_entries(failing_journal()["run"])
    assert timeout["error"] == ("Timed out: process activity took too long to complete "
                                "(its timeout is 1 s)")
    assert timeout["traceback"].startswith("Traceback (most recent call last):")
    assert "subprocess.TimeoutExpired" in timeout["traceback"]
    assert raised["error"] == ("FileNotFoundError: [Errno 2] No such file or directory: "
                               "'/tmp/chaoshub-demo/failing/no-such-file'")
    assert "return func(**arguments)" in raised["traceback"]
    assert raised["output"] == ""  # chaoslib's null output of an activity that raised
    assert (fine["error"], fine["traceback"]) == ("", "")
    assert run_timeline.error_lines("boom") == ("boom", "")
    assert run_timeline.error_lines(["  \n"]) == ("", "")
    long = ["Traceback (most recent call last):\n", "x" * 50_000 + "\n", "ValueError: no\n"]
    headline, traceback = run_timeline.error_lines(long)
    assert headline == "ValueError: no"
    assert len(traceback) <= run_timeline.TRACEBACK_SHOWN + 2
    assert traceback.endswith("ValueError: no")


# In Chromium ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """A hub with judy's two experiments, each run once: the sample, and the failing one."""
    with running_hub(tmp_path_factory.mktemp("execution-hub")) as url:
        http = signed_in_session(url, "judy")
        runs = {}
        for key, document, ran in (("sample", experiment(), journal()),
                                   ("failing", failing_journal()["experiment"],
                                    failing_journal())):
            created = http.post(f"{url}/api/v1/orgs/judy/workspaces/Personal/experiments",
                                json=document)
            assert created.status_code == 201, created.text
            answer = http.post(f"{url}/api/v1/experiments/{created.json()['id']}/executions",
                               json=ran)
            assert answer.status_code == 201, answer.text
            runs[key] = (f"{url}/judy/Personal/experiment/{created.json()['id']}"
                         f"/execution/{answer.json()['id']}")
        yield url, runs


def entry(page, name: str, within: str = "timeline"):
    """The timeline entry of the activity `name` in the section `within`."""
    return page.get_by_test_id(within).get_by_test_id("run-entry").filter(
        has=page.get_by_test_id("activity-name").get_by_text(name, exact=True))


def colour(locator, prop: str) -> str:
    return locator.evaluate(f"e => getComputedStyle(e).{prop}")


def theme(page, variable: str) -> str:
    """The colour a hub.css variable (--ok, --danger) names, as the browser computes it."""
    return page.evaluate("""name => {
        const probe = document.createElement("span");
        probe.style.color = `var(${name})`;
        document.body.append(probe);
        const computed = getComputedStyle(probe).color;
        probe.remove();
        return computed;
    }""", variable)


@pytest.mark.e2e
def test_a_probe_outside_its_tolerance_reads_as_not_met(page, hub):
    url, runs = hub
    sign_in_browser(page, url, "judy")
    page.goto(runs["sample"])
    ok, danger = theme(page, "--ok"), theme(page, "--danger")
    assert ok != danger
    missed = entry(page, "marker-file-exists", "steady-after")
    assert missed.get_attribute("data-verdict") == "missed"
    assert missed.get_by_test_id("verdict").inner_text() == "tolerance not met"
    assert missed.get_by_test_id("run-status").count() == 0
    assert "succeeded" not in missed.inner_text()
    assert missed.get_by_test_id("verdict-note").inner_text() == (
        "It ran, but what it returned is outside its tolerance (must be true).")
    assert colour(missed.get_by_test_id("verdict"), "color") == danger
    assert colour(missed, "borderLeftColor") == danger
    # The same probe before the method held: it reads, and looks, like a success.
    held = entry(page, "marker-file-exists", "steady-before")
    assert held.get_by_test_id("run-status").inner_text() == "succeeded"
    assert held.get_by_test_id("verdict").inner_text() == "tolerance met"
    assert colour(held, "borderLeftColor") == ok
    # A process activity shows its arguments.
    assert entry(page, "delete-marker-file").get_by_test_id("command").inner_text() == \
        "rm -f '${marker_path}'"
    assert entry(page, "recreate-marker-file", "rollbacks").get_by_test_id(
        "command").inner_text() == "touch '${marker_path}'"


@pytest.mark.e2e
def test_a_timeout_and_an_exception_read_as_one_line_each(page, hub):
    url, runs = hub
    sign_in_browser(page, url, "judy")
    page.goto(runs["failing"])
    danger = theme(page, "--danger")
    slow = entry(page, "slow-sleep")
    assert slow.get_by_test_id("run-status").inner_text() == "failed"
    assert colour(slow.get_by_test_id("run-status"), "color") == danger
    assert colour(slow, "borderLeftColor") == danger
    assert slow.get_by_test_id("command").inner_text() == "sleep 3"
    assert slow.get_by_test_id("error").inner_text() == (
        "Timed out: process activity took too long to complete (its timeout is 1 s)")
    # The traceback is there, folded until asked for.
    traceback = slow.get_by_test_id("traceback").locator("pre")
    assert not traceback.is_visible()
    slow.get_by_text("Traceback", exact=True).click()
    assert traceback.is_visible()
    assert "subprocess.TimeoutExpired" in traceback.inner_text()
    assert slow.get_by_test_id("output").count() == 0  # no "null"

    raised = entry(page, "read-missing-file-size")
    assert raised.get_by_test_id("run-status").inner_text() == "failed"
    assert raised.get_by_test_id("error").inner_text() == (
        "FileNotFoundError: [Errno 2] No such file or directory: "
        "'/tmp/chaoshub-demo/failing/no-such-file'")
    assert not raised.get_by_test_id("traceback").locator("pre").is_visible()
    assert raised.get_by_test_id("arguments").inner_text() == (
        '{"filename": "/tmp/chaoshub-demo/failing/no-such-file"}')

    fine = entry(page, "delete-marker-file")
    assert fine.get_by_test_id("run-status").inner_text() == "succeeded"
    assert fine.get_by_test_id("error").count() == 0
    missed = entry(page, "marker-file-exists", "steady-after")
    assert missed.get_by_test_id("verdict").inner_text() == "tolerance not met"
