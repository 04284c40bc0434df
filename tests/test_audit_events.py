"""Account events in the audit log: sign-ins in every org of the account, a token's events in
the account's own org and the org of the workspace it is kept to."""

from __future__ import annotations

import json
import logging
import uuid

from click.testing import CliRunner

from chaoshub.auth import service as auth
from chaoshub.auth.schemas import ProviderProfile
from chaoshub.cli import main
from chaoshub.core import events
from chaoshub.core.claims import verify
from chaoshub.core.db import transaction
from chaoshub.core.errors import ServiceUnavailable
from chaoshub.core.models import utcnow
from chaoshub.core.web import SESSION_COOKIE
from chaoshub.dashboard import audit
from chaoshub.dashboard import service as dashboard
from tests.conftest import csrf, post_json, sign_in, signed_up_client
from tests.test_invitations import claim_for

FIRST_IP, SECOND_IP = "198.51.100.7", "203.0.113.9"


def auth_events(browser, org: str) -> list[dict]:
    response = browser.get(f"/api/v1/orgs/{org}/audit?event=auth.")
    assert response.status_code == 200, response.get_json()
    return response.get_json()["entries"]


def from_address(ip: str, secret: str) -> dict:
    return {"headers": {"Authorization": f"Bearer {secret}"},
            "environ_base": {"REMOTE_ADDR": ip}}


def test_sign_ins_reach_every_org_tokens_the_accounts_own_and_no_secret_does(
        app, monkeypatch, settings):
    olga = signed_up_client(app, "olga")
    assert post_json(olga, "/api/v1/orgs", {"name": "team"}).status_code == 201
    mary = signed_up_client(app, "mary")  # signed in before joining: not team's business
    post_json(olga, "/api/v1/orgs/team/members", {"username": "mary", "role": "member"})
    assert auth_events(olga, "team") == []

    assert sign_in(mary, "mary").status_code == 303
    cookie = mary.get_cookie(SESSION_COOKIE).value
    created = post_json(mary, "/api/v1/tokens", {"name": "ci", "scopes": ["read-only"]})
    token = created.get_json()
    api = app.test_client()
    for ip in (FIRST_IP, FIRST_IP, FIRST_IP, SECOND_IP, SECOND_IP):
        assert api.get("/api/v1/me", **from_address(ip, token["secret"])).status_code == 200
    assert mary.delete(f"/api/v1/tokens/{token['id']}",
                       headers={"X-CSRF-Token": csrf(mary)}).status_code == 204
    assert mary.post("/signout/everywhere",
                     data={"csrf_token": csrf(mary)}).status_code == 303

    # The team's log has its member's sign-ins; the token, kept to no workspace of the team,
    # is mary's own business.
    entries = auth_events(olga, "team")
    assert [e["event"] for e in entries] == ["auth.sign_in", "auth.sign_out_everywhere"]
    assert {e["actor"] for e in entries} == {"mary"}
    assert entries[0]["details"] == {"method": "password", "ip": "127.0.0.1"}
    ended = entries[1]["details"]["sessions_ended"]

    # The account's own personal org holds them all, its earlier sign-ins first.
    sign_in(mary, "mary")
    entries = auth_events(mary, "mary")
    kinds = [e["event"] for e in entries]
    first = kinds.index("auth.token_created")
    assert kinds[:first] == ["auth.sign_in"] * ended  # each sign-in opened a session it ended
    assert kinds[first:] == [
        "auth.token_created", "auth.token_new_ip", "auth.token_new_ip", "auth.token_revoked",
        "auth.sign_out_everywhere", "auth.sign_in"]
    details = [e["details"] for e in entries[first:]]
    assert details[0]["token_id"] == token["id"] and details[0]["hint"] == token["secret"][:9]
    assert details[0]["scopes"] == ["experiments:read", "executions:read", "orgs:read"]
    assert (details[1]["ip"], details[1]["previous_ip"]) == (FIRST_IP, None)
    assert (details[2]["ip"], details[2]["previous_ip"]) == (SECOND_IP, FIRST_IP)
    assert details[3] == {"token_id": token["id"], "name": "ci", "hint": token["secret"][:9]}

    assert "auth.token_created" not in olga.get("/team/-/audit.jsonl").text
    exported = olga.get("/team/-/audit.jsonl").text + mary.get("/mary/-/audit.jsonl").text
    assert "auth.token_created" in exported
    for secret in (token["secret"], cookie, mary.get_cookie(SESSION_COOKIE).value):
        assert secret not in exported

    for name, value in settings.items():
        monkeypatch.setenv(name, str(value))
    verified = CliRunner().invoke(main, ["audit", "verify"])
    assert verified.exit_code == 0, verified.output


def test_a_provider_sign_in_is_recorded_with_its_provider_and_address(app):
    profile = ProviderProfile(provider="github", subject="4242", username_hint="gina")
    with app.app_context():
        # The first one creates the account.
        grant = auth.sign_in_with_identity(profile, "198.51.100.7")
        auth.sign_in_with_identity(profile, "203.0.113.9")
        claim = auth.resolve_credentials(session_token=grant.token)
        entries = dashboard.audit_log(claim, grant.account.username, event="auth.")
    assert [(e.event, e.details) for e in entries] == [
        ("auth.sign_in", {"method": "github", "ip": "198.51.100.7"}),
        ("auth.sign_in", {"method": "github", "ip": "203.0.113.9"})]


