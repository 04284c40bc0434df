"""Moving an experiment to another workspace: in one org and across orgs, what moves with it,
who may move it (the visibility matrix's answers), its old addresses, caches and feeds."""

from __future__ import annotations

import pytest

from chaoshub.core.cache import cache
from tests.conftest import csrf, post_json, signed_up_client
from tests.experiment_data import create, experiment, make_token, variant
from tests.test_visibility import ROLES, VISIBILITIES, WRITERS, World, write

BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
CLI = {"Accept": "application/json"}


def move(client, experiment_id: str, org: str, workspace: str, **headers):
    return client.post(f"/api/v1/experiments/{experiment_id}/move",
                       json={"org": org, "workspace": workspace},
                       headers={"X-CSRF-Token": csrf(client), **headers})


def publish(browser, experiment_id: str, outcome: str) -> str:
    response = post_json(browser, f"/api/v1/experiments/{experiment_id}/executions",
                         variant(outcome))
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def workspace_id(browser, org: str, workspace: str) -> str:
    return browser.get(f"/api/v1/orgs/{org}/workspaces/{workspace}").get_json()["id"]


def kinds_and_summaries(browser, path: str) -> list[tuple[str, str]]:
    entries = browser.get(path).get_json()["entries"]
    return [(e["kind"], e["summary"]) for e in entries if e["kind"] == "experiment.moved"]


@pytest.fixture
def olga(app):
    """olga owns `team` (workspaces lab and prod) and `other` (workspace dest)."""
    browser = signed_up_client(app, "olga")
    for org, workspaces in (("team", ("lab", "prod")), ("other", ("dest",))):
        assert post_json(browser, "/api/v1/orgs", {"name": org}).status_code == 201
        for name in workspaces:
            assert post_json(browser, f"/api/v1/orgs/{org}/workspaces",
                             {"name": name}).status_code == 201
    return browser


@pytest.fixture
def moved_things(app, olga):
    """An experiment in team/lab with two versions, two executions and a run."""
    created = create(olga, "team", "lab")
    changed = experiment()
    changed["title"] = "Second version"
    assert olga.put(f"/api/v1/experiments/{created['id']}", json=changed,
                    headers={"X-CSRF-Token": csrf(olga)}).status_code == 200
    executions = [publish(olga, created["id"], o) for o in ("passed", "deviated")]
    token = make_token(olga, ["full"])
    run = app.test_client().post(
        "/api/v1/runs", json={"org": "team", "workspace": "lab", "experiment": changed,
                              "experiment_id": created["id"]},
        headers={"Authorization": f"Bearer {token}"})
    assert run.status_code == 201, run.get_json()
    return created["id"], executions, run.get_json()["id"], token


