"""API tokens: created once, stored as a hash, scoped, restricted, expiring, revocable."""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from chaoshub.auth import secrets as token_secrets
from chaoshub.auth import service as auth
from chaoshub.auth.models import ApiToken
from chaoshub.core.db import transaction
from chaoshub.core.models import utcnow
from chaoshub.dashboard.tokens import PURPOSES, SCOPE_HELP
from tests.conftest import csrf, post_json, signed_up_client
from tests.experiment_data import journal

EXPERIMENTS = "/api/v1/orgs/alice/workspaces/Personal/experiments"


@pytest.fixture
def alice(app):
    return signed_up_client(app, "alice")


def make_token(browser, **body):
    body = {"name": "ci", "scopes": ["experiments:read"], **body}
    response = post_json(browser, "/api/v1/tokens", body)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def bearer(secret: str, scheme: str = "Bearer") -> dict:
    return {"Authorization": f"{scheme} {secret}"}


def test_a_token_is_shown_once_and_stored_as_a_hash(app, alice, caplog):
    with caplog.at_level(logging.DEBUG):
        created = make_token(alice, scopes=["full"], expires_in_days=30)
        secret = created["secret"]
        assert alice.get("/api/v1/me", headers=bearer(secret)).status_code == 200
    assert secret.startswith("chub_") and len(secret) == 41
    assert token_secrets.well_formed(secret)
    assert created["scopes"] == ["experiments:read", "experiments:write", "executions:read",
                                 "executions:write", "runs:execute", "orgs:read", "audit:read"]
    lifetime = (datetime.fromisoformat(created["expires_at"])
                - datetime.fromisoformat(created["created_at"]))
    assert abs(lifetime - timedelta(days=30)) < timedelta(minutes=1)
    listed = alice.get("/api/v1/tokens").get_json()["tokens"]
    assert [t["id"] for t in listed] == [created["id"]]
    assert "secret" not in listed[0] and secret not in str(listed)
    assert listed[0]["hint"] == secret[:9]
    with app.app_context(), transaction("auth") as session:
        row = session.scalar(select(ApiToken))
        stored = " ".join(str(v) for v in vars(row).values())
        assert secret not in stored
        assert row.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in caplog.text


def test_a_bearer_token_becomes_a_claim_with_exactly_its_scopes(alice):
    secret = make_token(alice, scopes=["experiments:read", "executions:write"])["secret"]
    for scheme in ("Bearer", "bearer", "BEARER"):
        me = alice.get("/api/v1/me", headers=bearer(secret, scheme))
        assert me.status_code == 200
    assert me.get_json()["credential"] == "token"
    assert me.get_json()["scopes"] == ["experiments:read", "executions:write"]
    assert me.get_json()["username"] == "alice"
    session_me = alice.get("/api/v1/me").get_json()
    assert session_me["credential"] == "session" and "runs:execute" in session_me["scopes"]


def test_me_needs_a_credential(client):
    response = client.get("/api/v1/me")
    assert response.status_code == 401 and response.headers["WWW-Authenticate"] == "Bearer"


def test_a_missing_scope_is_named(app, alice, sample_experiment):
    read_only = make_token(alice, scopes=["read-only"])["secret"]
    anonymous_browser = app.test_client()
    denied = anonymous_browser.post(EXPERIMENTS, json=sample_experiment,
                                    headers=bearer(read_only))
    assert denied.status_code == 403
    assert "experiments:write" in denied.get_json()["message"]

    writer = make_token(alice, scopes=["experiments:read", "experiments:write"])["secret"]
    created = anonymous_browser.post(EXPERIMENTS, json=sample_experiment, headers=bearer(writer))
    assert created.status_code == 201  # bearer requests need no CSRF token
    no_read = make_token(alice, scopes=["executions:write"])["secret"]
    read = anonymous_browser.get(created.headers["Location"], headers=bearer(no_read))
    assert read.status_code == 403 and "experiments:read" in read.get_json()["message"]


def test_a_token_restricted_to_a_workspace_stays_there(app, alice, sample_experiment):
    secret = make_token(alice, scopes=["full"], workspace="ALICE/personal")["secret"]
    listed = alice.get("/api/v1/tokens").get_json()["tokens"][0]
    assert listed["workspace"] == "alice/Personal"
    browser = app.test_client()
    assert browser.post(EXPERIMENTS, json=sample_experiment,
                        headers=bearer(secret)).status_code == 201
    elsewhere = browser.post("/api/v1/orgs/alice/workspaces/Public/experiments",
                             json=sample_experiment, headers=bearer(secret))
    assert elsewhere.status_code == 403
    assert "restricted" in elsewhere.get_json()["message"]


