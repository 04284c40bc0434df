"""Retention: journals, run events and activity entries older than their settings go on the
workers' sweep, young ones stay, and each org's audit log says what went."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import select, update

from chaoshub import create_app
from chaoshub.cli import main
from chaoshub.core import db
from chaoshub.core.config import ConfigError, load_settings
from chaoshub.core.db import transaction
from chaoshub.core.models import utcnow
from chaoshub.dashboard import service as dashboard
from chaoshub.dashboard.models import ActivityEntry, AuditEntry
from chaoshub.experiment import retention, runs, worker
from chaoshub.experiment.models import Execution, Run, RunEvent
from tests.conftest import csrf, signed_up_client
from tests.experiment_data import create, make_token, variant
from tests.run_data import runnable

DAYS = {"RETENTION_JOURNAL_DAYS": "30", "RETENTION_RUN_EVENTS_DAYS": "30",
        "RETENTION_ACTIVITY_DAYS": "30"}


@pytest.fixture
def app(settings):
    hub = create_app({**settings, **DAYS})
    retention._last_sweep = None
    retention._unaudited.clear()
    yield hub
    db.dispose(hub)


def _hub_with_old_and_young_rows(app) -> dict:
    alice = signed_up_client(app, "alice")
    experiment = create(alice, document=runnable())
    executions = []
    for outcome in ("passed", "deviated"):
        published = alice.post(f"/api/v1/experiments/{experiment['id']}/executions",
                               json=variant(outcome), headers={"X-CSRF-Token": csrf(alice)})
        assert published.status_code == 201
        executions.append(published.get_json()["id"])
    token = make_token(alice, ["experiments:read", "executions:read", "runs:execute"])
    run_ids = [app.test_client().post(f"/api/v1/experiments/{experiment['id']}/runs", json={},
                                      headers={"Authorization": f"Bearer {token}"}
                                      ).get_json()["id"] for _ in range(2)]
    old = utcnow() - timedelta(days=40)
    with app.app_context():
        for run_id in run_ids:
            runs.record_events(run_id, [{"seq": 1, "type": "run-started"},
                                        {"seq": 2, "type": "run-finished"}])
        with transaction("experiment") as session:
            session.execute(update(Run).values(status="finished"))  # both ended long ago
            session.execute(update(Execution).where(Execution.id == executions[0])
                            .values(created_at=old))
            session.execute(update(RunEvent).where(RunEvent.run_id == run_ids[0])
                            .values(received_at=old))
        with transaction("dashboard") as session:
            entries = session.scalars(select(ActivityEntry.id).order_by(ActivityEntry.id)).all()
            assert len(entries) >= 2
            session.execute(update(ActivityEntry).where(ActivityEntry.id == entries[0])
                            .values(created_at=old))
    return {"alice": alice, "token": token, "experiment": experiment["id"],
            "executions": executions, "runs": run_ids, "activity": entries}


def test_the_sweep_removes_what_is_old_keeps_what_is_young_and_audits_it(app):
    made = _hub_with_old_and_young_rows(app)
    alice, old_execution, young_execution = made["alice"], *made["executions"]
    with app.app_context():
        assert worker.poll(until_idle=True) == 0  # a worker's maintenance sweeps when due
        assert retention.sweep_when_due() is None  # not again before SWEEP_SECONDS

    gone = alice.get(f"/api/v1/executions/{old_execution}/journal")
    assert gone.status_code == 404
    assert "RETENTION_JOURNAL_DAYS" in json.dumps(gone.get_json())
    assert alice.get(f"/api/v1/executions/{young_execution}/journal").status_code == 200
    kept = alice.get(f"/api/v1/experiments/{made['experiment']}/executions").get_json()
    assert {e["id"]: e["outcome"] for e in kept["executions"]} == {
        old_execution: "passed", young_execution: "deviated"}  # the executions stay
    page = alice.get(f"/alice/Personal/experiment/{made['experiment']}/execution/"
                     f"{old_execution}")
    assert page.status_code == 200

    old_run, young_run = (alice.get(f"/api/v1/runs/{r}").get_json() for r in made["runs"])
    assert old_run["events"] == [] and old_run["status"] == "finished"
    assert [e["type"] for e in young_run["events"]] == ["run-started", "run-finished"]
    with app.app_context():
        with transaction("experiment") as session:
            counts = dict(session.execute(select(Run.id, Run.event_count)).all())
        assert counts == {made["runs"][0]: 0, made["runs"][1]: 2}
        with transaction("dashboard") as session:
            activity = session.scalars(select(ActivityEntry.id)).all()
            audited = session.scalars(select(AuditEntry).where(
                AuditEntry.event == dashboard.RETENTION_EVENT)).all()
        assert made["activity"][0] not in activity and set(made["activity"][1:]) <= set(activity)
        assert len(audited) == 1 and audited[0].actor_id == "system"
        assert json.loads(audited[0].details) == {
            "journals": 1, "journal_days": 30, "run_events": 2, "run_event_days": 30,
            "activity": 1, "activity_days": 30}
        assert dashboard.verify_audit_chains() == []  # retention never touches the log

        # Nothing more is old: a sweep removes nothing and audits nothing.
        assert retention.sweep() == {}
        with transaction("dashboard") as session:
            assert session.scalar(select(AuditEntry.id).where(
                AuditEntry.event == dashboard.RETENTION_EVENT, AuditEntry.id != audited[0].id)
            ) is None
    owner_log = alice.get("/api/v1/orgs/alice/audit?event=retention").get_json()
    assert [e["actor"] for e in owner_log["entries"]] == ["system"]


def test_retention_is_off_by_default(settings):
    hub = create_app(settings)
    try:
        assert (hub.config["RETENTION_JOURNAL_DAYS"], hub.config["RETENTION_RUN_EVENTS_DAYS"],
                hub.config["RETENTION_ACTIVITY_DAYS"]) == (0, 0, 0)
        retention._last_sweep = None
        with hub.app_context():
            assert retention.sweep_when_due() is None
    finally:
        db.dispose(hub)


@pytest.mark.parametrize("value, message", [
    ("-1", "RETENTION_ACTIVITY_DAYS must be 0 (keep forever) or more days, got -1"),
    ("a month", "RETENTION_ACTIVITY_DAYS must be a whole number of days"),
])
def test_bad_retention_settings_stop_the_start_with_a_clear_error(value, message, monkeypatch,
                                                                  tmp_path):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings({"RETENTION_ACTIVITY_DAYS": value})
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CHAOSHUB_INSTANCE_PATH", str(tmp_path))
    result = CliRunner().invoke(main, ["db", "current"], env={"RETENTION_ACTIVITY_DAYS": value})
    assert result.exit_code == 1 and result.output.startswith(f"Error: {message}")
    assert load_settings({"RETENTION_ACTIVITY_DAYS": ""})["RETENTION_ACTIVITY_DAYS"] == 0