def test_a_move_in_one_org_takes_versions_executions_and_runs(app, olga, moved_things):
    experiment_id, executions, run_id, token = moved_things
    lab, prod = workspace_id(olga, "team", "lab"), workspace_id(olga, "team", "prod")
    # Read once, so that the caches hold the experiment where it was.
    assert olga.get(f"/team/lab/experiment/{experiment_id}", headers=CLI).status_code == 200
    assert olga.get(f"/api/v1/experiments/{experiment_id}").get_json()["workspace_id"] == lab
    assert olga.get(f"/api/v1/experiments/{experiment_id}/executions").status_code == 200

    response = move(olga, experiment_id, "team", "prod")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["org"], body["workspace"], body["workspace_id"], body["version"]) == (
        "team", "prod", prod, 2)
    assert body["experiment"]["title"] == "Second version"

    assert olga.get(f"/api/v1/experiments/{experiment_id}").get_json()["workspace_id"] == prod
    listed = olga.get(f"/api/v1/experiments/{experiment_id}/executions").get_json()
    assert sorted(e["id"] for e in listed["executions"]) == sorted(executions)
    assert {e["workspace_id"] for e in listed["executions"]} == {prod}
    assert olga.get(f"/api/v1/executions/{executions[0]}").get_json()["workspace_id"] == prod
    versions = olga.get(f"/api/v1/experiments/{experiment_id}/versions").get_json()["versions"]
    assert [v["number"] for v in versions] == [2, 1]
    run = app.test_client().get(f"/api/v1/runs/{run_id}",
                                headers={"Authorization": f"Bearer {token}"}).get_json()
    assert (run["workspace"], run["workspace_id"]) == ("prod", prod)

    # The old address is gone, for browsers and for `chaos run`; the new one answers.
    for headers in (CLI, BROWSER):
        assert olga.get(f"/team/lab/experiment/{experiment_id}",
                        headers=headers).status_code == 404
        assert olga.get(f"/team/prod/experiment/{experiment_id}",
                        headers=headers).status_code == 200
    assert olga.get(f"/team/lab/experiment/{experiment_id}/execution/{executions[0]}",
                    headers=BROWSER).status_code == 404
    assert olga.get(f"/team/prod/experiment/{experiment_id}/execution/{executions[0]}",
                    headers=BROWSER).status_code == 200
    lab_listing = olga.get("/api/v1/orgs/team/workspaces/lab/experiments").get_json()
    prod_listing = olga.get("/api/v1/orgs/team/workspaces/prod/experiments?last_run=deviated")
    assert lab_listing["experiments"] == []
    assert [e["id"] for e in prod_listing.get_json()["experiments"]] == [experiment_id]
    # Journals published to the old address are refused; to the new one, kept.
    legacy = "/api/{}/experiment/" + experiment_id + "/execution"
    assert post_json(olga, legacy.format("team/lab"), variant("aborted")).status_code == 404
    assert post_json(olga, legacy.format("team/prod"), variant("aborted")).status_code == 201

    # Each workspace's feed names that workspace only: either may be private to some readers.
    assert kinds_and_summaries(olga, "/api/v1/orgs/team/workspaces/prod/activity") == [
        ("experiment.moved",
         "olga moved the experiment Second version into prod, from another workspace")]
    assert kinds_and_summaries(olga, "/api/v1/orgs/team/workspaces/lab/activity") == [
        ("experiment.moved",
         "olga moved the experiment Second version out of lab, to another workspace")]


def test_a_move_across_orgs(app, olga, moved_things):
    experiment_id, executions, run_id, token = moved_things
    other = olga.get("/api/v1/orgs/other").get_json()["id"]
    dest = workspace_id(olga, "other", "dest")
    response = move(olga, experiment_id, "other", "dest")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["org"], body["workspace"], body["org_id"], body["workspace_id"]) == (
        "other", "dest", other, dest)
    assert olga.get(f"/api/v1/executions/{executions[1]}").get_json()["workspace_id"] == dest
    assert olga.get(f"/team/lab/experiment/{experiment_id}", headers=CLI).status_code == 404
    assert olga.get(f"/other/dest/experiment/{experiment_id}", headers=CLI).status_code == 200
    assert kinds_and_summaries(olga, "/api/v1/orgs/team/workspaces/lab/activity") == [
        ("experiment.moved",
         "olga moved the experiment Second version out of lab, to another org")]
    assert kinds_and_summaries(olga, "/api/v1/orgs/other/workspaces/dest/activity") == [
        ("experiment.moved",
         "olga moved the experiment Second version into dest, from another org")]
    # And back again.
    assert move(olga, experiment_id, "team", "lab").status_code == 200
    assert olga.get(f"/team/lab/experiment/{experiment_id}", headers=CLI).status_code == 200


def test_a_read_after_a_move_never_comes_from_a_stale_cache(app, backend, olga):
    created = create(olga, "team", "lab")
    with app.app_context():
        assert cache().backend.name == ("redis" if backend == "postgresql" else "memory")
    for _ in range(2):  # the second read is served from the cache
        assert olga.get(f"/team/lab/experiment/{created['id']}", headers=CLI).status_code == 200
        olga.get(f"/api/v1/experiments/{created['id']}")
    assert move(olga, created["id"], "team", "prod").status_code == 200
    read = olga.get(f"/api/v1/experiments/{created['id']}").get_json()
    assert read["workspace_id"] == workspace_id(olga, "team", "prod")
    assert olga.get(f"/team/lab/experiment/{created['id']}", headers=CLI).status_code == 404


