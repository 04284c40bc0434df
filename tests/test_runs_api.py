"""Runs reported by the Chaos Toolkit control: opened, fed events, closed by their journal."""

from __future__ import annotations

import json

import pytest

from tests.conftest import post_json, signed_up_client
from tests.experiment_data import create, experiment, journal, make_token, variant

FULL = ["experiments:read", "experiments:write", "executions:read", "executions:write"]


@pytest.fixture
def alice(app):
    return signed_up_client(app, "alice")


@pytest.fixture
def token(alice):
    return make_token(alice, FULL)


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def open_run(app, token: str, org="alice", workspace="Personal", document=None, **extra):
    body = {"org": org, "workspace": workspace, "experiment": document or as_run(), **extra}
    return app.test_client().post("/api/v1/runs", json=body, headers=bearer(token))


def as_run(document=None) -> dict:
    """The experiment as the control sends it: as chaoslib holds it during the run."""
    return {**(document or experiment()), "dry": None}


def send(app, token: str, run_id: str, events):
    return app.test_client().post(f"/api/v1/runs/{run_id}/events", json=events,
                                  headers=bearer(token))


def put_journal(app, token: str, run_id: str, body):
    return app.test_client().put(f"/api/v1/runs/{run_id}/journal", json=body,
                                 headers=bearer(token))


def lifecycle() -> list[dict]:
    """The events a deviating run of the sample experiment sends, as the control numbers them."""
    kinds = [
        {"type": "run-started", "title": experiment()["title"]},
        {"type": "hypothesis-started", "phase": "before"},
        {"type": "activity-started", "name": "marker-file-exists", "activity_type": "probe"},
        {"type": "activity-completed", "name": "marker-file-exists", "activity_type": "probe",
         "status": "succeeded", "duration": 0.001, "output": True},
        {"type": "hypothesis-completed", "phase": "before", "met": True,
         "probes": [{"name": "marker-file-exists", "tolerance_met": True, "output": True}]},
        {"type": "method-started"},
        {"type": "method-completed"},
        {"type": "hypothesis-started", "phase": "after"},
        {"type": "hypothesis-completed", "phase": "after", "met": False, "probes": []},
        {"type": "rollbacks-started"},
        {"type": "rollbacks-completed"},
        {"type": "run-finished", "status": "completed", "deviated": True},
    ]
    return [{"seq": n, "timestamp": f"2026-11-23T08:57:40.{n:06d}+00:00", **kind}
            for n, kind in enumerate(kinds, start=1)]