def test_a_token_kept_to_a_teams_workspace_is_in_that_teams_log_too(app):
    olga = signed_up_client(app, "olga")
    assert post_json(olga, "/api/v1/orgs", {"name": "team"}).status_code == 201
    assert post_json(olga, "/api/v1/orgs/team/workspaces",
                     {"name": "prod", "visibility": "private"}).status_code == 201
    assert post_json(olga, "/api/v1/orgs", {"name": "other"}).status_code == 201
    mine = post_json(olga, "/api/v1/tokens", {"name": "laptop", "scopes": ["read-only"],
                                              "workspace": "olga/Personal"}).get_json()
    kept = post_json(olga, "/api/v1/tokens", {"name": "deploy", "scopes": ["cli"],
                                              "workspace": "team/prod"}).get_json()
    api = app.test_client()
    assert api.get("/api/v1/me", **from_address(FIRST_IP, kept["secret"])).status_code == 200
    assert olga.delete(f"/api/v1/tokens/{kept['id']}",
                       headers={"X-CSRF-Token": csrf(olga)}).status_code == 204

    team = [e for e in auth_events(olga, "team") if e["event"].startswith("auth.token")]
    assert [(e["event"], e["details"]["token_id"]) for e in team] == [
        ("auth.token_created", kept["id"]), ("auth.token_new_ip", kept["id"]),
        ("auth.token_revoked", kept["id"])]
    # The entry names the workspace; its id only routed the event.
    assert all(e["details"]["workspace"] == "team/prod" and "workspace_id" not in e["details"]
               for e in team)
    assert [e["event"] for e in auth_events(olga, "other")
            if e["event"].startswith("auth.token")] == []
    own = {e["details"]["token_id"] for e in auth_events(olga, "olga")
           if e["event"].startswith("auth.token")}
    assert own == {mine["id"], kept["id"]}


def test_signing_in_and_tokens_work_while_the_log_cannot_be_written(app, monkeypatch, caplog):
    olga = signed_up_client(app, "olga")
    before = auth_events(olga, "olga")

    def unavailable(*args, **kwargs):
        raise ServiceUnavailable("the dashboard database cannot be reached")

    monkeypatch.setattr(audit, "append", unavailable)
    browser = app.test_client()
    with caplog.at_level(logging.WARNING, logger="chaoshub.core.events"):
        assert sign_in(browser, "olga").status_code == 303
        assert browser.get("/api/v1/me").get_json()["username"] == "olga"
        created = post_json(browser, "/api/v1/tokens", {"name": "ci", "scopes": ["full"]})
        assert created.status_code == 201
        secret = created.get_json()["secret"]
        me = app.test_client().get("/api/v1/me", **from_address(FIRST_IP, secret))
        assert me.status_code == 200
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("(account.sign_in from auth) not handled by dashboard yet" in m for m in warned)
    assert secret not in caplog.text

    # The events waited in auth's outbox: once the log can be written, each arrives once.
    monkeypatch.undo()
    with app.app_context():
        subscription = next(s for s in events.subscriptions(app) if s.emitter == "auth")
        assert events.deliver(subscription) == 3
        assert events.deliver(subscription) == 0
    assert [e["event"] for e in auth_events(olga, "olga")[len(before):]] == [
        "auth.sign_in", "auth.token_created", "auth.token_new_ip"]


def account_event(type: str, actor: str | None, payload: dict) -> events.Event:
    return events.Event(id=str(uuid.uuid4()), type=type, occurred_at=utcnow(), actor=actor,
                        subject=events.Subject(kind="account", id=actor or ""), payload=payload)


def test_only_account_events_without_secrets_reach_the_log(app, caplog):
    with app.app_context():
        olga = claim_for("olga")
        account_id = verify(olga).sub
        dashboard.create_org(olga, "team")
        written = [account_event("account.sign_in", account_id, {"method": "password"})]
        refused = [
            account_event("account.member_added", account_id, {"username": "olga"}),  # forged
            account_event("account.token_created", account_id, {"secret": "anything"}),
            account_event("account.token_created", account_id, {"hint": "chub_" + "a" * 36}),
            account_event("account.sign_in", account_id, {"nested": {"password": "x"}}),
            account_event("account.sign_in", None, {}),
        ]
        for event in written + refused:
            with transaction("dashboard") as session:
                dashboard.audit_account_event(session, event)
        entries = dashboard.audit_log(olga, "team", event="auth.")
        logged = json.dumps([e.model_dump(mode="json") for e in entries])
    assert [e.event for e in entries] == ["auth.sign_in"]
    assert "anything" not in logged and "chub_aaaa" not in logged
    assert caplog.text.count("not written to the audit log") == len(refused)
    # Nor does dashboard ask auth for any other kind of event.
    assert "account.member_added" not in dashboard.ACCOUNT_EVENT_TYPES