def test_an_expired_token_is_refused(app, alice, monkeypatch):
    from chaoshub.auth import service

    created = make_token(alice, expires_in_days=1)
    browser = app.test_client()
    assert browser.get("/api/v1/me", headers=bearer(created["secret"])).status_code == 200
    assert browser.get("/api/v1/me", headers=bearer(created["secret"])).status_code == 200
    # The resolved token now sits in the cache: its expiry is checked on every request anyway.
    later = utcnow() + timedelta(days=1, seconds=1)
    monkeypatch.setattr(service, "utcnow", lambda: later)
    refused = browser.get("/api/v1/me", headers=bearer(created["secret"]))
    assert refused.status_code == 401
    assert alice.get("/api/v1/tokens").get_json()["tokens"][0]["expired"] is True


def test_revocation_takes_effect_on_the_next_request(app, alice):
    created = make_token(alice)
    browser = app.test_client()
    assert browser.get("/api/v1/me", headers=bearer(created["secret"])).status_code == 200
    # Read again: from the copy this process keeps of the token, decoded.
    assert browser.get("/api/v1/me", headers=bearer(created["secret"])).status_code == 200
    response = alice.delete(f"/api/v1/tokens/{created['id']}",
                            headers={"X-CSRF-Token": csrf(alice)})
    assert response.status_code == 204
    assert browser.get("/api/v1/me", headers=bearer(created["secret"])).status_code == 401
    assert alice.get("/api/v1/tokens").get_json()["tokens"] == []
    again = alice.delete(f"/api/v1/tokens/{created['id']}", headers={"X-CSRF-Token": csrf(alice)})
    assert again.status_code == 404


def test_nobody_else_can_revoke_or_see_my_tokens(app, alice):
    created = make_token(alice)
    bob = signed_up_client(app, "bob")
    assert bob.get("/api/v1/tokens").get_json()["tokens"] == []
    assert bob.delete(f"/api/v1/tokens/{created['id']}",
                      headers={"X-CSRF-Token": csrf(bob)}).status_code == 404


def test_tokens_cannot_make_tokens(app, alice):
    secret = make_token(alice, scopes=["full"])["secret"]
    response = app.test_client().post("/api/v1/tokens", headers=bearer(secret),
                                      json={"name": "more", "scopes": ["full"]})
    assert response.status_code == 403


@pytest.mark.parametrize("body,field", [
    ({"name": "", "scopes": ["full"]}, "name"),
    ({"name": "x", "scopes": []}, "scopes"),
    ({"name": "x", "scopes": ["root"]}, "scopes"),
    ({"name": "x", "scopes": ["full"], "expires_in_days": 0}, "expires_in_days"),
    ({"name": "x", "scopes": ["full"], "expires_in_days": 5000}, "expires_in_days"),
    ({"name": "x", "scopes": ["full"], "workspace": "bob/Personal"}, "workspace"),
    ({"name": "x", "scopes": ["full"], "workspace": "no-slash"}, "workspace"),
])
def test_bad_token_requests_say_which_field(alice, body, field):
    response = post_json(alice, "/api/v1/tokens", body)
    assert response.status_code == 422
    assert "/" + field in {d["pointer"] for d in response.get_json()["details"]}


@pytest.mark.parametrize("body,where", [
    ({"name": "x"}, "/scopes"),
    ({"name": "x", "scopes": "full"}, "/scopes"),
    ({"name": "x", "scopes": ["full", 3]}, "/scopes/1"),
    ({"name": "x", "scopes": ["full"], "expires_in_days": "9"}, "/expires_in_days"),
    ({"name": "x", "scopes": ["full"], "owner": "me"}, "/owner"),
])
def test_malformed_token_requests_are_422_with_the_pointer(alice, body, where):
    response = post_json(alice, "/api/v1/tokens", body)
    assert response.status_code == 422
    assert [d["pointer"] for d in response.get_json()["details"]] == [where]


def test_a_token_request_that_is_not_an_object_is_400(alice):
    assert post_json(alice, "/api/v1/tokens", ["full"]).status_code == 400


def test_last_use_is_recorded_with_the_address(app, alice):
    created = make_token(alice)
    app.test_client().get("/api/v1/me", headers=bearer(created["secret"]),
                          environ_base={"REMOTE_ADDR": "10.1.2.3"})
    listed = alice.get("/api/v1/tokens").get_json()["tokens"][0]
    assert listed["last_used_ip"] == "10.1.2.3"
    assert listed["last_used_at"] is not None