def test_a_run_from_its_start_to_its_execution(app, alice, token):
    opened = open_run(app, token)
    assert opened.status_code == 201, opened.get_json()
    body = opened.get_json()
    assert set(body) == {"id", "experiment_id", "execution_url"}
    assert opened.headers["Location"] == f"/api/v1/runs/{body['id']}"
    assert body["execution_url"] == f"http://localhost/api/v1/runs/{body['id']}"
    stored = alice.get(f"/api/v1/experiments/{body['experiment_id']}").get_json()
    assert stored["workspace_id"] and stored["experiment"] == experiment()  # "dry" is not kept

    client = app.test_client()
    url = f"/api/v1/runs/{body['id']}"
    events = lifecycle()
    assert send(app, token, body["id"], events[0]).get_json() == {
        "accepted": 1, "duplicates": 0, "last_seq": 1}
    assert send(app, token, body["id"], events[1:6]).get_json()["accepted"] == 5
    assert client.get(url + "/state", headers=bearer(token)).get_json() == {"desired": "run"}
    running = client.get(url, headers=bearer(token)).get_json()
    assert (running["status"], running["execution_id"], running["execution_url"]) == (
        "running", None, None)
    assert [e["seq"] for e in running["events"]] == [1, 2, 3, 4, 5, 6]
    assert running["events"][3] == {
        "seq": 4, "type": "activity-completed", "timestamp": "2026-11-23T08:57:40.000004+00:00",
        "name": "marker-file-exists", "activity_type": "probe", "status": "succeeded",
        "duration": 0.001, "output": True, "request_id": running["events"][1]["request_id"]}
    send(app, token, body["id"], events[6:])

    finished = put_journal(app, token, body["id"], journal())
    assert finished.status_code == 201, finished.get_json()
    done = finished.get_json()
    execution_id = done["execution"]["id"]
    assert finished.headers["Location"] == f"/api/v1/executions/{execution_id}"
    assert (done["status"], done["execution_id"]) == ("finished", execution_id)
    assert done["execution"]["outcome"] == "deviated"
    read = client.get(url, headers=bearer(token)).get_json()
    assert read["status"] == "finished" and read["finished_at"]
    assert read["execution_url"] == (f"http://localhost/alice/Personal/experiment/"
                                     f"{body['experiment_id']}/execution/{execution_id}")
    assert [e["type"] for e in read["events"]] == [e["type"] for e in events]
    assert alice.get(f"/api/v1/executions/{execution_id}/journal").get_json() == journal()

    # The journal again (a retry after a lost answer), even re-serialised: the same execution.
    again = put_journal(app, token, body["id"], {**journal(), "node": "elsewhere"})
    assert again.status_code == 200
    assert again.get_json()["execution_id"] == execution_id
    listed = alice.get(f"/api/v1/experiments/{body['experiment_id']}/executions").get_json()
    assert [e["id"] for e in listed["executions"]] == [execution_id]

    # Running the same file again reports to the same experiment; a changed one to a new
    # version of the experiment its extension names, as the legacy CLI API does.
    assert open_run(app, token).get_json()["experiment_id"] == body["experiment_id"]
    changed = as_run()
    changed["title"] = "Changed on a laptop"
    changed["extensions"] = [{"name": "chaoshub", "experiment": body["experiment_id"]}]
    assert open_run(app, token, document=changed).get_json()["experiment_id"] == \
        body["experiment_id"]
    versions = alice.get(f"/api/v1/experiments/{body['experiment_id']}/versions").get_json()
    assert [v["number"] for v in versions["versions"]] == [2, 1]
    other = as_run()
    other["title"] = "Another experiment"
    assert open_run(app, token, document=other).get_json()["experiment_id"] != \
        body["experiment_id"]


def test_events_are_kept_once_per_seq_and_outputs_are_capped(app, token):
    run_id = open_run(app, token).get_json()["id"]
    events = lifecycle()
    assert send(app, token, run_id, events[:3]).get_json()["accepted"] == 3
    resent = send(app, token, run_id, events[1:5])
    assert resent.status_code == 200
    assert resent.get_json() == {"accepted": 2, "duplicates": 2, "last_seq": 5}
    big = {"seq": 6, "type": "activity-completed", "name": "p", "status": "succeeded",
           "output": {"stdout": "x" * 5000}, "error": "e" * 10_000,
           "probes": [{"name": "q", "output": "y" * 5000}]}
    assert send(app, token, run_id, big).status_code == 200
    # A gap is fine (an event lost on the way); the list reads in seq order.
    assert send(app, token, run_id, {"seq": 9, "type": "method-started"}).status_code == 200
    assert send(app, token, run_id, {"seq": 8, "type": "method-started"}).status_code == 200
    run = app.test_client().get(f"/api/v1/runs/{run_id}", headers=bearer(token)).get_json()
    assert [e["seq"] for e in run["events"]] == [1, 2, 3, 4, 5, 6, 8, 9]
    assert run["event_count"] == 8 and run["last_seq"] == 9
    capped = run["events"][5]
    assert "output" not in capped and capped["output_truncated"] is True
    assert capped["output_size"] > 4096 and len(capped["error"]) == 4096
    assert capped["probes"][0]["output_truncated"] is True
    assert run["events"][0]["title"] == experiment()["title"]

    assert put_journal(app, token, run_id, journal()).status_code == 201
    # A finished run takes its old events again (a late retry) but no new ones.
    assert send(app, token, run_id, events[:2]).get_json()["accepted"] == 0
    late = send(app, token, run_id, {"seq": 20, "type": "run-finished"})
    assert late.status_code == 409 and late.get_json()["error"] == "conflict"


