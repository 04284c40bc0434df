"""Roles in one workspace: raising an org role there, letting an outsider into one workspace,
who manages them, and that every change is checked at once, audited and in the feed."""

from __future__ import annotations

import pytest

from chaoshub.auth import service as auth
from chaoshub.core.errors import Conflict, Forbidden, NotFound, Unauthorized, ValidationFailed
from chaoshub.dashboard import service as dashboard
from chaoshub.dashboard.permissions import Roles, effective_role, grantable
from chaoshub.experiment import service as experiments
from tests.conftest import csrf, post_json, signed_up_client
from tests.test_invitations import claim_for

MEMBERS_API = "/api/v1/orgs/team/workspaces/{ws}/members"
EXPERIMENTS_API = "/api/v1/orgs/team/workspaces/{ws}/experiments"


@pytest.fixture
def hub(app):
    """The app's context; `claim_for(username)` signs up (first time) and in."""
    with app.app_context():
        yield claim_for


@pytest.fixture
def team(hub):
    """Olga's org `team` with two private workspaces, alpha and beta; vic is an org viewer."""
    olga = hub("olga")
    for name in ("vic", "otto", "mike", "zed"):
        hub(name)
    dashboard.create_org(olga, "team")
    for ws in ("alpha", "beta"):
        dashboard.create_workspace(olga, "team", ws, "private")
    dashboard.add_member(olga, "team", "vic", "viewer")
    return olga


def patch_json(client, url: str, body):
    return client.patch(url, json=body, headers={"X-CSRF-Token": csrf(client)})


def delete(client, url: str):
    return client.delete(url, headers={"X-CSRF-Token": csrf(client)})


# The rule ------------------------------------------------------------------------------------


def test_the_role_that_counts_in_a_workspace_is_the_higher_one():
    assert effective_role("viewer", "maintainer") == "maintainer"
    assert effective_role("maintainer", "viewer") == "maintainer"  # never lowered
    assert effective_role(None, "member") == "member"
    assert effective_role("owner", None) == "owner"
    assert effective_role(None, None) is None
    roles = Roles("org", "viewer", {"w1": "maintainer"})
    assert (roles.in_workspace("w1"), roles.in_workspace("w2")) == ("maintainer", "viewer")
    assert grantable("maintainer") == ["maintainer", "member", "viewer"]
    assert grantable(None) == []


# Raising an org role in one workspace --------------------------------------------------------


def test_an_org_viewer_made_maintainer_of_one_workspace_writes_there_only(app, sample_experiment):
    olga = signed_up_client(app, "olga")
    vic = signed_up_client(app, "vic")
    post_json(olga, "/api/v1/orgs", {"name": "team"})
    for ws in ("alpha", "beta"):
        post_json(olga, "/api/v1/orgs/team/workspaces", {"name": ws, "visibility": "private"})
    post_json(olga, "/api/v1/orgs/team/members", {"username": "vic", "role": "viewer"})
    alpha, beta = EXPERIMENTS_API.format(ws="alpha"), EXPERIMENTS_API.format(ws="beta")
    assert post_json(vic, alpha, sample_experiment).status_code == 403

    added = post_json(olga, MEMBERS_API.format(ws="alpha"),
                      {"username": "vic", "role": "maintainer"})
    assert added.status_code == 201, added.get_json()
    assert added.headers["Location"] == "/api/v1/orgs/team/workspaces/alpha/members/vic"
    assert {k: added.get_json()[k] for k in ("username", "role", "org_role")} == {
        "username": "vic", "role": "maintainer", "org_role": "viewer"}

    assert post_json(vic, alpha, sample_experiment).status_code == 201
    assert post_json(vic, beta, sample_experiment).status_code == 403
    assert vic.get("/api/v1/orgs/team/workspaces/alpha").get_json()["role"] == "maintainer"
    assert vic.get("/api/v1/orgs/team/workspaces/beta").get_json()["role"] == "viewer"
    # Maintainer of alpha: its settings, not the org's.
    assert patch_json(vic, "/api/v1/orgs/team/workspaces/alpha",
                      {"outsider_executions": "status"}).status_code == 200
    assert patch_json(vic, "/api/v1/orgs/team/workspaces/beta",
                      {"outsider_executions": "status"}).status_code == 403
    assert patch_json(vic, "/api/v1/orgs/team", {"description": "x"}).status_code == 403
    assert vic.get("/api/v1/orgs/team").get_json()["role"] == "viewer"


