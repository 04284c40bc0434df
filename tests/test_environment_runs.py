"""Runs in an environment: a real worker gives the child its values and secrets, and no
secret's value comes back in the events, the journal, an API answer or a log line."""

from __future__ import annotations

import hashlib
import json
import logging

import pytest

from chaoshub.experiment import runs, worker
from chaoshub.experiment.masking import MASK
from tests.conftest import csrf, post_json, signed_up_client
from tests.experiment_data import create, make_token

TOKEN = "tok-9f8e7d6c5b4a-secret"
PASSWORD = "pw-0123456789-secret"
RUNNER = ["experiments:read", "executions:read", "executions:write", "runs:execute"]
ENVIRONMENTS = "/api/v1/orgs/alice/workspaces/Personal/environments"
# Prints what it was given, as a careless script would, and the digests that prove it got it.
SCRIPT = """#!/bin/sh
echo "token=$API_TOKEN region=$REGION greeting=$1 password=$2"
printf '%s' "$API_TOKEN" | sha256sum
printf '%s' "$2" | sha256sum
printf '%s' "$API_TOKEN" | base64
"""


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def experiment(script: str) -> dict:
    tell = {"type": "process", "path": script, "arguments": ["${greeting}", "${password}"],
            "timeout": 30, "secrets": ["db"]}
    return {
        "title": "Tell what you got", "description": "Prints its environment's values.",
        "configuration": {"greeting": "from the experiment"},
        # Declared inline (chaos validates secrets before it reads --var-file ones), and
        # replaced by the environment's.
        "secrets": {"db": {"password": "from the experiment"}},
        "steady-state-hypothesis": {"title": "ok", "probes": [
            {"type": "probe", "name": "tell", "provider": tell, "tolerance": 0}]},
        "method": [{"type": "action", "name": "tell again", "provider": tell}],
    }


@pytest.fixture
def alice(app):
    return signed_up_client(app, "alice")


@pytest.fixture
def script(tmp_path, alice, app):
    path = tmp_path / "tell.sh"
    # Outside the system's folders: the operator lets runs read it, as for a tool of their own.
    app.config["RUN_SANDBOX_READ"] = str(tmp_path)
    path.write_text(SCRIPT)
    path.chmod(0o755)
    # A program of the test's own: the workspace's policy must name it (by default, only the
    # system's programs run).
    allowed = alice.put("/api/v1/orgs/alice/workspaces/Personal/policy",
                        json={"process_paths": [str(path)]},
                        headers={"X-CSRF-Token": csrf(alice)})
    assert allowed.status_code == 200, allowed.get_json()
    return str(path)


def staging(protected: bool = False) -> dict:
    return {"name": "staging", "protected": protected,
            "configuration": {"greeting": {"value": "hello-from-staging"},
                              "REGION": {"value": "eu-west-1", "target": "env"}},
            "secrets": {"API_TOKEN": {"value": TOKEN, "target": "env"},
                        "password": {"value": PASSWORD, "target": "var", "scope": "db"}}}


