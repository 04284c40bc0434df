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