def test_a_workspace_role_never_lowers_an_org_role(team, hub, sample_experiment):
    dashboard.add_member(team, "team", "mike", "maintainer")
    dashboard.add_workspace_member(team, "team", "alpha", "mike", "viewer")
    mike = hub("mike")
    assert dashboard.get_workspace(mike, "team", "alpha").role == "maintainer"
    assert experiments.create_experiment(mike, "team", "alpha", sample_experiment).id
    assert [(m.username, m.role, m.org_role)
            for m in dashboard.list_workspace_members(team, "team", "alpha")] == [
        ("mike", "viewer", "maintainer")]


# Letting someone outside the org into one workspace ------------------------------------------


def test_an_outsider_given_a_role_sees_that_workspace_and_nothing_else_private(
        app, sample_experiment):
    olga = signed_up_client(app, "olga")
    otto = signed_up_client(app, "otto")
    post_json(olga, "/api/v1/orgs", {"name": "team"})
    for ws in ("alpha", "beta"):
        post_json(olga, "/api/v1/orgs/team/workspaces", {"name": ws, "visibility": "private"})
    in_beta = post_json(olga, EXPERIMENTS_API.format(ws="beta"), sample_experiment).get_json()
    assert otto.get("/api/v1/orgs/team").status_code == 404

    assert post_json(olga, MEMBERS_API.format(ws="alpha"),
                     {"username": "otto", "role": "member"}).status_code == 201
    org = otto.get("/api/v1/orgs/team").get_json()
    assert org["role"] is None and [w["name"] for w in org["workspaces"]] == ["alpha"]
    assert otto.get("/api/v1/orgs/team/workspaces/alpha").get_json()["role"] == "member"
    assert otto.get("/api/v1/orgs/team/workspaces/beta").status_code == 404
    assert otto.get(f"/api/v1/experiments/{in_beta['id']}").status_code == 404
    assert post_json(otto, EXPERIMENTS_API.format(ws="beta"),
                     sample_experiment).status_code == 404
    created = post_json(otto, EXPERIMENTS_API.format(ws="alpha"), sample_experiment)
    assert created.status_code == 201
    # The org's own things stay closed: its members, settings and audit log.
    assert otto.get("/api/v1/orgs/team/members").status_code == 403
    assert otto.get("/api/v1/orgs/team/audit").status_code == 403
    assert otto.get("/team/-/settings").status_code == 403
    assert otto.get("/team/-/members").status_code == 403
    # Their dashboard, search and feeds show the one workspace.
    home = otto.get("/").get_data(as_text=True)
    assert "/team/alpha" in home and "/team/beta" not in home
    names = [w["name"] for w in otto.get("/api/v1/search?q=a").get_json()["workspaces"]]
    assert "team/alpha" in names
    assert otto.get("/api/v1/search?q=beta").get_json()["workspaces"] == []
    feed = otto.get("/api/v1/orgs/team/activity").get_json()["entries"]
    assert feed and {e["workspace_name"] for e in feed} == {"alpha"}
    mine = otto.get("/api/v1/activity").get_json()["entries"]
    assert any("added otto to alpha" in e["summary"] for e in mine)


def test_an_outsider_holds_no_role_in_a_personal_org(hub):
    olga = hub("olga")
    hub("otto")
    with pytest.raises(Forbidden, match="personal"):
        dashboard.add_workspace_member(olga, "olga", "Personal", "otto", "viewer")


# Removal and changes take effect at once -----------------------------------------------------