def test_moving_needs_write_access_where_it_goes(app, olga):
    mary = signed_up_client(app, "mary")
    vic = signed_up_client(app, "vic")
    assert post_json(olga, "/api/v1/orgs/team/members",
                     {"username": "mary", "role": "member"}).status_code == 201
    assert post_json(olga, "/api/v1/orgs/other/members",
                     {"username": "vic", "role": "viewer"}).status_code == 201
    assert post_json(olga, "/api/v1/orgs/other/workspaces",
                     {"name": "showcase", "visibility": "public"}).status_code == 201
    created = create(mary, "team", "lab")
    lab = workspace_id(olga, "team", "lab")

    # mary may write in team only: other's private workspace is invisible to her, its public
    # one visible but not hers to write.
    assert move(mary, created["id"], "other", "dest").status_code == 404
    assert move(mary, created["id"], "other", "showcase").status_code == 403
    assert move(mary, created["id"], "nowhere", "at-all").status_code == 404
    assert move(mary, created["id"], "team", "nowhere").status_code == 404
    # vic may read other, nothing of team.
    assert move(vic, created["id"], "other", "dest").status_code == 404
    assert move(app.test_client(), created["id"], "team", "prod").status_code == 401
    reader = {"Authorization": f"Bearer {make_token(mary, ['experiments:read'])}"}
    assert app.test_client().post(f"/api/v1/experiments/{created['id']}/move",
                                  json={"org": "team", "workspace": "prod"},
                                  headers=reader).status_code == 403
    pinned = post_json(mary, "/api/v1/tokens", {"name": "lab only", "scopes": ["full"],
                                                "workspace": "team/lab"}).get_json()["secret"]
    assert app.test_client().post(f"/api/v1/experiments/{created['id']}/move",
                                  json={"org": "team", "workspace": "prod"},
                                  headers={"Authorization": f"Bearer {pinned}"}
                                  ).status_code == 403
    assert mary.get(f"/api/v1/experiments/{created['id']}").get_json()["workspace_id"] == lab
    # Within team she may.
    assert move(mary, created["id"], "team", "prod").status_code == 200


def test_bad_bodies_and_a_move_to_where_it_is(app, olga):
    created = create(olga, "team", "lab")
    url = f"/api/v1/experiments/{created['id']}/move"
    headers = {"X-CSRF-Token": csrf(olga)}
    assert olga.post(url, data="not json", headers={**headers, "Content-Type":
                                                     "application/json"}).status_code == 400
    assert olga.post(url, json=["team", "prod"], headers=headers).status_code == 400
    unknown = olga.post(url, json={"org": "team", "workspace": "prod", "x": 1}, headers=headers)
    assert unknown.status_code == 422
    assert [p["pointer"] for p in unknown.get_json()["details"]] == ["/x"]
    wrong_type = olga.post(url, json={"org": "team", "workspace": 7}, headers=headers)
    assert wrong_type.status_code == 422
    assert [p["pointer"] for p in wrong_type.get_json()["details"]] == ["/workspace"]
    missing = olga.post(url, json={"org": "team"}, headers=headers)
    assert missing.status_code == 422
    assert [p["pointer"] for p in missing.get_json()["details"]] == ["/workspace"]
    assert olga.post(url, json={"org": "team", "workspace": "prod"}).status_code == 403  # CSRF
    assert move(olga, "no-such-experiment", "team", "prod").status_code == 404
    same = move(olga, created["id"], "TEAM", "Lab")
    assert same.status_code == 200
    assert (same.get_json()["workspace"], same.get_json()["version"]) == ("lab", 1)
    assert kinds_and_summaries(olga, "/api/v1/orgs/team/workspaces/lab/activity") == []


