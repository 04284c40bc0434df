"""Executions: journals kept whole with their index, the hub's outcome, idempotency, limits."""

from __future__ import annotations

import json

import pytest

from tests.conftest import csrf, post_json, signed_up_client
from tests.experiment_data import create, experiment, journal, make_token, variant

OUTCOMES = ["passed", "deviated", "baseline-not-met", "probe-error", "interrupted", "aborted"]


@pytest.fixture
def alice(app):
    return signed_up_client(app, "alice")


def publish(browser, experiment_id: str, body, **headers):
    return browser.post(f"/api/v1/experiments/{experiment_id}/executions", json=body,
                        headers={"X-CSRF-Token": csrf(browser), **headers})


def test_a_journal_is_kept_whole_with_its_index(app, alice):
    created = create(alice)
    response = publish(alice, created["id"], journal())
    assert response.status_code == 201
    execution = response.get_json()
    assert response.headers["Location"] == f"/api/v1/executions/{execution['id']}"
    assert (execution["status"], execution["deviated"], execution["outcome"]) == \
        ("completed", True, "deviated")
    assert execution["version"] == 1 and execution["node"] == "vm"
    assert execution["published_by_name"] == "alice"
    assert execution["started_at"].startswith("2026-11-23T08:57:40")
    assert execution["duration"] == pytest.approx(0.011234, abs=1e-5)
    phases = [(a["phase"], a["name"], a["type"], a["status"], a["tolerance_met"])
              for a in execution["activities"]]
    assert phases == [
        ("before", "marker-file-exists", "probe", "succeeded", True),
        ("before", "marker-file-test-succeeds", "probe", "succeeded", True),
        ("method", "run-true", "action", "succeeded", None),
        ("method", "read-marker-size", "probe", "succeeded", None),
        ("method", "delete-marker-file", "action", "succeeded", None),
        ("after", "marker-file-exists", "probe", "succeeded", False),
        ("rollbacks", "recreate-marker-file", "action", "succeeded", None),
    ]
    assert alice.get(f"/api/v1/executions/{execution['id']}/journal").get_json() == journal()
    listed = alice.get(f"/api/v1/experiments/{created['id']}/executions").get_json()
    assert [e["id"] for e in listed["executions"]] == [execution["id"]]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=False)
def test_the_outcome_reads_what_the_raw_status_hides(app, alice):
    created = create(alice)
    seen = {}
    for outcome in OUTCOMES:
        response = publish(alice, created["id"], variant(outcome))
        assert response.status_code == 201, response.get_json()
        seen[outcome] = response.get_json()
    assert {k: v["outcome"] for k, v in seen.items()} == {o: o for o in OUTCOMES}
    # chaoslib says `completed` for a baseline that was not met.
    assert seen["baseline-not-met"]["status"] == "completed"
    interrupted = [a for a in seen["interrupted"]["activities"] if a["phase"] == "method"]
    assert interrupted[-1]["status"] is None


def test_the_version_that_ran_is_recorded(alice):
    created = create(alice)
    changed = experiment()
    changed["title"] = "Second version"
    alice.put(f"/api/v1/experiments/{created['id']}", json=changed,
              headers={"X-CSRF-Token": csrf(alice)})
    # The journal's experiment is version 1 (as run by the CLI: with "dry" and our extension).
    old_run = journal()
    old_run["experiment"]["dry"] = None
    old_run["experiment"]["extensions"] = [{"name": "chaoshub", "experiment": created["id"]}]
    assert publish(alice, created["id"], old_run).get_json()["version"] == 1
    unknown = variant("passed")
    unknown["experiment"]["title"] = "edited locally"
    assert publish(alice, created["id"], unknown).get_json()["version"] == 2


def test_publishing_twice_returns_the_first_execution(alice):
    created = create(alice)
    first = publish(alice, created["id"], journal())
    again = publish(alice, created["id"], journal())
    assert again.status_code == 200
    assert again.get_json()["id"] == first.get_json()["id"]
    keyed = publish(alice, created["id"], variant("passed"), **{"Idempotency-Key": "k-1"})
    retried = publish(alice, created["id"], variant("aborted"), **{"Idempotency-Key": "k-1"})
    assert keyed.status_code == 201 and retried.status_code == 200
    assert retried.get_json()["id"] == keyed.get_json()["id"]
    listed = alice.get(f"/api/v1/experiments/{created['id']}/executions").get_json()
    assert len(listed["executions"]) == 2