def test_a_server_giving_no_address_records_a_use_once_a_minute(app, alice):
    # A Unix socket, say: no address to compare, and still no write on every call.
    created = make_token(alice)
    client = app.test_client()

    def last_use():
        client.get("/api/v1/me", headers=bearer(created["secret"]),
                   environ_base={"REMOTE_ADDR": ""}).get_json()
        return alice.get("/api/v1/tokens").get_json()["tokens"][0]["last_used_at"]

    first = last_use()
    assert first is not None
    assert last_use() == first


def test_failed_token_authentication_is_rate_limited(app, alice):
    good = make_token(alice)["secret"]
    browser = app.test_client()
    wrong = token_secrets.new_token()
    answers = [browser.get("/api/v1/me", headers=bearer(wrong)).status_code for _ in range(30)]
    assert set(answers) == {401}
    limited = browser.get("/api/v1/me", headers=bearer(wrong))
    assert limited.status_code == 429
    assert limited.get_json()["error"] == "rate_limited"
    assert int(limited.headers["Retry-After"]) > 0
    # Other addresses are not affected.
    other = browser.get("/api/v1/me", headers=bearer(good),
                        environ_base={"REMOTE_ADDR": "10.9.9.9"})
    assert other.status_code == 200


def test_the_cli_makes_tokens_for_operators(app, alice, settings, monkeypatch):
    from chaoshub.cli import main

    for key, value in settings.items():
        monkeypatch.setenv(key, str(value))
    result = CliRunner().invoke(main, ["token", "create", "--username", "alice", "--name", "ci",
                                       "--scopes", "experiments:read,experiments:write"])
    assert result.exit_code == 0, result.output
    secret = result.stdout.strip().splitlines()[-1]
    assert token_secrets.well_formed(secret)
    me = app.test_client().get("/api/v1/me", headers=bearer(secret)).get_json()
    assert me["scopes"] == ["experiments:read", "experiments:write"]
    unknown = CliRunner().invoke(main, ["token", "create", "--username", "nobody", "--name", "x",
                                        "--scopes", "full"])
    assert unknown.exit_code == 1 and "no account named" in unknown.output


def test_the_tokens_page_creates_lists_and_revokes(app, alice):
    page = alice.get("/settings/tokens")
    assert page.status_code == 200 and "No tokens yet" in page.get_data(as_text=True)
    created = alice.post("/settings/tokens", data={
        "csrf_token": csrf(alice), "name": "laptop", "scopes": ["experiments:read"],
        "expires_in_days": "7"})
    html = created.get_data(as_text=True)
    assert created.status_code == 201 and "shown this once" in html
    assert created.headers["Cache-Control"] == "no-store"
    token = alice.get("/api/v1/tokens").get_json()["tokens"][0]
    revoked = alice.post(f"/settings/tokens/{token['id']}/revoke",
                         data={"csrf_token": csrf(alice)})
    assert revoked.status_code == 303
    assert alice.get("/api/v1/tokens").get_json()["tokens"] == []


def test_secrets_are_well_formed_and_checked():
    secret = token_secrets.new_token()
    assert token_secrets.well_formed(secret)
    flipped = secret[:-7] + ("A" if secret[-7] != "A" else "B") + secret[-6:]
    assert not token_secrets.well_formed(flipped)
    assert not token_secrets.well_formed("chub_short")
    assert not token_secrets.well_formed("ghp_" + secret[4:])


def test_behind_a_trusted_proxy_the_forwarded_address_counts(settings):
    from chaoshub import create_app

    app = create_app({**settings, "PROXY_HOPS": 1})
    alice = signed_up_client(app, "alice")
    secret = make_token(alice)["secret"]
    app.test_client().get("/api/v1/me", headers={**bearer(secret),
                                                 "X-Forwarded-For": "203.0.113.7"})
    assert alice.get("/api/v1/tokens").get_json()["tokens"][0]["last_used_ip"] == "203.0.113.7"


