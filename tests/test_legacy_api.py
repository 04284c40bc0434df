"""The chaostoolkit-chaoshub plugin's wire API, replayed as the plugin sends it."""

from __future__ import annotations

import json

import pytest
import yaml

from chaoshub import create_app
from chaoshub.core import db
from tests.conftest import signed_up_client
from tests.experiment_data import experiment, journal, make_token


@pytest.fixture
def app(settings):
    # The plugin reaches the hub by its name, which a deployment lists among its trusted hosts.
    hub = create_app({**settings, "TRUSTED_HOSTS": "hub.example.com,localhost"})
    yield hub
    db.dispose(hub)


@pytest.fixture
def hub(app):
    alice = signed_up_client(app, "alice")
    token = make_token(alice, ["experiments:read", "experiments:write", "executions:write"])
    return app, alice, token


def plugin_post(app, path: str, body: bytes, token: str | None, scheme: str = "Bearer"):
    """A POST with exactly the plugin's headers (requests' json=..., Accept, Authorization)."""
    headers = [("Accept", "application/json"), ("Content-Type", "application/json")]
    if token is not None:
        headers.append(("Authorization", f"{scheme} {token}"))
    return app.test_client().post(path, data=body, headers=headers,
                                  base_url="https://hub.example.com:8080")


def as_run(document: dict, **extension) -> bytes:
    run = {**document, "dry": False}
    if extension:
        run["extensions"] = [{"name": "chaoshub", **extension}]
    return json.dumps(run).encode()


def test_publish_experiment_then_journal(hub):
    app, alice, token = hub
    created = plugin_post(app, "/api/ALICE/personal/experiment", as_run(experiment()), token)
    assert created.status_code == 201
    assert created.mimetype == "application/json"
    body = created.get_json()
    assert set(body) == {"id", "ref"}
    page = f"https://hub.example.com:8080/alice/Personal/experiment/{body['id']}"
    assert created.headers["Location"] == page

    again = plugin_post(app, "/api/alice/Personal/experiment",
                        as_run(experiment(), experiment=body["id"], self=page), token, "bearer")
    assert again.status_code == 200
    assert again.get_json() == body and again.headers["Location"] == page
    versions = alice.get(f"/api/v1/experiments/{body['id']}/versions").get_json()["versions"]
    assert len(versions) == 1  # "dry" and our own extension are not a change

    changed = experiment()
    changed["title"] = "Changed on a laptop"
    third = plugin_post(app, "/api/alice/Personal/experiment",
                        as_run(changed, experiment=body["id"]), token)
    assert third.status_code == 200 and third.get_json()["id"] == body["id"]
    assert third.get_json()["ref"] != body["ref"]

    executed = plugin_post(app, f"/api/alice/personal/experiment/{body['id']}/execution",
                           json.dumps(journal()).encode(), token, "bearer")
    assert executed.status_code == 201
    execution_id = executed.get_json()["id"]
    assert set(executed.get_json()) == {"id"}
    assert executed.headers["Location"] == (
        f"https://hub.example.com:8080/alice/personal/experiment/{body['id']}"
        f"/execution/{execution_id}")
    repeat = plugin_post(app, f"/api/alice/personal/experiment/{body['id']}/execution",
                         json.dumps(journal()).encode(), token)
    assert repeat.status_code == 201 and repeat.get_json() == {"id": execution_id}


def test_an_extension_naming_another_workspaces_experiment_makes_a_new_one(hub):
    app, _, token = hub
    elsewhere = plugin_post(app, "/api/alice/Public/experiment", as_run(experiment()), token)
    here = plugin_post(app, "/api/alice/Personal/experiment",
                       as_run(experiment(), experiment=elsewhere.get_json()["id"]), token)
    assert here.status_code == 201 and here.get_json()["id"] != elsewhere.get_json()["id"]