def test_removing_a_workspace_role_ends_access_at_once(team, hub, sample_experiment):
    dashboard.add_workspace_member(team, "team", "alpha", "otto", "maintainer")
    otto = hub("otto")
    alpha = dashboard.authorize(otto, "team", "alpha", "read")
    token = auth.resolve_credentials(bearer_token=auth.create_token(
        otto, "ci", ["full"], workspace_id=alpha.id, workspace_label="team/alpha").secret)
    stored = experiments.create_experiment(token, "team", "alpha", sample_experiment)
    for claim in (otto, token):  # every answer cached now
        assert experiments.get_experiment(claim, stored.id).id == stored.id
        assert dashboard.authorize(claim, "team", "alpha", "write").name == "alpha"
        dashboard.authorize_workspace(claim, stored.workspace_id, "write")

    dashboard.change_workspace_member_role(team, "team", "alpha", "otto", "viewer")
    for claim in (otto, token):
        with pytest.raises(Forbidden):
            dashboard.authorize(claim, "team", "alpha", "write")
        with pytest.raises(Forbidden):
            dashboard.authorize_workspace(claim, stored.workspace_id, "write")
        assert dashboard.authorize(claim, "team", "alpha", "read").name == "alpha"

    dashboard.remove_workspace_member(team, "team", "alpha", "otto")
    for claim in (otto, token):
        with pytest.raises(NotFound):
            experiments.get_experiment(claim, stored.id)
        with pytest.raises(NotFound):
            dashboard.authorize(claim, "team", "alpha", "read")
        with pytest.raises(NotFound):
            dashboard.authorize_workspace(claim, stored.workspace_id, "read")
    with pytest.raises(NotFound):
        dashboard.get_org(otto, "team")
    assert [o.name for o in dashboard.list_orgs(otto)] == ["otto"]


def test_a_role_given_is_seen_at_once_after_a_cached_refusal(team, hub):
    otto = hub("otto")
    for _ in range(2):  # the refusal is cached now
        with pytest.raises(NotFound):
            dashboard.authorize(otto, "team", "alpha", "read")
    dashboard.add_workspace_member(team, "team", "alpha", "otto", "viewer")
    assert dashboard.authorize(otto, "team", "alpha", "read").name == "alpha"
    assert dashboard.get_workspace(otto, "team", "alpha").role == "viewer"


def test_leaving_the_org_takes_its_workspace_roles_along(team, hub):
    dashboard.add_workspace_member(team, "team", "alpha", "vic", "maintainer")
    vic = hub("vic")
    assert dashboard.authorize(vic, "team", "alpha", "write").name == "alpha"
    dashboard.remove_member(team, "team", "vic")
    with pytest.raises(NotFound):
        dashboard.authorize(vic, "team", "alpha", "read")
    assert dashboard.list_workspace_members(team, "team", "alpha") == []
    removed = dashboard.audit_log(team, "team", event="member.removed")[-1]
    assert removed.details["workspaces"] == ["alpha"]


def test_no_cached_role_outlives_a_removal_behind_renames(team, hub):
    dashboard.add_member(team, "team", "mike", "member")
    mike = hub("mike")
    assert dashboard.authorize(mike, "team", "alpha", "write")  # cached under these names
    dashboard.update_workspace(team, "team", "alpha", name="gamma")
    dashboard.update_org(team, "team", name="crew")
    dashboard.remove_member(team, "crew", "mike")
    dashboard.update_workspace(team, "crew", "gamma", name="alpha")
    dashboard.update_org(team, "crew", name="team")
    for org in ("team", "crew"):
        with pytest.raises(NotFound):
            dashboard.authorize(mike, org, "alpha", "read")


def test_roles_cached_for_a_deleted_org_are_not_taken_for_its_namesakes(hub):
    olga, zed = hub("olga"), hub("zed")
    dashboard.create_org(olga, "team")
    dashboard.create_workspace(olga, "team", "alpha", "private")
    assert dashboard.authorize(olga, "team", "alpha", "write")
    with pytest.raises(NotFound):  # zed's roles in olga's org (none) are cached now
        dashboard.authorize(zed, "team", "alpha", "read")
    dashboard.delete_org(olga, "team")
    dashboard.create_org(zed, "team")
    dashboard.create_workspace(zed, "team", "alpha", "private")
    assert dashboard.authorize(zed, "team", "alpha", "write").name == "alpha"
    with pytest.raises(NotFound):
        dashboard.authorize(olga, "team", "alpha", "read")


