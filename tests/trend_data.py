"""Runs of the past for trends' tests: journals published through the API, then dated back."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select, update

from chaoshub.core.db import transaction
from chaoshub.core.models import utcnow
from chaoshub.experiment.models import Execution, Experiment
from tests.conftest import csrf
from tests.experiment_data import variant


def seed_runs(app, browser, experiment_id: str, runs: list[tuple[str, float]]) -> list[str]:
    """Publish a run of each (outcome, days ago) and date it back; the experiment's last run
    follows. The executions' ids, in the order given."""
    ids = []
    for outcome, days_ago in runs:
        journal = variant(outcome)
        journal["node"] = uuid.uuid4().hex  # each journal its own: none is a repeat
        answer = browser.post(f"/api/v1/experiments/{experiment_id}/executions", json=journal,
                              headers={"X-CSRF-Token": csrf(browser)})
        assert answer.status_code == 201, answer.get_json()
        ids.append(answer.get_json()["id"])
        with app.app_context(), transaction("experiment") as session:
            session.execute(update(Execution).where(Execution.id == ids[-1])
                            .values(created_at=utcnow() - timedelta(days=days_ago)))
    with app.app_context(), transaction("experiment") as session:
        last = session.execute(select(Execution).where(Execution.experiment_id == experiment_id)
                               .order_by(Execution.created_at.desc(), Execution.id.desc())
                               .limit(1)).scalar_one()
        session.execute(update(Experiment).where(Experiment.id == experiment_id).values(
            last_run_at=last.created_at, last_run_outcome=last.outcome,
            last_execution_id=last.id))
    return ids