def test_tokens_page_by_signed_cursor(app, alice):
    made = [make_token(alice, name=f"ci-{n}", scopes=["experiments:read"]) for n in range(5)]
    assert len(made) == 5
    seen, cursor = [], None
    while True:
        page = alice.get("/api/v1/tokens?limit=2" + (f"&cursor={cursor}" if cursor else "")).json
        assert len(page["tokens"]) <= 2
        seen += [t["id"] for t in page["tokens"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    whole = [t["id"] for t in alice.get("/api/v1/tokens?limit=100").json["tokens"]]
    assert seen == whole and len(set(seen)) == 5
    cursor = alice.get("/api/v1/tokens?limit=1").json["next_cursor"]
    bob = signed_up_client(app, "bob")
    assert bob.get(f"/api/v1/tokens?cursor={cursor}").status_code == 400
    assert alice.get(f"/api/v1/activity?cursor={cursor}").status_code == 400
    assert alice.get("/api/v1/tokens?limit=101").status_code == 400


def test_a_cli_token_publishes_experiments_and_their_runs(app, alice, sample_experiment):
    created = make_token(alice, scopes=["cli"])
    assert created["scopes"] == ["experiments:read", "experiments:write", "executions:read",
                                 "executions:write"]
    assert make_token(alice, scopes=["ci"])["scopes"] == created["scopes"] + ["runs:execute"]
    api = app.test_client()
    published = api.post(EXPERIMENTS, json=sample_experiment, headers=bearer(created["secret"]))
    assert published.status_code == 201, published.get_json()
    experiment_id = published.get_json()["id"]
    run = api.post(f"/api/v1/experiments/{experiment_id}/executions", json=journal(),
                   headers=bearer(created["secret"]))
    assert run.status_code == 201, run.get_json()


def test_the_token_form_offers_purposes_and_defaults_to_reporting_runs(alice):
    html = alice.get("/settings/tokens").get_data(as_text=True)
    for label in ("Report runs from the CLI", "Read only", "Run from CI"):
        assert label in html
    assert 'name="preset" value="cli" data-scopes="experiments:read experiments:write ' \
           'executions:read executions:write" checked' in html
    for scope in ("experiments:write", "executions:write"):
        assert f'value="{scope}" checked' in html
    assert 'value="runs:execute" checked' not in html
    assert "start runs on the hub" in html  # each scope says what it allows


@pytest.mark.parametrize(("preset", "expected"), [
    ("cli", ["experiments:read", "experiments:write", "executions:read", "executions:write"]),
    ("read-only", ["experiments:read", "executions:read", "orgs:read"]),
    ("ci", ["experiments:read", "experiments:write", "executions:read", "executions:write",
            "runs:execute"]),
    ("custom", ["audit:read"]),
])
def test_a_purpose_submitted_without_javascript_is_expanded_server_side(alice, preset, expected):
    # Without JavaScript the boxes keep their first ticks: the purpose chosen decides.
    created = alice.post("/settings/tokens", data={
        "csrf_token": csrf(alice), "name": "laptop", "preset": preset,
        "scopes": ["audit:read"]})
    assert created.status_code == 201
    assert alice.get("/api/v1/tokens").get_json()["tokens"][0]["scopes"] == expected


def test_an_unknown_purpose_is_a_field_error_not_a_token(alice):
    answer = alice.post("/settings/tokens", data={
        "csrf_token": csrf(alice), "name": "laptop", "preset": "everything",
        "scopes": ["full"]})
    assert answer.status_code == 422
    assert "choose one of the purposes" in answer.get_data(as_text=True)
    assert alice.get("/api/v1/tokens").get_json()["tokens"] == []


def test_every_scope_is_explained_on_the_form():
    assert set(SCOPE_HELP) == set(auth.SCOPES)
    assert set(PURPOSES) <= set(auth.SCOPE_PRESETS)


def test_the_tokens_page_title_is_plain_text(app):
    alice = signed_up_client(app, "alice")
    html = alice.get("/settings/tokens").get_data(as_text=True)
    assert "<title>API tokens · ChaosHub</title>" in html


def test_a_token_revoked_while_a_request_loads_it_is_not_cached_valid(app, alice, monkeypatch):
    from chaoshub.core.cache import cache

    created = make_token(alice)
    loaded = auth._load_token

    def revoked_meanwhile(token_hash):
        found = loaded(token_hash)
        # The revocation commits (and forgets the entry) after this request read the token.
        with transaction("auth") as session:
            session.get(ApiToken, created["id"]).revoked_at = utcnow()
        cache().forget(auth._token_key(token_hash))
        return found

    browser = app.test_client()
    # Used once already from here: no use is recorded (nor the entry forgotten) again.
    assert browser.get("/api/v1/me", headers=bearer(created["secret"])).status_code == 200
    with app.app_context():
        cache().forget(auth._token_key(token_secrets.token_hash(created["secret"])))
    monkeypatch.setattr(auth, "_load_token", revoked_meanwhile)
    # Read before the revocation committed: this one request may pass.
    assert browser.get("/api/v1/me", headers=bearer(created["secret"])).status_code == 200
    monkeypatch.setattr(auth, "_load_token", loaded)
    # The next must not find it cached as valid.
    assert browser.get("/api/v1/me", headers=bearer(created["secret"])).status_code == 401
