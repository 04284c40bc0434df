"""Who reads what: findings 3, 4, 5, 7 and 12 of the security review (issue 11).

3: feeds show runs only as far as their workspace shows executions to the reader; 4: org-level
reads need their own scopes, and a workspace token sees nothing outside its workspace; 5: an
invitation made by an owner lapses when they stop being one; 7: API tokens neither list tokens
nor answer invitations; 12: a member who leaves loses their own entries of what they no longer
read.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import update

from chaoshub.core.db import transaction
from chaoshub.dashboard.models import OrgMember
from tests.conftest import csrf, post_json, signed_up_client
from tests.experiment_data import create, journal, make_token


def bearer(secret: str) -> dict:
    return {"Authorization": f"Bearer {secret}"}


def entries(reader, path: str) -> list[dict]:
    response = reader.get(path)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["entries"]


def runs(feed: list[dict]) -> list[dict]:
    return [e for e in feed if e["kind"] == "execution.published"]


# 3. Feeds apply what outsiders may see of executions ------------------------------------------


@pytest.fixture
def team(app):
    """olga's org "team": a public workspace per setting of what outsiders see of executions,
    each with one experiment and one published run."""
    olga = signed_up_client(app, "olga")
    assert post_json(olga, "/api/v1/orgs", {"name": "team"}).status_code == 201
    for shown in ("none", "status", "full"):
        made = post_json(olga, "/api/v1/orgs/team/workspaces", {
            "name": shown, "visibility": "public", "outsider_executions": shown})
        assert made.status_code == 201, made.get_json()
        document = create(olga, "team", shown)
        published = olga.post(f"/api/v1/experiments/{document['id']}/executions",
                              json=journal(), headers={"X-CSRF-Token": csrf(olga)})
        assert published.status_code == 201, published.get_json()
    return olga


def test_feed_hides_runs_where_outsiders_see_no_executions(app, team):
    otto = signed_up_client(app, "otto")
    for reader in (app.test_client(), otto):
        org_feed = runs(entries(reader, "/api/v1/orgs/team/activity"))
        assert "none" not in [e["workspace_name"] for e in org_feed]
        assert runs(entries(reader, "/api/v1/orgs/team/workspaces/none/activity")) == []
        page = reader.get("/team/none")
        assert page.status_code == 200 and "published a run" not in page.text
    # The members still see every run, with who published it.
    assert {e["workspace_name"] for e in runs(entries(team, "/api/v1/orgs/team/activity"))} == {
        "none", "status", "full"}
    # The feed sets the actor apart (a link, bold): the words read on, tags aside.
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", team.get("/team/none").text))
    assert "olga published a run" in text


def test_feed_hides_the_publisher_where_outsiders_see_status_only(app, team):
    for reader in (app.test_client(), signed_up_client(app, "otto")):
        for path in ("/api/v1/orgs/team/activity", "/api/v1/orgs/team/workspaces/status/activity"):
            seen = {e["workspace_name"]: e for e in runs(entries(reader, path))}
            status = seen["status"]
            assert "olga" not in str(status) and status["actor_id"] == ""
            assert status["summary"].endswith(": deviated")
            if "full" in seen:
                assert seen["full"]["actor"] == "olga"
                assert seen["full"]["summary"].startswith("olga published a run")
    mine = runs(entries(team, "/api/v1/orgs/team/workspaces/status/activity"))
    assert mine[0]["actor"] == "olga" and mine[0]["summary"].startswith("olga published")


def test_a_token_without_executions_read_sees_no_runs_in_feeds(app, team):
    secret = make_token(team, ["experiments:read", "orgs:read"])
    feed = app.test_client().get("/api/v1/orgs/team/activity", headers=bearer(secret))
    assert feed.status_code == 200
    assert runs(feed.get_json()["entries"]) == [] and feed.get_json()["entries"]


# 4. Org-level reads have their own scopes ----------------------------------------------------

ORG_READS = ("/api/v1/orgs", "/api/v1/orgs/alice", "/api/v1/orgs/team",
             "/api/v1/orgs/team/workspaces", "/api/v1/orgs/team/members",
             "/api/v1/orgs/team/members/alice", "/api/v1/orgs/team/workspaces/ws/members",
             "/api/v1/orgs/team/activity", "/api/v1/activity")
AUDIT = "/api/v1/orgs/team/audit"


@pytest.fixture
def alice(app):
    alice = signed_up_client(app, "alice")
    assert post_json(alice, "/api/v1/orgs", {"name": "team"}).status_code == 201
    assert post_json(alice, "/api/v1/orgs/team/workspaces", {"name": "ws"}).status_code == 201
    assert post_json(alice, "/api/v1/orgs/team/workspaces", {"name": "other"}).status_code == 201
    return alice


def test_org_reads_need_orgs_read_scope(app, alice):
    api = app.test_client()
    for scopes in (["experiments:read"], ["runs:execute"], ["read-only"], ["orgs:read"]):
        secret = make_token(alice, scopes)
        expected = 200 if scopes in (["read-only"], ["orgs:read"]) else 403
        for path in ORG_READS:
            status = api.get(path, headers=bearer(secret)).status_code
            assert status == expected, (scopes, path, status)
        refused = api.get(AUDIT, headers=bearer(secret))
        assert refused.status_code == 403 and "audit:read" in refused.get_json()["message"]
    audit_only = make_token(alice, ["audit:read"])
    assert api.get(AUDIT, headers=bearer(audit_only)).status_code == 200
    assert api.get("/api/v1/orgs/team/members", headers=bearer(audit_only)).status_code == 403
    full = make_token(alice, ["full"])
    for path in (*ORG_READS, AUDIT):
        assert api.get(path, headers=bearer(full)).status_code == 200, path
        assert alice.get(path).status_code == 200, path  # a session keeps all its rights
    me = alice.get("/api/v1/me").get_json()
    assert {"orgs:read", "audit:read"} <= set(me["scopes"])


def test_a_workspace_token_sees_nothing_outside_its_workspace(app, alice):
    made = post_json(alice, "/api/v1/tokens", {"name": "one", "scopes": ["full"],
                                               "workspace": "team/ws"})
    api, headers = app.test_client(), bearer(made.get_json()["secret"])
    orgs = api.get("/api/v1/orgs", headers=headers).get_json()["orgs"]
    assert [(o["name"], [w["name"] for w in o["workspaces"]]) for o in orgs] == [("team", ["ws"])]
    assert api.get("/api/v1/orgs/team", headers=headers).status_code == 200
    assert api.get("/api/v1/orgs/team/workspaces/ws/members", headers=headers).status_code == 200
    for path, status in (("/api/v1/orgs/alice", 404), ("/api/v1/orgs/alice/workspaces", 404),
                         ("/api/v1/orgs/team/members", 403), (AUDIT, 403),
                         ("/api/v1/orgs/team/workspaces/other/members", 404)):
        assert api.get(path, headers=headers).status_code == status, path


# 5. Invitation links lapse with their maker's rights ------------------------------------------


@pytest.fixture
def olga(app):
    olga = signed_up_client(app, "olga")
    assert post_json(olga, "/api/v1/orgs", {"name": "team"}).status_code == 201
    return olga


def add(olga, username: str, role: str) -> None:
    made = post_json(olga, "/api/v1/orgs/team/members", {"username": username, "role": role})
    assert made.status_code == 201, made.get_json()


def link(browser, role: str = "owner") -> str:
    made = post_json(browser, "/api/v1/orgs/team/invitations", {"role": role})
    assert made.status_code == 201, made.get_json()
    return made.get_json()["token"]


def accept(browser, token: str):
    return post_json(browser, f"/api/v1/invitations/{token}/accept", {})


def test_invitation_link_of_a_removed_owner_is_refused(app, olga):
    bob = signed_up_client(app, "bob")
    add(olga, "bob", "owner")
    token = link(bob)
    assert olga.delete("/api/v1/orgs/team/members/bob",
                       headers={"X-CSRF-Token": csrf(olga)}).status_code == 204
    assert olga.get("/api/v1/orgs/team/invitations").get_json()["invitations"] == []
    assert accept(bob, token).status_code == 404
    assert olga.get("/api/v1/orgs/team/members/bob").status_code == 404


def test_invitation_link_of_a_demoted_owner_is_refused(app, olga):
    bob, mary = signed_up_client(app, "bob"), signed_up_client(app, "mary")
    add(olga, "bob", "owner")
    token = link(bob)
    demoted = olga.patch("/api/v1/orgs/team/members/bob", json={"role": "member"},
                         headers={"X-CSRF-Token": csrf(olga)})
    assert demoted.status_code == 200
    assert olga.get("/api/v1/orgs/team/invitations").get_json()["invitations"] == []
    assert accept(mary, token).status_code == 404
    assert olga.get("/api/v1/orgs/team/members/mary").status_code == 404


def test_invitation_link_is_checked_against_its_makers_role_when_accepted(app, olga):
    bob, mary = signed_up_client(app, "bob"), signed_up_client(app, "mary")
    add(olga, "bob", "owner")
    token = link(bob)
    # A demotion that left the link pending (made before links were revoked with it).
    bob_id = bob.get("/api/v1/me").get_json()["id"]
    with app.app_context(), transaction("dashboard") as session:
        session.execute(update(OrgMember).where(OrgMember.account_id == bob_id)
                        .values(role="viewer"))
    assert accept(mary, token).status_code == 404
    assert olga.get("/api/v1/orgs/team/members/mary").status_code == 404


# 7. Tokens and memberships are managed from a session ----------------------------------------


def test_tokens_cannot_manage_tokens_or_accept_invitations(app, olga):
    mary = signed_up_client(app, "mary")
    secret = make_token(mary, ["full"])
    api = app.test_client()
    listed = api.get("/api/v1/tokens", headers=bearer(secret))
    assert listed.status_code == 403 and "session" in listed.get_json()["message"]
    assert secret[:9] not in listed.text
    token = link(olga, "member")
    accepted = api.post(f"/api/v1/invitations/{token}/accept", headers=bearer(secret))
    assert accepted.status_code == 403 and "session" in accepted.get_json()["message"]
    invited = post_json(olga, "/api/v1/orgs/team/invitations", {"username": "mary"})
    declined = api.post(f"/api/v1/invitations/{invited.get_json()['id']}/decline",
                        headers=bearer(secret))
    assert declined.status_code == 403
    mine = api.get("/api/v1/invitations", headers=bearer(secret))
    assert mine.status_code == 403 and "team" not in mine.text  # who invites, where, as what
    assert [i["org_name"] for i in mary.get("/api/v1/invitations").get_json()["invitations"]
            ] == ["team"]
    # Both invitations still wait for mary's session.
    assert mary.get("/api/v1/orgs/team/members/mary").status_code == 404
    assert accept(mary, token).status_code == 200
    assert len(mary.get("/api/v1/tokens").get_json()["tokens"]) == 1


# 12. One's own entries follow the workspace's rules too ---------------------------------------


def test_removed_member_no_longer_sees_own_entries(app, olga):
    mary = signed_up_client(app, "mary")
    add(olga, "mary", "member")
    assert post_json(olga, "/api/v1/orgs/team/workspaces", {"name": "secret"}).status_code == 201
    create(mary, "team", "secret")
    assert [e["workspace_name"] for e in entries(mary, "/api/v1/activity")][0] == "secret"
    assert olga.delete("/api/v1/orgs/team/members/mary",
                       headers={"X-CSRF-Token": csrf(olga)}).status_code == 204
    assert olga.patch("/api/v1/orgs/team/workspaces/secret", json={"name": "renamed"},
                      headers={"X-CSRF-Token": csrf(olga)}).status_code == 200
    feed = entries(mary, "/api/v1/activity")
    assert [e for e in feed if e["org_name"] == "team"] == []
    assert "renamed" not in mary.get("/").text
