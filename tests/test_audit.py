"""The audit log: what it records, who reads it, its export, and tamper detection."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import select, update

from chaoshub.cli import main
from chaoshub.core.db import transaction
from chaoshub.core.errors import Forbidden, NotFound
from chaoshub.dashboard import service as dashboard
from chaoshub.dashboard.audit_exports import readable_details
from chaoshub.dashboard.models import AuditEntry
from tests.conftest import post_json, signed_up_client
from tests.test_invitations import claim_for


@pytest.fixture
def hub(app):
    with app.app_context():
        yield claim_for


def test_security_events_are_chained_per_org(hub):
    olga = hub("olga")
    hub("mary")
    dashboard.create_org(olga, "team")
    dashboard.create_workspace(olga, "team", "prod", "private")
    dashboard.update_workspace(olga, "team", "prod", visibility="public")
    dashboard.add_member(olga, "team", "mary", "viewer")
    dashboard.change_member_role(olga, "team", "mary", "member")
    link = dashboard.create_invitation(olga, "team")
    dashboard.revoke_invitation(olga, "team", link.invitation.id)
    dashboard.remove_member(olga, "team", "mary")
    dashboard.update_org(olga, "team", name="crew", description="We break things.")

    entries = dashboard.audit_log(olga, "crew")
    assert [e.event for e in entries] == [
        "org.created", "workspace.created", "workspace.visibility_changed", "member.added",
        "member.role_changed", "invitation.created", "invitation.revoked", "member.removed",
        "org.renamed", "org.settings_changed"]
    assert entries[2].details == {"workspace": "prod", "from": "private", "to": "public"}
    assert entries[0].prev_hash == "" and all(
        later.prev_hash == earlier.hash
        for earlier, later in zip(entries, entries[1:], strict=False))
    assert [e.event for e in dashboard.audit_log(olga, "crew", event="member.")] == [
        "member.added", "member.role_changed", "member.removed"]
    assert dashboard.verify_audit_chains() == []


def test_only_owners_read_it_and_nobody_writes_into_it(hub):
    olga, mary, otto = hub("olga"), hub("mary"), hub("otto")
    dashboard.create_org(olga, "team")
    dashboard.add_member(olga, "team", "mary", "maintainer")
    with pytest.raises(Forbidden):
        dashboard.audit_log(mary, "team")
    with pytest.raises(NotFound):
        dashboard.audit_log(otto, "team")
    assert not hasattr(dashboard, "record_audit")  # entries come from dashboard's own writes
    assert [e.event for e in dashboard.audit_log(olga, "team")] == ["org.created", "member.added"]


def test_a_deleted_org_keeps_its_log_and_tampering_is_detected(app, hub, monkeypatch,
                                                               settings):
    olga = hub("olga")
    kept = dashboard.create_org(olga, "team")
    dashboard.create_workspace(olga, "team", "prod")
    dashboard.delete_org(olga, "team")
    other = dashboard.create_org(olga, "other")
    dashboard.create_workspace(olga, "other", "one")
    dashboard.create_workspace(olga, "other", "two")

    for name, value in settings.items():
        monkeypatch.setenv(name, str(value))
    runner = CliRunner()
    intact = runner.invoke(main, ["audit", "verify"])
    assert intact.exit_code == 0, intact.output

    with transaction("dashboard") as session:
        ids = list(session.scalars(select(AuditEntry.id).where(AuditEntry.org_id == other.id)
                                   .order_by(AuditEntry.id)))
        events = list(session.scalars(select(AuditEntry.event)
                                      .where(AuditEntry.org_id == kept.id)))
        session.execute(update(AuditEntry).where(AuditEntry.id == ids[1])
                        .values(details=json.dumps({"workspace": "sneaky"})))
    assert events[-1] == "org.deleted"

    broken = runner.invoke(main, ["audit", "verify"])
    assert broken.exit_code == 1
    assert f"other: audit entry {ids[1]} is broken" in broken.output
    assert "changed" in broken.output and "team" not in broken.output
    assert runner.invoke(main, ["audit", "verify", "--org", "other"]).exit_code == 1

    with transaction("dashboard") as session:  # put it back, then remove an entry instead
        session.execute(update(AuditEntry).where(AuditEntry.id == ids[1]).values(
            details=json.dumps({"workspace": "one", "visibility": "private",
                                "outsider_executions": "none"}, sort_keys=True)))
    assert runner.invoke(main, ["audit", "verify", "--org", "other"]).exit_code == 0
    with transaction("dashboard") as session:
        session.delete(session.get(AuditEntry, ids[1]))
    removed = runner.invoke(main, ["audit", "verify", "--org", "other"])
    assert removed.exit_code == 1 and f"entry {ids[2]} is broken" in removed.output
    assert "removed" in removed.output


def test_owners_page_and_json_lines_export(app):
    olga, mary = signed_up_client(app, "olga"), signed_up_client(app, "mary")
    post_json(olga, "/api/v1/orgs", {"name": "team"})
    post_json(olga, "/api/v1/orgs/team/members", {"username": "mary", "role": "member"})

    page = olga.get("/team/-/audit")
    assert page.status_code == 200 and page.text.count('data-testid="audit-entry"') == 2
    filtered = olga.get("/team/-/audit?event=member.&since=2000-01-01&until=2999-01-01")
    assert filtered.text.count('data-testid="audit-entry"') == 1
    assert olga.get("/team/-/audit?since=2999-01-01").text.count('audit-entry') == 0
    assert olga.get("/team/-/audit?since=yesterday").status_code == 400

    export = olga.get("/team/-/audit.jsonl")
    lines = [json.loads(line) for line in export.text.splitlines()]
    assert export.mimetype == "application/jsonl"
    assert [line["event"] for line in lines] == ["org.created", "member.added"]
    assert lines[1]["prev_hash"] == lines[0]["hash"]
    api = olga.get("/api/v1/orgs/team/audit?format=jsonl")
    assert api.text == export.text
    assert olga.get("/api/v1/orgs/team/audit").json["entries"][1]["details"]["username"] == "mary"

    assert mary.get("/team/-/audit").status_code == 403
    assert mary.get("/api/v1/orgs/team/audit").status_code == 403
    assert app.test_client().get("/api/v1/orgs/team/audit").status_code == 404


def test_the_json_log_pages_by_signed_cursor(app):
    olga = signed_up_client(app, "olga")
    post_json(olga, "/api/v1/orgs", {"name": "team"})
    post_json(olga, "/api/v1/orgs", {"name": "other"})
    for name in ("mary", "nina", "paul"):
        signed_up_client(app, name)
        post_json(olga, "/api/v1/orgs/team/members", {"username": name, "role": "member"})
    url = "/api/v1/orgs/team/audit"
    whole = [json.loads(line)["id"] for line in olga.get(f"{url}?format=jsonl").text.splitlines()]
    assert len(whole) > 2
    seen, cursor = [], None
    while True:
        page = olga.get(f"{url}?limit=2" + (f"&cursor={cursor}" if cursor else "")).json
        assert len(page["entries"]) <= 2
        seen += [e["id"] for e in page["entries"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == whole
    cursor = olga.get(f"{url}?limit=1").json["next_cursor"]
    assert olga.get(f"/api/v1/orgs/other/audit?cursor={cursor}").status_code == 400
    assert olga.get(f"{url}?event=member.&cursor={cursor}").status_code == 400
    assert olga.get(f"/api/v1/activity?cursor={cursor}").status_code == 400
    assert olga.get(f"{url}?limit=101").status_code == 400


def test_details_read_as_text_on_the_page_and_as_recorded_in_the_export(app):
    olga = signed_up_client(app, "olga")
    made = post_json(olga, "/api/v1/tokens", {"name": "laptop", "scopes": ["read-only"]})
    assert made.status_code == 201
    page = olga.get("/olga/-/audit?event=auth.token").text
    assert "<dt>Scopes</dt><dd>experiments:read, executions:read, orgs:read</dd>" in page
    assert "<dt>Token ID</dt>" in page and "<dt>Expires</dt>" in page
    assert " UTC</dd>" in page
    for python in ("[&#39;", "None", "token_id"):
        assert python not in page
    export = json.loads(olga.get("/olga/-/audit.jsonl?event=auth.token").text)
    assert export["details"]["scopes"] == ["experiments:read", "executions:read", "orgs:read"]


@pytest.mark.parametrize(("details", "text"), [
    ({"scopes": ["a:read", "b:write"]}, [("Scopes", "a:read, b:write")]),
    ({"scopes": []}, [("Scopes", "none")]),
    ({"previous_ip": None, "ip": "203.0.113.9"}, [("Address", "203.0.113.9")]),
    ({"sessions_ended": 2, "dry": False}, [("Sessions ended", "2"), ("Dry", "no")]),
    ({"expires_at": "2027-03-04T21:05:06.123456+01:00"}, [("Expires", "2027-03-04 20:05 UTC")]),
    ({"changes": {"max_seconds": {"from": None, "to": 60}}},
     [("Changes", "max seconds from none to 60")]),
    ({"workspace_ids": ["w1", "w2"]}, [("Workspace IDs", "w1, w2")]),
    ({}, []),
])
def test_details_are_humanised(details, text):
    assert readable_details(details) == text
