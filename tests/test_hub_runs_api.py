"""Runs on the hub through the API: started, run by a real worker, listed, aborted, refused."""

from __future__ import annotations

import pytest

from chaoshub.auth import service as auth
from chaoshub.core.errors import Forbidden
from chaoshub.experiment import runs, service, worker
from tests.conftest import csrf, post_json, signed_up_client
from tests.experiment_data import create, make_token
from tests.run_data import runnable

RUNNER = ["experiments:read", "executions:read", "executions:write", "runs:execute"]


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def start(app, token: str, experiment_id: str, body=None):
    return app.test_client().post(f"/api/v1/experiments/{experiment_id}/runs",
                                  json=body if body is not None else {},
                                  headers=bearer(token))


@pytest.fixture
def alice(app):
    return signed_up_client(app, "alice")


@pytest.fixture
def saved(alice):
    return create(alice, document=runnable())


def test_a_run_started_from_the_api_runs_on_a_worker_to_its_execution(app, alice, saved):
    token = make_token(alice, RUNNER)
    started = start(app, token, saved["id"], {"rollback_strategy": "never"})
    assert started.status_code == 202, started.get_json()
    run = started.get_json()
    assert (run["status"], run["origin"], run["version"]) == ("queued", "hub", 1)
    assert started.headers["Location"] == f"/api/v1/runs/{run['id']}"
    assert run["page_url"].endswith(f"/alice/Personal/experiment/{saved['id']}/run/{run['id']}")

    with app.app_context():
        assert worker.poll(until_idle=True) == 1
    done = alice.get(f"/api/v1/runs/{run['id']}").get_json()
    assert (done["status"], done["origin"], done["version"]) == ("finished", "hub", 1)
    assert done["started_at"] and done["execution_id"]
    assert done["events"][0]["type"] == "run-started"
    execution = alice.get(f"/api/v1/executions/{done['execution_id']}").get_json()
    assert execution["outcome"] == "passed"

    listed = alice.get(f"/api/v1/experiments/{saved['id']}/runs").get_json()
    assert [(r["id"], r["origin"]) for r in listed["runs"]] == [(run["id"], "hub")]
    assert listed["next_cursor"] is None
    feed = alice.get("/api/v1/orgs/alice/activity").get_json()
    assert "alice started a run of Run me (version 1)" in [e["summary"] for e in
                                                             feed["entries"]]


def test_a_run_pins_the_version_it_was_asked_for(app, alice, saved):
    changed = runnable("Run me, changed")
    assert alice.put(f"/api/v1/experiments/{saved['id']}", json=changed,
                     headers={"X-CSRF-Token": csrf(alice)}).status_code == 200
    token = make_token(alice, RUNNER)
    run = start(app, token, saved["id"], {"version": 1}).get_json()
    latest = start(app, token, saved["id"]).get_json()
    assert (run["version"], latest["version"]) == (1, 2)
    with app.app_context():
        assert worker.poll(until_idle=True) == 2
    journal = alice.get(f"/api/v1/executions/"
                        f"{alice.get('/api/v1/runs/' + run['id']).get_json()['execution_id']}"
                        "/journal").get_json()
    assert journal["experiment"]["title"] == "Run me"


def test_starting_a_run_needs_the_scope_the_role_and_a_valid_body(app, alice, saved):
    url = f"/api/v1/experiments/{saved['id']}/runs"
    reader = make_token(alice, ["experiments:read", "executions:write"])
    refused = start(app, reader, saved["id"])
    assert refused.status_code == 403 and "runs:execute" in refused.get_json()["message"]
    assert app.test_client().post(url, json={}).status_code == 401

    token = make_token(alice, RUNNER)
    cases = [
        ({"dry": "everything"}, 422, ["/dry"]),
        ({"rollback_strategy": 3}, 422, ["/rollback_strategy"]),
        ({"configuration": {"x": {"nested": 1}}}, 422, None),
        ({"node": "mine"}, 422, ["/node"]),
        ({"version": 0}, 422, ["/version"]),
    ]
    for body, status, pointers in cases:
        answer = start(app, token, saved["id"], body)
        assert answer.status_code == status, (body, answer.get_json())
        assert answer.get_json()["error"] == "validation_failed"
        if pointers:
            assert [p["pointer"] for p in answer.get_json()["details"]] == pointers
    assert start(app, token, saved["id"], {"version": 9}).status_code == 404
    assert start(app, token, "no-such-experiment").status_code == 404
    assert app.test_client().post(url, data="[1]", content_type="application/json",
                                  headers=bearer(token)).status_code == 400
    # Nothing was queued by any of those.
    assert alice.get(url).get_json()["runs"] == []


def test_viewers_and_outsiders_cannot_start_runs(app, alice):
    bob = signed_up_client(app, "bob")
    eve = signed_up_client(app, "eve")
    post_json(alice, "/api/v1/orgs", {"name": "team"})
    post_json(alice, "/api/v1/orgs/team/workspaces", {"name": "ops"})
    assert post_json(alice, "/api/v1/orgs/team/members",
                     {"username": "bob", "role": "viewer"}).status_code == 201
    saved = create(alice, "team", "ops", runnable())
    assert start(app, make_token(bob, RUNNER), saved["id"]).status_code == 403
    assert start(app, make_token(eve, RUNNER), saved["id"]).status_code == 404
    assert alice.get(f"/api/v1/experiments/{saved['id']}/runs").get_json()["runs"] == []


def test_a_queued_run_aborted_ends_at_once_and_a_second_abort_is_a_conflict(app, alice, saved):
    token = make_token(alice, RUNNER)
    run = start(app, token, saved["id"]).get_json()
    aborted = app.test_client().post(f"/api/v1/runs/{run['id']}/abort",
                                     json={"rollbacks": False}, headers=bearer(token))
    assert aborted.status_code == 202
    assert (aborted.get_json()["status"], aborted.get_json()["reason"]) == (
        "aborted", "aborted by alice (before it started)")
    again = app.test_client().post(f"/api/v1/runs/{run['id']}/abort", json={},
                                   headers=bearer(token))
    assert again.status_code == 409
    with app.app_context():
        assert worker.poll(until_idle=True) == 0
        assert runs.load_run(run["id"]).execution_id is None


def test_only_the_claim_made_for_a_hub_run_reports_it(app, alice, saved):
    token = make_token(alice, RUNNER)
    run = start(app, token, saved["id"]).get_json()
    journal = {"status": "completed", "deviated": False, "run": [], "experiment": runnable()}
    # The member who started it, with every reporting scope, still cannot end it by hand.
    put = app.test_client().put(f"/api/v1/runs/{run['id']}/journal", json=journal,
                                headers=bearer(token))
    events = app.test_client().post(f"/api/v1/runs/{run['id']}/events",
                                    json={"seq": 1, "type": "run-started"},
                                    headers=bearer(token))
    assert (put.status_code, events.status_code) == (403, 403)
    assert "worker" in put.get_json()["message"]
    with app.app_context():
        assert runs.load_run(run["id"]).status == "queued"
        # The worker's claim for another run reports nothing here either.
        other = auth.run_claim(runs.load_run(run["id"]).created_by,
                               list(auth.RUN_REPORTING_SCOPES), "another-run")
        with pytest.raises(Forbidden, match="worker alone"):
            service.finish_run(other, run["id"], journal)
        assert worker.poll(until_idle=True) == 1
        assert runs.load_run(run["id"]).status == "finished"