@pytest.mark.parametrize("backend", ["sqlite"], indirect=False)
def test_bad_input_is_refused_never_a_500(app, token):
    run_id = open_run(app, token).get_json()["id"]
    client = app.test_client()
    headers = {**bearer(token), "Content-Type": "application/json"}

    def status(method, url, body=None, raw=None):
        if raw is not None:
            return client.open(url, method=method, data=raw, headers=headers).status_code
        return client.open(url, method=method, json=body, headers=bearer(token)).status_code

    events = f"/api/v1/runs/{run_id}/events"
    assert status("POST", events, raw="{nope") == 400
    assert status("POST", events, raw="") == 400
    for bad in ([], [1], "event", 3, {"type": "run-started"}, {"seq": 0, "type": "run-started"},
                {"seq": True, "type": "run-started"}, {"seq": "1", "type": "run-started"},
                {"seq": 2**40, "type": "run-started"}, {"seq": 1, "type": "party"},
                {"seq": 1, "type": None}, {"seq": 1, "type": "run-started", "timestamp": "soon"},
                [{"seq": 2, "type": "run-started"}, {"seq": 1, "type": "run-finished"}],
                [{"seq": 1, "type": "run-started"}, {"seq": 1, "type": "run-started"}],
                [{"seq": n, "type": "method-started"} for n in range(1, 502)]):
        answer = client.post(events, json=bad, headers=bearer(token))
        assert answer.status_code == 422, (bad, answer.get_json())
    problem = client.post(events, json=[{"seq": 1, "type": "run-started"}, {"seq": "x"}],
                          headers=bearer(token)).get_json()
    assert [d["pointer"] for d in problem["details"]] == ["/1/seq", "/1/type"]
    nested = {"seq": 1, "type": "run-started", "output": [[[[["deep"]]]]], "x": {"y": None}}
    assert status("POST", events, nested) == 200

    assert status("POST", "/api/v1/runs", raw="[1, 2]") == 400
    assert status("POST", "/api/v1/runs", {"workspace": "Personal",
                                           "experiment": experiment()}) == 422
    assert status("POST", "/api/v1/runs", {"org": "alice", "workspace": 7,
                                           "experiment": experiment()}) == 422
    assert status("POST", "/api/v1/runs", {"org": "alice", "workspace": "Personal",
                                           "experiment": "title: x"}) == 422
    assert status("POST", "/api/v1/runs", {"org": "alice", "workspace": "Personal",
                                           "experiment": experiment(), "experiment_id": 5}) == 422
    assert status("POST", "/api/v1/runs", {"org": "alice", "workspace": "Personal",
                                           "experiment": {"title": "no method"}}) == 422
    assert status("POST", "/api/v1/runs", {"org": "nobody", "workspace": "Personal",
                                           "experiment": experiment()}) == 404
    assert status("POST", "/api/v1/runs", {"org": "alice", "workspace": "Personal",
                                           "experiment": experiment(),
                                           "experiment_id": "no-such-id"}) == 404

    journal_url = f"/api/v1/runs/{run_id}/journal"
    assert status("PUT", journal_url, raw="{oops") == 400
    assert status("PUT", journal_url, {"experiment": {}}) == 422
    assert status("PUT", journal_url, [1, 2]) == 422
    assert status("PUT", journal_url, {"status": "bogus", "experiment": {}}) == 422
    for unknown in ("/api/v1/runs/nope", "/api/v1/runs/nope/state", "/api/v1/runs/" + "x" * 80):
        assert status("GET", unknown) == 404
    assert status("POST", "/api/v1/runs/nope/events", {"seq": 1, "type": "run-started"}) == 404
    assert status("PUT", "/api/v1/runs/nope/journal", journal()) == 404