# Who manages workspace members ---------------------------------------------------------------

# Who tries to give zed a role in alpha: their org role and their role in alpha.
MANAGERS = [
    ("org owner", "owner", None, "added"),
    ("org maintainer", "maintainer", None, "added"),
    ("org member", "member", None, Forbidden),
    ("org viewer", "viewer", None, Forbidden),
    ("workspace owner", None, "owner", "added"),
    ("workspace maintainer", "viewer", "maintainer", "added"),
    ("workspace member", None, "member", Forbidden),
    ("workspace viewer", None, "viewer", Forbidden),
    ("outsider", None, None, NotFound),
]


@pytest.mark.parametrize("org_role,ws_role,outcome", [row[1:] for row in MANAGERS],
                         ids=[row[0] for row in MANAGERS])
def test_who_may_manage_workspace_members(team, hub, org_role, ws_role, outcome):
    if org_role:
        dashboard.add_member(team, "team", "mike", org_role)
    if ws_role:
        dashboard.add_workspace_member(team, "team", "alpha", "mike", ws_role)
    mike = hub("mike")
    if outcome == "added":
        added = dashboard.add_workspace_member(mike, "team", "alpha", "zed", "viewer")
        assert added.role == "viewer"
        dashboard.change_workspace_member_role(mike, "team", "alpha", "zed", "member")
        dashboard.remove_workspace_member(mike, "team", "alpha", "zed")
        # Never in another workspace by a role in alpha alone.
        if org_role in (None, "viewer"):
            with pytest.raises((Forbidden, NotFound)):
                dashboard.add_workspace_member(mike, "team", "beta", "zed", "viewer")
    else:
        with pytest.raises(outcome):
            dashboard.add_workspace_member(mike, "team", "alpha", "zed", "viewer")


def test_nobody_gives_or_takes_a_role_above_their_own(team, hub):
    dashboard.add_workspace_member(team, "team", "alpha", "mike", "maintainer")
    dashboard.add_workspace_member(team, "team", "alpha", "otto", "owner")
    mike = hub("mike")
    with pytest.raises(Forbidden):
        dashboard.add_workspace_member(mike, "team", "alpha", "zed", "owner")
    with pytest.raises(Forbidden):
        dashboard.change_workspace_member_role(mike, "team", "alpha", "mike", "owner")
    with pytest.raises(Forbidden):
        dashboard.change_workspace_member_role(mike, "team", "alpha", "otto", "viewer")
    with pytest.raises(Forbidden):
        dashboard.remove_workspace_member(mike, "team", "alpha", "otto")
    # An org maintainer is a maintainer in every workspace: the same limit.
    dashboard.add_member(team, "team", "zed", "maintainer")
    with pytest.raises(Forbidden):
        dashboard.add_workspace_member(hub("zed"), "team", "alpha", "vic", "owner")
    # The org's owners may do all of it.
    dashboard.change_workspace_member_role(team, "team", "alpha", "otto", "viewer")


def test_members_may_give_up_their_own_workspace_role(team, hub):
    dashboard.add_workspace_member(team, "team", "alpha", "otto", "viewer")
    dashboard.add_workspace_member(team, "team", "alpha", "mike", "viewer")
    otto = hub("otto")
    assert [m.username for m in dashboard.list_workspace_members(otto, "team", "alpha")] == [
        "mike", "otto"]
    with pytest.raises(Forbidden):
        dashboard.remove_workspace_member(otto, "team", "alpha", "mike")
    dashboard.remove_workspace_member(otto, "team", "alpha", "otto")
    with pytest.raises(NotFound):
        dashboard.list_workspace_members(otto, "team", "alpha")


