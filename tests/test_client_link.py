"""A local experiment file names its experiment on the hub after its first run, so that the file,
edited and run again, becomes a new version of that experiment: with the real `chaos run`."""

from __future__ import annotations

import json

import pytest
import requests
import yaml

from tests import test_control
from tests.test_control import chaos_run, login, run_id_of

pytestmark = pytest.mark.e2e
# The hub with alice and her token, the client venv and a user's machine, as the control's tests
# have them.
hub, client_venv, laptop = test_control.hub, test_control.client_venv, test_control.laptop


def hub_get(url: str, token: str, path: str) -> dict:
    answer = requests.get(f"{url}{path}", headers={"Authorization": f"Bearer {token}"},
                          timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def experiment_of(url: str, token: str, done) -> str:
    return hub_get(url, token, f"/api/v1/runs/{run_id_of(done)}")["experiment_id"]


def link_of(document: dict) -> dict:
    (extension,) = [e for e in document.get("extensions", []) if e.get("name") == "chaoshub"]
    return extension


def test_an_edited_json_file_becomes_version_2_of_its_experiment(hub, laptop):
    url, token, _ = hub
    login(laptop, url, token, "Personal")
    original = laptop["experiment"].read_text()
    first, _ = chaos_run(laptop, "first")
    experiment_id = experiment_of(url, token, first)
    linked = json.loads(laptop["experiment"].read_text())
    assert link_of(linked) == {
        "name": "chaoshub", "experiment": experiment_id, "organization": "alice",
        "workspace": "Personal", "self": f"{url}/alice/Personal/experiment/{experiment_id}"}
    # The rest of the file is as it was.
    assert {k: v for k, v in linked.items() if k != "extensions"} == json.loads(original)
    assert "now names its experiment on the hub" in first.stdout + first.stderr

    # The user edits the file (the link stays in it) and runs it again.
    linked["title"] = "The marker file survives, edited"
    laptop["experiment"].write_text(json.dumps(linked, indent=2))
    second, _ = chaos_run(laptop, "second")
    assert experiment_of(url, token, second) == experiment_id
    listed = hub_get(url, token, "/api/v1/orgs/alice/workspaces/Personal/experiments")
    assert [e["id"] for e in listed["experiments"]] == [experiment_id]
    versions = hub_get(url, token, f"/api/v1/experiments/{experiment_id}/versions")["versions"]
    assert sorted(v["number"] for v in versions) == [1, 2]
    assert hub_get(url, token, f"/api/v1/experiments/{experiment_id}")["title"] == \
        "The marker file survives, edited"
    executions = hub_get(url, token, f"/api/v1/experiments/{experiment_id}/executions")
    assert len(executions["executions"]) == 2
    # Linked already: the second run leaves the file as the user wrote it.
    assert json.loads(laptop["experiment"].read_text()) == linked


def test_an_edited_yaml_file_keeps_its_comments_and_becomes_version_2(hub, laptop):
    url, token, _ = hub
    login(laptop, url, token, "Public")
    document = json.loads(laptop["experiment"].read_text())
    path = laptop["root"] / "experiment.yaml"
    original = "# Owned by the platform team\n" + yaml.safe_dump(document, sort_keys=False)
    path.write_text(original)
    laptop["experiment"] = path
    first, _ = chaos_run(laptop, "first")
    experiment_id = experiment_of(url, token, first)
    text = path.read_text()
    assert text.startswith(original)  # every line as it was, the link added at the end
    assert link_of(yaml.safe_load(text))["experiment"] == experiment_id

    path.write_text(text.replace(document["title"], "Edited in YAML"))
    second, _ = chaos_run(laptop, "second")
    assert experiment_of(url, token, second) == experiment_id
    listed = hub_get(url, token, "/api/v1/orgs/alice/workspaces/Public/experiments")
    assert [e["id"] for e in listed["experiments"]] == [experiment_id]
    versions = hub_get(url, token, f"/api/v1/experiments/{experiment_id}/versions")["versions"]
    assert sorted(v["number"] for v in versions) == [1, 2]