def test_each_call_needs_its_scope(app, alice, token):
    created = create(alice)
    reader = make_token(alice, ["experiments:read", "executions:read"])
    runner = make_token(alice, ["executions:write"])
    assert open_run(app, reader).status_code == 403
    # Without experiments:write a token may run what the workspace has, not publish new ones.
    changed = as_run()
    changed["title"] = "Edited on a laptop"
    assert open_run(app, runner, document=changed).status_code == 403
    same = open_run(app, runner)
    assert same.status_code == 201 and same.get_json()["experiment_id"] == created["id"]
    linked = open_run(app, runner, document=changed, experiment_id=created["id"])
    assert linked.status_code == 201
    assert linked.get_json()["experiment_id"] == created["id"]
    named = {**changed, "extensions": [{"name": "chaoshub", "experiment": created["id"]}]}
    by_extension = open_run(app, runner, document=named)
    assert by_extension.get_json()["experiment_id"] == created["id"]

    run_id = linked.get_json()["id"]
    client = app.test_client()
    url = f"/api/v1/runs/{run_id}"
    assert send(app, reader, run_id, lifecycle()[:1]).status_code == 403
    assert send(app, runner, run_id, lifecycle()[:1]).status_code == 200
    assert client.get(url + "/state", headers=bearer(runner)).status_code == 200
    assert client.get(url, headers=bearer(runner)).status_code == 403
    assert client.get(url, headers=bearer(reader)).status_code == 200
    assert put_journal(app, reader, run_id, journal()).status_code == 403
    assert put_journal(app, runner, run_id, journal()).status_code == 201

    anonymous = client.post("/api/v1/runs", json={"org": "alice", "workspace": "Personal",
                                                  "experiment": experiment()})
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"] == "Bearer"
    assert client.post(url + "/events", json=lifecycle()[:1]).status_code == 401
    assert client.put(url + "/journal", json=journal()).status_code == 401
    assert client.get(url).status_code == 404  # a private workspace's run is nobody else's
    assert client.get(url + "/state").status_code == 404
    bad = client.get(url, headers=bearer("chub_" + "x" * 36))
    assert bad.status_code == 401
    # A browser session may use the API too, with its CSRF token as for any write.
    assert post_json(alice, "/api/v1/runs", {"org": "alice", "workspace": "Personal",
                                             "experiment": as_run()}).status_code == 201


def test_runs_are_as_private_as_their_experiment(app, alice, token):
    bob = signed_up_client(app, "bob")
    bobs_token = make_token(bob, FULL)
    run_id = open_run(app, token).get_json()["id"]
    url = f"/api/v1/runs/{run_id}"
    client = app.test_client()
    # Someone else's private workspace: nothing there exists for bob.
    assert open_run(app, bobs_token).status_code == 404
    assert client.get(url, headers=bearer(bobs_token)).status_code == 404
    assert client.get(url + "/state", headers=bearer(bobs_token)).status_code == 404
    assert send(app, bobs_token, run_id, lifecycle()[:1]).status_code == 404
    assert put_journal(app, bobs_token, run_id, journal()).status_code == 404

    # A viewer of the org reads its runs but may not feed them.
    assert post_json(alice, "/api/v1/orgs", {"name": "team"}).status_code == 201
    assert post_json(alice, "/api/v1/orgs/team/workspaces",
                     {"name": "prod", "visibility": "private"}).status_code == 201
    assert post_json(alice, "/api/v1/orgs/team/members",
                     {"username": "bob", "role": "viewer"}).status_code == 201
    team_run = open_run(app, token, org="team", workspace="prod").get_json()["id"]
    team_url = f"/api/v1/runs/{team_run}"
    assert send(app, token, team_run, lifecycle()[:2]).status_code == 200
    seen = client.get(team_url, headers=bearer(bobs_token))
    assert seen.status_code == 200 and len(seen.get_json()["events"]) == 2
    assert send(app, bobs_token, team_run, lifecycle()[2:3]).status_code == 403
    assert put_journal(app, bobs_token, team_run, journal()).status_code == 403
    assert open_run(app, bobs_token, org="team", workspace="prod").status_code == 404

    # Outsiders of a public workspace see what its settings let them see of executions.
    public_run = open_run(app, token, workspace="Public").get_json()["id"]
    send(app, token, public_run, lifecycle()[:2])
    assert client.get(f"/api/v1/runs/{public_run}").status_code == 404  # "none" by default
    changed = alice.patch("/api/v1/orgs/alice/workspaces/Public",
                          json={"outsider_executions": "status"},
                          headers={"X-CSRF-Token": alice.get_cookie("chaoshub_csrf").value})
    assert changed.status_code == 200, changed.get_json()
    status_only = client.get(f"/api/v1/runs/{public_run}").get_json()
    assert status_only["status"] == "running" and status_only["events"] == []
    assert status_only["detailed"] is False and status_only["created_by_name"] == ""


