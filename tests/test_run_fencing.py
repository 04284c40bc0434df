"""A hub run the reaper ended takes nothing more from the worker that lost it: no events, no
journal, no status (tests/test_faults_workers.py does it with real frozen processes)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import create_engine, func, select, text

from chaoshub.core.db import transaction
from chaoshub.core.errors import Conflict
from chaoshub.core.models import utcnow
from chaoshub.experiment import hub_runs, runs, service, worker
from chaoshub.experiment.models import Execution
from tests.conftest import signed_up_client
from tests.experiment_data import journal
from tests.test_hub_worker import queued, runnable


def test_a_reaped_run_refuses_its_lost_workers_events_journal_and_status(app):
    alice = signed_up_client(app, "alice")
    run_id = queued(app, alice, runnable())
    event = {"seq": 1, "type": "run-started", "timestamp": utcnow().isoformat()}
    with app.app_context():
        row = hub_runs.claim(run_id, "lost-worker", lease=30)
        runs.record_events(run_id, [event])
        assert hub_runs.reap(utcnow() + timedelta(seconds=31)) == [run_id]
        before = runs.load_run(run_id)

        with pytest.raises(Conflict, match=r"ended \(interrupted\): it takes no more events"):
            runs.record_events(run_id, [{**event, "seq": 2}])
        assert runs.record_events(run_id, [event]).duplicates == 1  # a resend changes nothing
        with pytest.raises(Conflict, match="without its journal"):
            service.finish_run(worker._reporter(row), run_id, journal())
        with pytest.raises(Conflict, match="without its journal"):
            runs.mark_finished(run_id, "an-execution")
        assert hub_runs.renew(run_id, "lost-worker") is None
        assert not hub_runs.end(run_id, "aborted", "late", "lost-worker")

        after = runs.load_run(run_id)
        with transaction("experiment") as session:
            executions = session.scalar(select(func.count()).select_from(Execution))
    assert (after.status, after.reason, after.event_count, after.execution_id) == (
        before.status, before.reason, 1, None)
    assert executions == 0


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_the_reaper_skips_a_run_a_lost_workers_open_transaction_holds(app, settings):
    """A worker host lost in the middle of a write keeps its row lock until PostgreSQL ends
    its session: the reaper leaves that run for a later round instead of hanging on it."""
    alice = signed_up_client(app, "alice")
    run_id = queued(app, alice, runnable())
    later = utcnow() + timedelta(seconds=31)
    with app.app_context():
        hub_runs.claim(run_id, "lost-worker", lease=30)
    engine = create_engine(settings["EXPERIMENT_DATABASE_URL"])
    try:
        with engine.connect() as held:
            held.execute(text("SELECT id FROM runs WHERE id = :id FOR UPDATE"), {"id": run_id})
            found = {}

            def reap():
                with app.app_context():
                    found["reaped"] = hub_runs.reap(later)

            reaper = threading.Thread(target=reap, daemon=True)
            reaper.start()
            reaper.join(10)
            assert not reaper.is_alive(), "the reaper waited on the held row"
            assert found["reaped"] == []
            held.rollback()  # the session ends: its lock goes
        with app.app_context():
            assert hub_runs.reap(later) == [run_id]
            assert runs.load_run(run_id).status == "interrupted"
    finally:
        engine.dispose()
