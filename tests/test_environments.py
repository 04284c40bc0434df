"""Run environments: values and write-only secrets per workspace, sealed at rest, managed by
maintainers and owners, used by members (protected ones by maintainers only)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from sqlalchemy import text

from chaoshub.core.config import ConfigError, run_secrets_keys
from chaoshub.core.db import transaction
from chaoshub.experiment import environments, secret_box
from chaoshub.experiment.masking import MASK, Masker
from tests.conftest import csrf, post_json, signed_up_client
from tests.experiment_data import make_token

SECRET = "s3cr3t-Value/with+chars"
OTHER_SECRET = "db-password-0042"
BASE = "/api/v1/orgs/team/workspaces/prod/environments"
RUNNER = ["experiments:read", "executions:read", "executions:write", "runs:execute"]


def send(client, method: str, url: str, body=None):
    return client.open(url, method=method, json=body, headers={"X-CSRF-Token": csrf(client)})


@pytest.fixture
def team(app):
    """olga owns team/prod; mia maintains it, bob is a member, vic a viewer."""
    people = {name: signed_up_client(app, name) for name in ("olga", "mia", "bob", "vic", "otto")}
    olga = people["olga"]
    assert post_json(olga, "/api/v1/orgs", {"name": "team"}).status_code == 201
    assert post_json(olga, "/api/v1/orgs/team/workspaces",
                     {"name": "prod", "visibility": "private"}).status_code == 201
    for name, role in (("mia", "maintainer"), ("bob", "member"), ("vic", "viewer")):
        added = post_json(olga, "/api/v1/orgs/team/members", {"username": name, "role": role})
        assert added.status_code == 201, added.get_json()
    return people


def staging(**extra) -> dict:
    return {
        "name": "staging", "description": "The staging cluster",
        "configuration": {"base_url": {"value": "https://staging.example", "target": "var"},
                          "REGION": {"value": "eu-west-1", "target": "env"},
                          "retries": {"value": 3}},
        "secrets": {"API_TOKEN": {"value": SECRET, "target": "env"},
                    "password": {"value": OTHER_SECRET, "target": "var", "scope": "db"}},
        **extra,
    }


def secret_free(payload) -> bool:
    serialized = json.dumps(payload)
    return all(s not in serialized for s in (SECRET, OTHER_SECRET))


def test_secrets_are_sealed_at_rest_and_no_answer_carries_them(app, team, backend):
    olga = team["olga"]
    created = post_json(olga, BASE, staging())
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert created.headers["Location"] == f"{BASE}/staging"
    assert body["secrets"].keys() == {"API_TOKEN", "password"}
    assert body["secrets"]["password"]["scope"] == "db"
    assert body["configuration"]["retries"] == {
        "value": 3, "target": "var", "updated_at": body["configuration"]["retries"]["updated_at"]}
    answers = [created, olga.get(BASE), olga.get(f"{BASE}/staging"),
               send(olga, "PATCH", f"{BASE}/staging", {"protected": True}),
               send(olga, "PUT", f"{BASE}/staging/secrets/API_TOKEN",
                    {"value": SECRET + "-2", "target": "env"})]
    for answer in answers:
        assert answer.status_code in (200, 201), answer.get_json()
        assert SECRET not in answer.get_data(as_text=True)
        assert OTHER_SECRET not in answer.get_data(as_text=True)

    with app.app_context():
        with transaction("experiment") as session:
            rows = session.execute(text(
                "SELECT environment_id, name, sealed, value FROM run_environment_entries "
                "WHERE kind = 'secret' ORDER BY name")).all()
    assert [r.name for r in rows] == ["API_TOKEN", "password"]
    for row in rows:
        assert row.value in (None, "null") and row.sealed.startswith("v1:")
        for value in (SECRET, OTHER_SECRET):
            for form in (value, base64.b64encode(value.encode()).decode()):
                assert form not in row.sealed
    if backend == "sqlite":
        stored = b"".join(p.read_bytes() for p in Path(app.config["CHAOSHUB_INSTANCE_PATH"])
                          .glob("experiment.db*"))
        assert SECRET.encode() not in stored and OTHER_SECRET.encode() not in stored
    with app.app_context():
        password = next(r for r in rows if r.name == "password")
        context = f"run-environment/{password.environment_id}/password"
        assert secret_box.open_sealed(password.sealed, context) == OTHER_SECRET
        # Sealed for one place, a value copied to another does not open there.
        with pytest.raises(secret_box.SecretUnreadable):
            secret_box.open_sealed(password.sealed, context.replace("password", "API_TOKEN"))
        values = environments.run_values(password.environment_id)
    assert values.environment == {"API_TOKEN": SECRET + "-2", "REGION": "eu-west-1"}
    assert values.secrets == {"db": {"password": OTHER_SECRET}}
    assert values.configuration == {"base_url": "https://staging.example", "retries": 3}


def test_who_may_read_and_manage_environments(app, team):
    olga, mia, bob, vic, otto = (team[n] for n in ("olga", "mia", "bob", "vic", "otto"))
    assert post_json(mia, BASE, staging()).status_code == 201  # maintainers manage them
    listed = bob.get(BASE)  # members see them, to run in them
    assert listed.status_code == 200
    assert [e["name"] for e in listed.get_json()["environments"]] == ["staging"]
    assert listed.get_json()["next_cursor"] is None
    assert post_json(bob, BASE, staging(name="mine")).status_code == 403
    assert send(bob, "PUT", f"{BASE}/staging/secrets/X",
                {"value": "abcdef", "target": "env"}).status_code == 403
    assert send(bob, "PATCH", f"{BASE}/staging", {"protected": False}).status_code == 403
    assert send(bob, "DELETE", f"{BASE}/staging").status_code == 403
    assert vic.get(BASE).status_code == 403  # viewers do not run
    assert otto.get(BASE).status_code == 404  # the workspace is private
    assert app.test_client().get(BASE).status_code == 401

    # An API token needs runs:execute, for reading as for writing.
    reader = make_token(olga, ["experiments:read"])
    assert app.test_client().get(BASE, headers={"Authorization": f"Bearer {reader}"}
                                 ).status_code == 403
    runner = make_token(olga, RUNNER)
    by_token = app.test_client().post(BASE, json=staging(name="ci"),
                                      headers={"Authorization": f"Bearer {runner}"})
    assert by_token.status_code == 201, by_token.get_json()

    assert send(olga, "DELETE", f"{BASE}/staging/secrets/API_TOKEN").status_code == 200
    assert send(olga, "DELETE", f"{BASE}/staging/secrets/API_TOKEN").status_code == 404
    assert send(olga, "DELETE", f"{BASE}/staging").status_code == 204
    assert olga.get(f"{BASE}/staging").status_code == 404


def test_bad_environments_are_refused_with_pointers(team):
    olga = team["olga"]
    refused = post_json(olga, BASE, {
        "name": "no spaces", "configuration": {"PATH": {"value": "/tmp", "target": "env"},
                                               "9lives": {"value": "x"}},
        "secrets": {"short": {"value": "abc"}, "LD_PRELOAD": {"value": "/tmp/x.so"},
                    "token": {"value": "long-enough", "target": "var"}}})
    assert refused.status_code == 422
    assert {p["pointer"] for p in refused.get_json()["details"]} == {
        "/name", "/configuration/PATH", "/configuration/9lives", "/secrets/short/value",
        "/secrets/LD_PRELOAD", "/secrets/token/scope"}
    assert "long-enough" not in refused.get_data(as_text=True)

    shapes = post_json(olga, BASE, {"name": "x", "colour": "red",
                                    "configuration": {"a": {"value": [1]}},
                                    "secrets": {"b": {"value": 5}}})
    assert shapes.status_code == 422
    pointers = {p["pointer"] for p in shapes.get_json()["details"]}
    assert "/colour" in pointers and "/secrets/b/value" in pointers
    assert any(p.startswith("/configuration/a/value") for p in pointers)

    assert post_json(olga, BASE, staging()).status_code == 201
    assert post_json(olga, BASE, staging(name="STAGING")).status_code == 409
    clash = send(olga, "PUT", f"{BASE}/staging/secrets/base_url",
                 {"value": "abcdef", "target": "env"})
    assert clash.status_code == 409
    bad_secret = send(olga, "PUT", f"{BASE}/staging/secrets/PYTHONPATH",
                      {"value": "abcdef", "target": "env"})
    assert bad_secret.status_code == 422
    assert [p["pointer"] for p in bad_secret.get_json()["details"]] == [""]
    removed = send(olga, "PATCH", f"{BASE}/staging", {"configuration": {"retries": None}})
    assert removed.status_code == 200
    assert "retries" not in removed.get_json()["configuration"]
    assert olga.get(f"{BASE}/nope").status_code == 404


def test_the_settings_page_shows_names_never_values(app, team):
    olga, bob = team["olga"], team["bob"]
    page = "/team/prod/-/environments"
    assert f'href="{page}"' in olga.get("/team/prod/-/settings").get_data(as_text=True)
    token = csrf(olga)
    made = olga.post(page, data={"name": "staging", "csrf_token": token})
    assert made.status_code == 303
    kept = olga.post(f"{page}/staging/secrets", data={
        "key": "API_TOKEN", "value": SECRET, "target": "env", "csrf_token": token})
    assert kept.status_code == 303
    value = olga.post(f"{page}/staging/values", data={
        "key": "replicas", "value": "3", "type": "number", "target": "var", "csrf_token": token})
    assert value.status_code == 303
    html = olga.get(page).get_data(as_text=True)
    assert "API_TOKEN" in html and SECRET not in html and "Set the secret" in html
    refused = olga.post(f"{page}/staging/secrets", data={
        "key": "PATH", "value": SECRET, "target": "env", "csrf_token": token})
    assert refused.status_code == 422 and SECRET not in refused.get_data(as_text=True)
    member_view = bob.get(page)
    assert member_view.status_code == 200
    assert "API_TOKEN" in member_view.get_data(as_text=True)
    assert "Set the secret" not in member_view.get_data(as_text=True)
    assert bob.post(f"{page}/staging/delete", data={"csrf_token": csrf(bob)}).status_code == 403
    shown = olga.get(f"{BASE}/staging").get_json()
    assert shown["configuration"]["replicas"]["value"] == 3
    assert olga.post(f"{page}/staging/delete", data={"csrf_token": token}).status_code == 303
    assert olga.get(f"{BASE}/staging").status_code == 404


def test_the_key_is_made_in_development_and_required_in_production(tmp_path):
    settings = {"CHAOSHUB_INSTANCE_PATH": str(tmp_path), "CHAOSHUB_ENV": "development"}
    made = run_secrets_keys(settings)
    assert made == run_secrets_keys(settings)  # kept, not made again
    assert len(base64.urlsafe_b64decode(made[0])) == 32
    assert (tmp_path / "run-secrets.key").stat().st_mode & 0o077 == 0
    given = base64.urlsafe_b64encode(b"k" * 32).decode()
    assert run_secrets_keys({**settings, "RUN_SECRETS_KEY": f"{given}, old"}) == [given, "old"]
    with pytest.raises(ConfigError, match="RUN_SECRETS_KEY is required in production"):
        run_secrets_keys({**settings, "CHAOSHUB_ENV": "production"})


def test_a_rotated_key_still_opens_what_the_old_one_sealed(app):
    old = base64.urlsafe_b64encode(b"o" * 32).decode()
    new = base64.urlsafe_b64encode(b"n" * 32).decode()
    with app.app_context():
        app.config["RUN_SECRETS_KEY"] = old
        sealed = secret_box.seal(SECRET, "here")
        app.config["RUN_SECRETS_KEY"] = f"{new},{old}"
        assert secret_box.open_sealed(sealed, "here") == SECRET
        assert secret_box.seal(SECRET, "here").split(":")[1] != sealed.split(":")[1]
        app.config["RUN_SECRETS_KEY"] = new
        with pytest.raises(secret_box.SecretUnreadable):
            secret_box.open_sealed(sealed, "here")


def test_the_masker_finds_secrets_as_given_and_encoded():
    masker = Masker([SECRET, ""])
    encoded = base64.b64encode(SECRET.encode()).decode()
    data = {"stdout": f"token={SECRET}\n", "url": "https://x/?t=s3cr3t-Value%2Fwith%2Bchars",
            SECRET: [encoded, 5, None], "nested": {"b64url": encoded.rstrip("=")}}
    masked = masker.data(data)
    assert SECRET not in json.dumps(masked) and encoded.rstrip("=") not in json.dumps(masked)
    assert masked["stdout"] == f"token={MASK}\n"
    assert masked[MASK] == [MASK, 5, None]
    assert not Masker([]) and Masker([]).data(data) is data


def test_changes_to_environments_are_audited_and_in_the_feed_without_values(team):
    mia, olga = team["mia"], team["olga"]
    assert send(mia, "POST", BASE, staging()).status_code == 201
    assert send(mia, "PUT", f"{BASE}/staging/secrets/API_TOKEN",
                {"value": OTHER_SECRET, "target": "env"}).status_code == 200
    assert send(mia, "DELETE", f"{BASE}/staging/secrets/password").status_code == 200
    assert send(mia, "DELETE", f"{BASE}/staging").status_code == 204
    log = olga.get("/api/v1/orgs/team/audit").get_json()["entries"]
    changes = [(e["event"], e["details"].get("secret")) for e in log
               if e["event"].startswith("environment.")]
    assert changes == [("environment.created", None), ("environment.secret_set", "API_TOKEN"),
                       ("environment.secret_removed", "password"),
                       ("environment.deleted", None)]
    feed = olga.get("/api/v1/orgs/team/activity").get_json()["entries"]
    assert "mia added the environment staging in prod" in [e["summary"] for e in feed]
    assert secret_free(log) and secret_free(feed)