def test_deleting_the_experiment_deletes_its_runs(app, alice, token):
    opened = open_run(app, token).get_json()
    send(app, token, opened["id"], lifecycle()[:3])
    put_journal(app, token, opened["id"], variant("passed"))
    deleted = alice.delete(f"/api/v1/experiments/{opened['experiment_id']}",
                           headers={"X-CSRF-Token": alice.get_cookie("chaoshub_csrf").value})
    assert deleted.status_code == 204
    gone = app.test_client().get(f"/api/v1/runs/{opened['id']}", headers=bearer(token))
    assert gone.status_code == 404


def test_a_run_body_may_be_large_but_not_unbounded(app, token):
    app.config["EXPERIMENT_MAX_BYTES"] = 10_000
    document = as_run()
    document["description"] = "d" * 20_000
    assert open_run(app, token, document=document).status_code == 413
    run_id = open_run(app, token).get_json()["id"]
    app.config["EXECUTION_MAX_BYTES"] = 10_000
    batch = [{"seq": 1, "type": "run-started", "title": "t" * 20_000}]
    answer = app.test_client().post(f"/api/v1/runs/{run_id}/events", data=json.dumps(batch),
                                    headers={**bearer(token), "Content-Type": "application/json"})
    assert answer.status_code == 413


def test_a_run_opened_again_with_its_idempotency_key_is_the_same_run(app, token, alice):
    keyed = {**bearer(token), "Idempotency-Key": "opening-1"}
    body = {"org": "alice", "workspace": "Personal", "experiment": as_run()}
    first = app.test_client().post("/api/v1/runs", json=body, headers=keyed)
    again = app.test_client().post("/api/v1/runs", json=body, headers=keyed)
    assert first.status_code == again.status_code == 201
    assert again.get_json()["id"] == first.get_json()["id"]
    other = app.test_client().post("/api/v1/runs", json=body,
                                   headers={**bearer(token), "Idempotency-Key": "opening-2"})
    assert other.get_json()["id"] != first.get_json()["id"]
    assert open_run(app, token).get_json()["id"] != first.get_json()["id"]  # no key: a new run
    # Another account's key of the same name opens its own run.
    bob = make_token(signed_up_client(app, "bob"), FULL)
    theirs = app.test_client().post(
        "/api/v1/runs", json={**body, "org": "bob"},
        headers={**bearer(bob), "Idempotency-Key": "opening-1"})
    assert theirs.status_code == 201 and theirs.get_json()["id"] != first.get_json()["id"]
    # The same key for another workspace is a mistake, said as such.
    assert post_json(alice, "/api/v1/orgs/alice/workspaces", {"name": "ops"}).status_code == 201
    elsewhere = app.test_client().post("/api/v1/runs", json={**body, "workspace": "ops"},
                                       headers=keyed)
    assert elsewhere.status_code == 409
    # And the API's description says it may.
    spec = app.test_client().get("/api/v1/openapi.json").get_json()
    assert "409" in spec["paths"]["/api/v1/runs"]["post"]["responses"]


def test_an_experiments_runs_come_a_page_at_a_time_newest_first(app, alice, token):
    opened = [open_run(app, token).get_json() for _ in range(3)]
    experiment_id = opened[0]["experiment_id"]
    assert {run["experiment_id"] for run in opened} == {experiment_id}
    first = alice.get(f"/api/v1/experiments/{experiment_id}/runs?limit=2").get_json()
    assert [r["id"] for r in first["runs"]] == [opened[2]["id"], opened[1]["id"]]
    rest = alice.get(f"/api/v1/experiments/{experiment_id}/runs?limit=2"
                     f"&cursor={first['next_cursor']}").get_json()
    assert ([r["id"] for r in rest["runs"]], rest["next_cursor"]) == ([opened[0]["id"]], None)
    # A cursor of another listing is refused, not followed.
    other = alice.get(f"/api/v1/experiments/{experiment_id}/executions?limit=2"
                      f"&cursor={first['next_cursor']}")
    assert other.status_code == 400