def test_the_experiment_page_offers_the_workspaces_one_may_write_to(app, olga):
    created = create(olga, "team", "lab")
    page = olga.get(f"/team/lab/experiment/{created['id']}", headers=BROWSER)
    html = page.get_data(as_text=True)
    assert 'data-testid="move"' in html
    assert f'action="/team/lab/experiment/{created["id"]}/move"' in html
    for option in ("team/prod", "other/dest", "olga/Personal", "olga/Public"):
        assert f'<option value="{option}">' in html, option
    assert '<option value="team/lab">' not in html

    mary = signed_up_client(app, "mary")
    vic = signed_up_client(app, "vic")
    post_json(olga, "/api/v1/orgs/team/members", {"username": "mary", "role": "member"})
    post_json(olga, "/api/v1/orgs/team/members", {"username": "vic", "role": "viewer"})
    html = mary.get(f"/team/lab/experiment/{created['id']}", headers=BROWSER).get_data(
        as_text=True)
    assert '<option value="team/prod">' in html and '<option value="other/dest">' not in html
    html = vic.get(f"/team/lab/experiment/{created['id']}", headers=BROWSER).get_data(
        as_text=True)
    assert 'data-testid="move"' not in html


def test_the_page_form_moves_then_shows_the_experiment_where_it_now_lives(app, olga):
    created = create(olga, "team", "lab")
    url = f"/team/lab/experiment/{created['id']}/move"
    form = {"destination": "other/dest", "csrf_token": csrf(olga)}
    assert olga.post(url, data={"destination": "other/dest"}).status_code == 403  # no CSRF
    assert olga.post(f"/team/prod/experiment/{created['id']}/move",
                     data=form).status_code == 404  # not where the URL says
    visitor = app.test_client()
    assert visitor.post(url, data={**form, "csrf_token": csrf(visitor)}).status_code == 401
    assert olga.post(url, data={**form, "destination": "other"}).status_code == 422
    moved = olga.post(url, data=form)
    assert moved.status_code == 303
    assert moved.headers["Location"] == f"/other/dest/experiment/{created['id']}"
    assert olga.get(moved.headers["Location"], headers=BROWSER).status_code == 200
    assert olga.get(f"/team/lab/experiment/{created['id']}", headers=BROWSER).status_code == 404


@pytest.fixture
def world(app, sample_experiment):
    return World(app, sample_experiment)


def test_every_role_gets_what_the_visibility_matrix_says(world):
    """Moving from ws to doomed in the org of each visibility: 404 where the experiment is
    invisible, 401 for visitors, 403 below member, 200 for writers."""
    expect = write(WRITERS, 200)
    wrong = []
    for visibility in VISIBILITIES:
        org = f"{visibility}-org"
        experiment_id = world.experiments[visibility]
        for role in ROLES:
            client = world.clients[role]
            response = move(client, experiment_id, org, "doomed")
            if response.status_code != expect(role, visibility):
                wrong.append(f"{role} in {org}: {response.status_code}, "
                             f"expected {expect(role, visibility)}")
            if response.status_code == 200:
                assert move(world.owner, experiment_id, org, "ws").status_code == 200
            # Nobody may move it into another org's workspace they cannot see.
            assert move(client, experiment_id, "elsewhere", "ws").status_code in (401, 403, 404)
        assert move(world.owner, experiment_id, "elsewhere", "ws").status_code == 404
    assert wrong == []


def test_writes_lock_the_experiment_where_they_were_authorized(app, olga, moved_things):
    # Publishing a journal or opening a run takes the experiment's row where it was authorized:
    # one that moved in between is a conflict, not an execution left in the old workspace.
    from chaoshub.core.db import transaction
    from chaoshub.core.errors import Conflict
    from chaoshub.experiment import store

    experiment_id = moved_things[0]
    lab, prod = workspace_id(olga, "team", "lab"), workspace_id(olga, "team", "prod")
    with app.app_context():
        with transaction("experiment") as session:
            assert store.experiment_in(session, experiment_id, lab).id == experiment_id
        with pytest.raises(Conflict, match="moved"), transaction("experiment") as session:
            store.experiment_in(session, experiment_id, prod)