def test_a_run_gets_its_environment_and_reports_no_secret(app, alice, script, caplog):
    caplog.set_level(logging.DEBUG)
    assert post_json(alice, ENVIRONMENTS, staging()).status_code == 201
    saved = create(alice, document=experiment(script))
    token = make_token(alice, RUNNER)
    started = app.test_client().post(f"/api/v1/experiments/{saved['id']}/runs",
                                     json={"environment": "Staging"},
                                     headers={"Authorization": f"Bearer {token}"})
    assert started.status_code == 202, started.get_json()
    run_id = started.get_json()["id"]
    assert started.get_json()["environment"] == "staging"
    with app.app_context():
        row = runs.load_run(run_id)
        assert row.options["environment"] == "staging" and row.options["environment_id"]
        assert worker.execute(run_id, "test-worker") == "finished"
        events = [e.model_dump(mode="json") for e in runs.load_events(run_id)]

    done = alice.get(f"/api/v1/runs/{run_id}").get_json()
    journal = alice.get(f"/api/v1/executions/{done['execution_id']}/journal").get_json()
    outputs = [r["output"] for r in journal["run"]] + [
        p["output"] for p in journal["steady_states"]["before"]["probes"]]
    assert outputs and all(o["status"] == 0 for o in outputs)
    stdout = outputs[0]["stdout"]
    # The child got every value: the configuration over the experiment's own, the variables,
    # and both secrets (their digests printed by the script)...
    assert "greeting=hello-from-staging" in stdout and "region=eu-west-1" in stdout
    assert digest(TOKEN) in stdout and digest(PASSWORD) in stdout
    # ...and what it printed of the secrets, as given or in base64, was masked.
    assert f"token={MASK}" in stdout and f"password={MASK}" in stdout
    assert any(digest(TOKEN) in json.dumps(e) for e in events)

    reported = {"events": events, "journal": journal, "run": done,
                "runs": alice.get(f"/api/v1/experiments/{saved['id']}/runs").get_json(),
                "environment": alice.get(f"{ENVIRONMENTS}/staging").get_json(),
                "options": row.options}
    for name, payload in reported.items():
        text = json.dumps(payload)
        for secret in (TOKEN, PASSWORD):
            assert secret not in text, name
            assert secret.encode().hex() not in text, name
    assert TOKEN not in caplog.text and PASSWORD not in caplog.text


def test_protected_and_unknown_environments_are_refused(app, alice):
    assert post_json(alice, "/api/v1/orgs", {"name": "team"}).status_code == 201
    assert post_json(alice, "/api/v1/orgs/team/workspaces",
                     {"name": "prod", "visibility": "private"}).status_code == 201
    bob = signed_up_client(app, "bob")
    assert post_json(alice, "/api/v1/orgs/team/members",
                     {"username": "bob", "role": "member"}).status_code == 201
    base = "/api/v1/orgs/team/workspaces/prod/environments"
    assert post_json(alice, base, staging(protected=True)).status_code == 201
    saved = create(alice, "team", "prod", document=experiment("/bin/true"))
    runs_url = f"/api/v1/experiments/{saved['id']}/runs"

    refused = post_json(bob, runs_url, {"environment": "staging"})
    assert refused.status_code == 403, refused.get_json()
    assert "protected" in refused.get_json()["message"]
    unknown = post_json(bob, runs_url, {"environment": "nowhere"})
    assert unknown.status_code == 422
    assert [p["pointer"] for p in unknown.get_json()["details"]] == ["/environment"]
    assert post_json(bob, runs_url, {"environment": 5}).status_code == 422

    # Unprotected, members run in it; protected, maintainers and owners do.
    assert alice.open(f"{base}/staging", method="PATCH", json={"protected": False},
                      headers={"X-CSRF-Token": csrf(alice)}).status_code == 200
    assert post_json(bob, runs_url, {"environment": "staging"}).status_code == 202
    assert alice.open(f"{base}/staging", method="PATCH", json={"protected": True},
                      headers={"X-CSRF-Token": csrf(alice)}).status_code == 200
    assert post_json(alice, runs_url, {"environment": "staging"}).status_code == 202


def test_a_run_whose_environment_was_deleted_is_refused(app, alice, script):
    assert post_json(alice, ENVIRONMENTS, staging()).status_code == 201
    saved = create(alice, document=experiment(script))
    started = post_json(alice, f"/api/v1/experiments/{saved['id']}/runs",
                        {"environment": "staging"})
    assert started.status_code == 202
    assert alice.open(f"{ENVIRONMENTS}/staging", method="DELETE",
                      headers={"X-CSRF-Token": csrf(alice)}).status_code == 204
    with app.app_context():
        assert worker.execute(started.get_json()["id"], "test-worker") == "refused"
        row = runs.load_run(started.get_json()["id"])
    assert (row.status, row.reason) == ("refused", "its environment was deleted")