def test_untrusted_journals_are_refused_never_a_500(app, alice):
    app.config["EXECUTION_MAX_BYTES"] = 20_000
    created = create(alice)
    url = f"/api/v1/experiments/{created['id']}/executions"
    headers = {"X-CSRF-Token": csrf(alice), "Content-Type": "application/json"}
    no_status = journal()
    del no_status["status"]
    refused = publish(alice, created["id"], no_status)
    assert refused.status_code == 422
    assert refused.get_json()["details"][0]["pointer"] == "/status"
    assert publish(alice, created["id"], {"status": "completed"}).status_code == 422
    assert publish(alice, created["id"], {"status": "bogus", "experiment": {}}).status_code == 422
    assert publish(alice, created["id"], [1, 2]).status_code == 422
    assert alice.post(url, data="{oops", headers=headers).status_code == 400
    assert alice.post(url, data='[' * 10_000 + ']' * 10_000, headers=headers).status_code in (
        400, 413)
    huge = journal()
    huge["run"][0]["output"] = {"stdout": "x" * 30_000}
    assert publish(alice, created["id"], huge).status_code == 413
    odd = {"status": "completed", "experiment": {"title": 1}, "deviated": "yes",
           "start": "not a date", "end": 12, "duration": "long", "node": "nde",
           "steady_states": {"before": {"probes": [None, {"activity": "x"}]}, "after": 3,
                             "during": "no"},
           "run": [{"activity": {"name": "a" * 1000, "type": "t" * 50}, "status": 5}],
           "rollbacks": {"not": "a list"}}
    accepted = publish(alice, created["id"], odd)
    assert accepted.status_code == 201, accepted.get_json()
    assert accepted.get_json()["outcome"] == "passed"
    assert accepted.get_json()["node"] == "nde"
    with_nul = journal()
    with_nul["node"] = "n\x00de"  # PostgreSQL keeps no NUL in text: refused at the edge
    assert publish(alice, created["id"], with_nul).status_code == 400


def test_reading_and_publishing_need_their_scopes(app, alice):
    created = create(alice, workspace="Public")
    reader = {"Authorization": f"Bearer {make_token(alice, ['executions:read'])}"}
    writer = {"Authorization": f"Bearer {make_token(alice, ['executions:write'])}"}
    client = app.test_client()
    url = f"/api/v1/experiments/{created['id']}/executions"
    assert client.post(url, json=journal(), headers=reader).status_code == 403
    published = client.post(url, json=journal(), headers=writer)
    assert published.status_code == 201
    assert client.get(url, headers=reader).status_code == 200
    assert client.get(url, headers=writer).status_code == 403
    assert post_json(app.test_client(), url, journal()).status_code == 401
    # Outsiders see runs only as the workspace allows (Public: none by default).
    bob = signed_up_client(app, "bob")
    assert bob.get(f"/api/v1/executions/{published.get_json()['id']}").status_code == 404


def test_outsiders_see_only_what_the_workspace_opens(app, alice):
    created = create(alice, workspace="Public")
    execution_id = publish(alice, created["id"], journal()).get_json()["id"]
    alice.patch("/api/v1/orgs/alice/workspaces/Public", json={"outsider_executions": "status"},
                headers={"X-CSRF-Token": csrf(alice)})
    visitor = app.test_client()
    seen = visitor.get(f"/api/v1/executions/{execution_id}").get_json()
    assert seen["outcome"] == "deviated" and seen["activities"] == [] and seen["node"] == ""
    assert visitor.get(f"/api/v1/executions/{execution_id}/journal").status_code == 404
    listed = visitor.get(f"/api/v1/experiments/{created['id']}/executions").get_json()
    assert listed["executions"][0]["detailed"] is False
    assert json.dumps(listed).count("vm") == 0


def test_executions_page_by_signed_cursor(alice):
    first, second = create(alice)["id"], create(alice)["id"]
    made = []
    for n in range(5):
        body = variant("passed")
        body["node"] = f"node-{n}"  # another node, another journal: none is a repeat
        made.append(publish(alice, first, body).get_json()["id"])
    url = f"/api/v1/experiments/{first}/executions"
    seen, cursor = [], None
    while True:
        page = alice.get(f"{url}?limit=2" + (f"&cursor={cursor}" if cursor else "")).get_json()
        assert len(page["executions"]) <= 2
        seen += [e["id"] for e in page["executions"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(made) and len(seen) == 5
    cursor = alice.get(f"{url}?limit=1").get_json()["next_cursor"]
    assert alice.get(f"/api/v1/experiments/{second}/executions?cursor={cursor}").status_code == 400
    activity = alice.get("/api/v1/activity?limit=1").get_json()["next_cursor"]
    assert alice.get(f"{url}?cursor={activity}").status_code == 400
    assert alice.get(f"{url}?limit=101").status_code == 400
