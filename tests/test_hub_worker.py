"""The worker: a queued hub run taken, run as a real `chaos run` child, ended once."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from chaoshub.core.models import utcnow
from chaoshub.experiment import hub_runs, runs, worker
from tests import run_data
from tests.conftest import signed_up_client
from tests.experiment_data import create


def process(kind: str, name: str, *arguments: str, path: str = "/bin/true") -> dict:
    return run_data.process(kind, name, path, *arguments)


def runnable(method: list[dict] | None = None) -> dict:
    return run_data.runnable("A short run", method)


def queued(app, alice, document: dict, **options) -> str:
    saved = create(alice, document=document)
    user = _alice(app, alice)
    with app.app_context():
        return hub_runs.queue_run(saved["id"], saved["workspace_id"], 1, options,
                                  user.sub, user.name)


def _alice(app, alice):
    me = alice.get("/api/v1/me").get_json()

    class User:
        sub, name = me["id"], me.get("display_name") or me["username"]

    return User


def test_a_queued_run_runs_to_its_execution(app):
    alice = signed_up_client(app, "alice")
    run_id = queued(app, alice, runnable())
    with app.app_context():
        assert worker.execute(run_id, "test-worker") == "finished"
        assert worker.execute(run_id, "test-worker") == ""  # taken once only
        row = runs.load_run(run_id)
        events = runs.load_events(run_id)
    assert (row.status, row.origin, row.worker, row.version) == (
        "finished", "hub", "test-worker", 1)
    assert row.started_at and row.finished_at and row.lease_until is None
    assert events[0].type == "run-started" and events[-1].type == "run-finished"
    execution = alice.get(f"/api/v1/executions/{row.execution_id}").get_json()
    assert execution["outcome"] == "passed"
    assert (execution["published_by_name"], execution["version"]) == ("alice", 1)


def test_an_abort_ends_the_run_aborted_with_its_rollbacks_played(app):
    alice = signed_up_client(app, "alice")
    run_id = queued(app, alice, runnable([process("action", "wait", "30", path="/bin/sleep")]))
    result = {}
    with app.app_context():
        def abort_when_running():
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                with app.app_context():
                    if any(e.type == "activity-started" and e.data.get("name") == "wait"
                           for e in runs.load_events(run_id)):
                        hub_runs.request_abort(run_id, rollbacks=True)
                        return
                time.sleep(0.1)

        aborter = threading.Thread(target=abort_when_running)
        aborter.start()
        started = time.monotonic()
        result["status"] = worker.execute(run_id, "test-worker")
        aborter.join()
        row = runs.load_run(run_id)
    assert result["status"] == "aborted" and time.monotonic() - started < 15
    assert (row.status, row.reason) == ("aborted", "aborted on request")
    journal = alice.get(f"/api/v1/executions/{row.execution_id}/journal").get_json()
    assert journal["status"] == "interrupted"
    assert [r["activity"]["name"] for r in journal["rollbacks"]] == ["restore"]


def test_a_queued_run_aborted_before_it_starts_never_runs(app):
    alice = signed_up_client(app, "alice")
    run_id = queued(app, alice, runnable())
    with app.app_context():
        assert hub_runs.request_abort(run_id, rollbacks=False) == "aborted"
        assert worker.execute(run_id, "test-worker") == ""
        assert runs.load_run(run_id).execution_id is None


def test_the_reaper_interrupts_a_run_whose_lease_ran_out(app):
    alice = signed_up_client(app, "alice")
    run_id = queued(app, alice, runnable())
    with app.app_context():
        assert hub_runs.claim(run_id, "lost-worker", lease=30) is not None
        assert hub_runs.reap() == []  # its lease still holds
        assert hub_runs.reap(utcnow() + timedelta(seconds=31)) == [run_id]
        row = runs.load_run(run_id)
        assert (row.status, row.reason) == (
            "interrupted", "its worker was lost before the journal arrived")
        # The lost worker, if it comes back, owns the run no more.
        assert hub_runs.renew(run_id, "lost-worker") is None
        assert not hub_runs.end(run_id, "finished", worker="lost-worker")


def test_a_run_past_its_maximum_duration_is_stopped(app):
    alice = signed_up_client(app, "alice")
    run_id = queued(app, alice, runnable([process("action", "wait", "30", path="/bin/sleep")]))
    app.config.update(RUN_MAX_SECONDS=2, RUN_GRACE_SECONDS=5)
    with app.app_context():
        started = time.monotonic()
        assert worker.execute(run_id, "test-worker") == "aborted"
        row = runs.load_run(run_id)
    assert time.monotonic() - started < 15
    assert row.reason == "it ran past its maximum duration"
    journal = alice.get(f"/api/v1/executions/{row.execution_id}/journal").get_json()
    assert journal["status"] == "interrupted"