def test_managing_workspace_members_needs_a_signed_in_session(team, hub):
    olga_token = auth.resolve_credentials(
        bearer_token=auth.create_token(team, "ci", ["full"]).secret)
    with pytest.raises(Forbidden, match="session"):
        dashboard.add_workspace_member(olga_token, "team", "alpha", "otto", "viewer")
    with pytest.raises(Unauthorized):
        dashboard.add_workspace_member(auth.resolve_credentials(), "team", "alpha", "otto")
    # A token still lists them: reading is not running the workspace.
    assert dashboard.list_workspace_members(olga_token, "team", "alpha") == []


# Audit and activity --------------------------------------------------------------------------


def test_workspace_member_changes_are_audited_and_in_the_feed(team, hub):
    dashboard.add_workspace_member(team, "team", "alpha", "otto", "member")
    dashboard.change_workspace_member_role(team, "team", "alpha", "otto", "maintainer")
    dashboard.change_workspace_member_role(team, "team", "alpha", "otto", "maintainer")  # same
    dashboard.remove_workspace_member(team, "team", "alpha", "otto")

    entries = dashboard.audit_log(team, "team", event="workspace.member_")
    otto_id = auth.get_account(hub("otto")).id
    assert [(e.event, e.actor, e.details) for e in entries] == [
        ("workspace.member_added", "olga", {
            "workspace": "alpha", "workspace_id": entries[0].details["workspace_id"],
            "username": "otto", "account_id": otto_id, "role": "member"}),
        ("workspace.member_role_changed", "olga", {
            "workspace": "alpha", "workspace_id": entries[0].details["workspace_id"],
            "username": "otto", "account_id": otto_id, "from": "member", "to": "maintainer"}),
        ("workspace.member_removed", "olga", {
            "workspace": "alpha", "workspace_id": entries[0].details["workspace_id"],
            "username": "otto", "account_id": otto_id, "role": "maintainer", "left": False}),
    ]
    assert dashboard.verify_audit_chains() == []
    feed = dashboard.workspace_activity(team, "team", "alpha").entries
    assert [e.kind for e in feed][:3] == ["workspace.member_removed",
                                          "workspace.member_role_changed",
                                          "workspace.member_added"]
    assert feed[1].summary == "olga made otto maintainer in alpha"
    # Who holds which role is the org's business: not shown to outsiders of a public workspace.
    dashboard.update_workspace(team, "team", "alpha", visibility="public")
    outsider = dashboard.workspace_activity(hub("zed"), "team", "alpha").entries
    assert not [e for e in outsider if e.kind.startswith("workspace.member_")]


# The API's answers ---------------------------------------------------------------------------


def test_the_api_lists_adds_changes_and_removes_workspace_members(app):
    olga = signed_up_client(app, "olga")
    signed_up_client(app, "otto")
    post_json(olga, "/api/v1/orgs", {"name": "team"})
    post_json(olga, "/api/v1/orgs/team/workspaces", {"name": "alpha"})
    url = MEMBERS_API.format(ws="alpha")
    assert olga.get(url).get_json() == {"members": [], "next_cursor": None}
    assert post_json(olga, url, {"username": "otto"}).get_json()["role"] == "member"
    assert olga.get(f"{url}/OTTO").get_json()["username"] == "otto"
    changed = patch_json(olga, f"{url}/otto", {"role": "viewer"})
    assert changed.status_code == 200 and changed.get_json()["role"] == "viewer"
    assert [m["role"] for m in olga.get(url).get_json()["members"]] == ["viewer"]
    assert delete(olga, f"{url}/otto").status_code == 204
    assert olga.get(f"{url}/otto").status_code == 404