def test_credentials_are_answered_as_the_contract_says(hub):
    app, alice, token = hub
    body = as_run(experiment())
    missing = plugin_post(app, "/api/alice/Personal/experiment", body, None)
    assert missing.status_code == 401 and missing.mimetype == "application/json"
    bad = plugin_post(app, "/api/alice/Personal/experiment", body, "chub_not_a_real_token")
    assert bad.status_code == 401 and bad.headers["WWW-Authenticate"] == "Bearer"
    reader = make_token(alice, ["experiments:read"])
    scoped = plugin_post(app, "/api/alice/Personal/experiment", body, reader)
    assert scoped.status_code == 403 and scoped.headers["WWW-Authenticate"] == "Bearer"
    assert scoped.mimetype == "application/json"

    bob = signed_up_client(app, "bob")
    bobs = make_token(bob, ["experiments:write"])
    for workspace in ("alice/Personal", "alice/Public", "nobody/Public"):
        refused = plugin_post(app, f"/api/{workspace}/experiment", body, bobs)
        assert refused.status_code == 404, workspace
        assert refused.mimetype == "application/json"


def test_bad_bodies_and_unknown_experiments(hub):
    app, _, token = hub
    app.config["EXPERIMENT_MAX_BYTES"] = 8192
    url = "/api/alice/Personal/experiment"
    assert plugin_post(app, url, b"not json", token).status_code == 400
    assert plugin_post(app, url, b"[]", token).status_code == 400
    assert plugin_post(app, url, json.dumps({"title": "x"}).encode(), token).status_code == 422
    big = experiment()
    big["description"] = "x" * 10_000
    assert plugin_post(app, url, json.dumps(big).encode(), token).status_code == 413
    created = plugin_post(app, url, as_run(experiment()), token).get_json()
    execution_url = f"/api/alice/Personal/experiment/{created['id']}/execution"
    no_status = journal()
    del no_status["status"]
    refused = plugin_post(app, execution_url, json.dumps(no_status).encode(), token)
    assert refused.status_code == 422 and refused.mimetype == "application/json"
    assert plugin_post(app, execution_url, b"{", token).status_code == 400
    unknown = plugin_post(app, "/api/alice/Personal/experiment/nope/execution",
                          json.dumps(journal()).encode(), token)
    assert unknown.status_code == 404
    wrong_place = plugin_post(app, f"/api/alice/Public/experiment/{created['id']}/execution",
                              json.dumps(journal()).encode(), token)
    assert wrong_place.status_code == 404


@pytest.mark.parametrize("accept", [None, "*/*", "application/json, application/x-yaml"])
def test_chaos_run_loads_the_experiment_with_the_extension_merged(hub, accept):
    app, _, token = hub
    created = plugin_post(app, "/api/alice/Personal/experiment", as_run(experiment()),
                          token).get_json()
    headers = [("Authorization", f"bearer {token}")]
    if accept:
        headers.append(("Accept", accept))
    path = f"/alice/personal/experiment/{created['id']}"
    loaded = app.test_client().get(path, headers=headers, base_url="http://hub.example.com")
    assert loaded.status_code == 200 and loaded.mimetype == "application/json"
    document = loaded.get_json()
    assert document["extensions"] == [{
        "name": "chaoshub", "experiment": created["id"],
        "self": f"http://hub.example.com/alice/Personal/experiment/{created['id']}",
        "organization": "alice", "workspace": "Personal"}]
    del document["extensions"]
    assert document == experiment()
    assert app.test_client().get(path, headers=[("Accept", "*/*")]).status_code == 404


def test_yaml_for_yaml_clients_and_the_page_for_browsers(hub):
    app, _, token = hub
    created = plugin_post(app, "/api/alice/Personal/experiment", as_run(experiment()),
                          token).get_json()
    path = f"/alice/Personal/experiment/{created['id']}"
    as_yaml = app.test_client().get(path, headers={"Authorization": f"Bearer {token}",
                                                   "Accept": "application/x-yaml"})
    assert as_yaml.mimetype == "application/x-yaml"
    assert yaml.safe_load(as_yaml.data)["title"] == experiment()["title"]
    browser = app.test_client().get(path, headers={
        "Authorization": f"Bearer {token}",
        "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"})
    assert browser.status_code == 200 and browser.mimetype == "text/html"
    assert "Deleting the marker file" in browser.get_data(as_text=True)
