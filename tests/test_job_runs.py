"""Runs as Kubernetes Jobs, chosen per workspace: the policy's executor (only where the hub's
RUN_EXECUTOR allows Jobs), and what the worker does with it."""

from __future__ import annotations

from tests.conftest import csrf, signed_up_client

POLICY = "/api/v1/orgs/alice/workspaces/Personal/policy"


def put(client, url: str, body):
    return client.put(url, json=body, headers={"X-CSRF-Token": csrf(client)})


def test_a_workspace_chooses_jobs_only_where_the_hub_allows_them(app):
    alice = signed_up_client(app, "alice")
    assert alice.get(POLICY).get_json()["executor"] == "local"
    refused = put(alice, POLICY, {"executor": "kubernetes"})
    assert refused.status_code == 422
    (problem,) = refused.get_json()["details"]
    assert problem["pointer"] == "/executor" and "RUN_EXECUTOR=kubernetes" in problem["message"]
    assert alice.get(POLICY).get_json()["executor"] == "local"
    assert put(alice, POLICY, {"executor": "docker"}).status_code == 422
    app.config["RUN_EXECUTOR"] = "kubernetes"
    saved = put(alice, POLICY, {"executor": "kubernetes"})
    assert saved.status_code == 200, saved.get_json()
    assert alice.get(POLICY).get_json()["executor"] == "kubernetes"


def test_a_worker_refuses_a_run_of_a_workspace_asking_for_jobs_the_hub_no_longer_runs(app):
    from chaoshub.experiment import runs, worker
    from tests.test_hub_worker import queued, runnable

    alice = signed_up_client(app, "alice")
    app.config["RUN_EXECUTOR"] = "kubernetes"
    assert put(alice, POLICY, {"executor": "kubernetes"}).status_code == 200
    app.config["RUN_EXECUTOR"] = "local"  # the hub's setting changed since
    run_id = queued(app, alice, runnable())
    with app.app_context():
        assert worker.execute(run_id, "test-worker") == "refused"
        row = runs.load_run(run_id)
    assert "Kubernetes Jobs" in row.reason and "RUN_EXECUTOR" in row.reason


def test_what_a_jobs_pod_reports_into_its_run_has_the_secrets_masked(app):
    import json

    from chaoshub.auth import service as auth
    from chaoshub.experiment import hub_runs, runs
    from chaoshub.experiment.masking import MASK
    from tests.conftest import post_json
    from tests.experiment_data import create, make_token
    from tests.test_environment_runs import ENVIRONMENTS, PASSWORD, TOKEN, staging
    from tests.test_hub_worker import runnable

    alice = signed_up_client(app, "alice")
    assert post_json(alice, ENVIRONMENTS, staging()).status_code == 201
    saved = create(alice, document=runnable())
    bearer = {"Authorization": "Bearer " + make_token(alice, [
        "experiments:read", "executions:read", "executions:write", "runs:execute"])}
    started = app.test_client().post(f"/api/v1/experiments/{saved['id']}/runs",
                                     json={"environment": "staging"}, headers=bearer)
    assert started.status_code == 202, started.get_json()
    run_id = started.get_json()["id"]
    with app.app_context():
        row = hub_runs.claim(run_id, "test-worker")
        assert row is not None
        # What the Job's pod reports with: the token made for this run.
        reporter = {"Authorization": "Bearer " + auth.mint_run_token(
            row.created_by, run_id, row.workspace_id, 600)}
    said = f"token={TOKEN} password={PASSWORD}"
    events = app.test_client().post(f"/api/v1/runs/{run_id}/events", headers=reporter, json=[
        {"seq": 1, "type": "activity-completed", "name": "tell", "output": said}])
    assert events.status_code in (200, 201), events.get_json()
    journal = {"status": "completed", "deviated": False, "experiment": runnable(),
               "start": "2025-01-01T00:00:00", "end": "2025-01-01T00:00:01", "duration": 1,
               "steady_states": {"before": None, "after": None, "during": []},
               "run": [{"activity": runnable()["method"][0], "status": "succeeded",
                        "output": said, "start": "2025-01-01T00:00:00",
                        "end": "2025-01-01T00:00:01", "duration": 1}], "rollbacks": []}
    finished = app.test_client().put(f"/api/v1/runs/{run_id}/journal", headers=reporter,
                                     json=journal)
    assert finished.status_code in (200, 201), finished.get_json()
    with app.app_context():
        kept = json.dumps([e.model_dump(mode="json") for e in runs.load_events(run_id)])
        execution_id = runs.load_run(run_id).execution_id
    published = json.dumps(alice.get(f"/api/v1/executions/{execution_id}/journal").get_json())
    for text in (kept, published):
        assert f"token={MASK}" in text
        assert TOKEN not in text and PASSWORD not in text