def test_bad_requests_get_json_errors(app):
    olga = signed_up_client(app, "olga")
    signed_up_client(app, "otto")
    post_json(olga, "/api/v1/orgs", {"name": "team"})
    post_json(olga, "/api/v1/orgs/team/workspaces", {"name": "alpha"})
    url = MEMBERS_API.format(ws="alpha")
    cases = [
        (post_json(olga, url, {"username": "otto", "role": "god"}), 422, "validation_failed"),
        (post_json(olga, url, {"username": "otto", "role": 3}), 422, "validation_failed"),
        (post_json(olga, url, {"username": "otto", "level": "x"}), 422, "validation_failed"),
        (post_json(olga, url, ["otto"]), 400, "bad_request"),
        (post_json(olga, url, {"username": "nobody-here"}), 404, "not_found"),
        (post_json(olga, MEMBERS_API.format(ws="nowhere"), {"username": "otto"}), 404,
         "not_found"),
        (patch_json(olga, f"{url}/otto", {"role": "viewer"}), 404, "not_found"),
        (delete(olga, f"{url}/otto"), 404, "not_found"),
    ]
    for response, status, code in cases:
        assert (response.status_code, response.get_json()["error"]) == (status, code)
        assert set(response.get_json()) == {"error", "message", "details"}
    refused = post_json(olga, url, {"username": "otto", "role": "god"}).get_json()
    assert [p["pointer"] for p in refused["details"]] == ["/role"]
    assert post_json(olga, url, {"username": "otto"}).status_code == 201
    assert post_json(olga, url, {"username": "otto"}).status_code == 409
    assert patch_json(olga, f"{url}/otto", {"role": "god"}).status_code == 422


def test_adding_twice_is_a_conflict(team):
    dashboard.add_workspace_member(team, "team", "alpha", "otto", "viewer")
    with pytest.raises(Conflict):
        dashboard.add_workspace_member(team, "team", "alpha", "OTTO", "member")
    with pytest.raises(ValidationFailed):
        dashboard.add_workspace_member(team, "team", "alpha", "zed", "admin")


# The workspace page --------------------------------------------------------------------------


def form_post(client, url: str, **fields):
    return client.post(url, data={**fields, "csrf_token": csrf(client)})


def test_the_workspace_page_lists_and_manages_its_members(app):
    olga = signed_up_client(app, "olga")
    otto = signed_up_client(app, "otto")
    vic = signed_up_client(app, "vic")
    post_json(olga, "/api/v1/orgs", {"name": "team"})
    post_json(olga, "/api/v1/orgs/team/workspaces", {"name": "alpha"})
    post_json(olga, "/api/v1/orgs/team/members", {"username": "vic", "role": "viewer"})
    page = olga.get("/team/alpha").get_data(as_text=True)
    assert "Members of this workspace" in page and "Add to workspace" in page

    added = form_post(olga, "/team/alpha/-/members", username="otto", role="maintainer")
    assert added.status_code == 303 and added.headers["Location"] == "/team/alpha#members"
    page = olga.get("/team/alpha").get_data(as_text=True)
    assert 'data-testid="workspace-member"' in page and "outside the org" in page
    assert form_post(olga, "/team/alpha/-/members/otto/role", role="member").status_code == 303
    assert olga.get(MEMBERS_API.format(ws="alpha")).get_json()["members"][0]["role"] == "member"

    # Errors come back on the page, with the form as it was sent.
    unknown = form_post(olga, "/team/alpha/-/members", username="nobody-here", role="viewer")
    assert unknown.status_code == 404 and "nobody-here" in unknown.get_data(as_text=True)
    # Dashboard answers the form: the experiments, experiment's to list, are a link away.
    assert 'href="/team/alpha#experiments">Show the experiments' in unknown.get_data(as_text=True)
    # Forms need their CSRF token.
    assert olga.post("/team/alpha/-/members", data={"username": "vic"}).status_code in (400, 403)

    # An org viewer sees the list, without the forms; someone outside sees no page at all.
    seen = vic.get("/team/alpha").get_data(as_text=True)
    assert "Members of this workspace" in seen and "Add to workspace" not in seen
    assert form_post(vic, "/team/alpha/-/members", username="olga").status_code == 403
    zed = signed_up_client(app, "zed")
    assert zed.get("/team/alpha").status_code == 404

    # otto leaves (back to the dashboard), and the workspace closes to him.
    left = form_post(otto, "/team/alpha/-/members/otto/remove")
    assert left.status_code == 303 and left.headers["Location"] == "/"
    assert otto.get("/team/alpha").status_code == 404
    assert form_post(olga, "/team/alpha/-/members/otto/remove").status_code == 404
