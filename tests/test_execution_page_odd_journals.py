"""An execution's page and a run's timeline show a journal or events whatever odd values
chaoslib or a hand-written journal put in its activities: a page, never a server error."""

from __future__ import annotations

import pytest

from chaoshub.experiment import run_timeline
from tests.conftest import csrf, signed_up_client
from tests.experiment_data import create, journal

BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


def _timed_out(entry: dict) -> None:
    entry["status"] = "failed"
    entry["exception"] = ["Traceback (most recent call last):\n",
                          "subprocess.TimeoutExpired: the command took too long\n"]


ODDITIES = {
    # An integer past any float (JSON allows it, Python reads it whole).
    "huge-timeout": lambda e: (_timed_out(e), e["activity"].setdefault("provider", {})
                               .update(timeout=10**400)),
    "timeout-text": lambda e: (_timed_out(e), e["activity"].setdefault("provider", {})
                               .update(timeout="5")),
    "exception-object": lambda e: e.update(status="failed", exception={"type": "Boom"}),
    "activity-not-object": lambda e: e.update(activity="probe"),
    "process-arguments-object": lambda e: e["activity"].update(
        provider={"type": "process", "path": "echo", "arguments": {"a": 1}}),
}


@pytest.mark.parametrize("oddity", sorted(ODDITIES))
def test_an_odd_activity_in_a_journal_still_shows_its_page(app, oddity):
    alice = signed_up_client(app, "alice")
    created = create(alice)
    body = journal()
    ODDITIES[oddity](body["run"][0])
    published = alice.post(f"/api/v1/experiments/{created['id']}/executions", json=body,
                           headers={"X-CSRF-Token": csrf(alice)})
    assert published.status_code == 201, published.get_json()
    page = alice.get(f"/alice/Personal/experiment/{created['id']}/execution/"
                     f"{published.get_json()['id']}", headers=BROWSER)
    assert page.status_code == 200
    assert created["title"] in page.get_data(as_text=True)


def test_a_journal_with_a_duration_too_large_for_a_float_is_kept(app):
    alice = signed_up_client(app, "alice")
    created = create(alice)
    body = journal()
    body["duration"] = body["run"][0]["duration"] = 10**400
    published = alice.post(f"/api/v1/experiments/{created['id']}/executions", json=body,
                           headers={"X-CSRF-Token": csrf(alice)})
    assert published.status_code == 201, published.get_json()
    assert published.get_json()["duration"] is None  # no number worth showing
    page = alice.get(f"/alice/Personal/experiment/{created['id']}/execution/"
                     f"{published.get_json()['id']}", headers=BROWSER)
    assert page.status_code == 200


def test_a_run_event_with_a_duration_too_large_for_a_float_shows_none():
    events = [{"type": "method-started"},
              {"type": "activity-started", "name": "wait", "activity_type": "action"},
              {"type": "activity-completed", "name": "wait", "status": "succeeded",
               "duration": 10**400}]
    (method,) = run_timeline.timeline(events)["sections"]
    assert [(e["name"], e["status"], e["duration"]) for e in method["entries"]] == [
        ("wait", "succeeded", None)]
    finished = run_timeline.timeline([*events[:2], {**events[2], "duration": 1.5}])
    assert finished["sections"][0]["entries"][0]["duration"] == 1.5
