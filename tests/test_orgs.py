"""Orgs, workspaces and members: the dashboard service, its JSON API and its pages."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from chaoshub.auth import service as auth
from chaoshub.core.db import transaction
from chaoshub.core.errors import Conflict, Forbidden, NotFound, Unauthorized, ValidationFailed
from chaoshub.dashboard import service as dashboard
from chaoshub.dashboard.permissions import PERMISSIONS
from chaoshub.experiment import service as experiments
from tests.conftest import PASSWORD, csrf, post_json, signed_up_client


@pytest.fixture
def hub(app):
    """The app's context, and a way to get a signed-in session's claim for a new account."""
    with app.app_context():
        yield Accounts()


class Accounts:
    def claim(self, username: str) -> str:
        """Sign `username` up (first time) and in; the claim of that session."""
        try:
            auth.create_local_account(username, PASSWORD)
        except ValidationFailed:
            pass  # signed up already
        grant = auth.sign_in(username, PASSWORD)
        return auth.resolve_credentials(session_token=grant.token)

    def anonymous(self) -> str:
        return auth.resolve_credentials()


def a_token(claim: str, scopes=("full",)) -> str:
    """The claim an API token of the claim's account gets."""
    new = auth.create_token(claim, "ci", list(scopes))
    return auth.resolve_credentials(bearer_token=new.secret)


# The service ---------------------------------------------------------------------------------


def test_the_permission_matrix_reads_as_the_roles_do():
    assert {action: sorted(roles) for action, roles in PERMISSIONS.items()} == {
        "read": ["maintainer", "member", "owner", "viewer"],
        "write": ["maintainer", "member", "owner"],
        "run": ["maintainer", "member", "owner"],
        "list_members": ["maintainer", "member", "owner", "viewer"],
        "manage_members": ["owner"],
        "manage_workspace_members": ["maintainer", "owner"],
        "change_settings": ["maintainer", "owner"],
        "delete_org": ["owner"],
        "manage_environments": ["maintainer", "owner"],
        "manage_webhooks": ["maintainer", "owner"],
        "engage_kill_switch": ["maintainer", "member", "owner", "viewer"],
        "release_kill_switch": ["maintainer", "owner"],
    }


def test_creating_an_org_makes_its_creator_owner(hub):
    alice = hub.claim("alice")
    org = dashboard.create_org(alice, "Chaos-Team")
    assert (org.name, org.personal, org.role) == ("Chaos-Team", False, "owner")
    assert "delete_org" in org.allowed
    assert [o.name for o in dashboard.list_orgs(alice)] == ["alice", "Chaos-Team"]
    members = dashboard.list_members(alice, "chaos-team")
    assert [(m.username, m.role) for m in members] == [("alice", "owner")]


def test_org_names_are_unique_whatever_their_case_and_never_shadow_a_route(hub):
    alice = hub.claim("alice")
    dashboard.create_org(alice, "team")
    for taken in ("TEAM", "Alice"):
        with pytest.raises(Conflict):
            dashboard.create_org(alice, taken)
    for refused in ("api", "Settings", "x", "-dash", "has space", "a" * 40):
        with pytest.raises(ValidationFailed):
            dashboard.create_org(alice, refused)
    with pytest.raises(Unauthorized):
        dashboard.create_org(hub.anonymous(), "another")
    with pytest.raises(Forbidden, match="session"):
        dashboard.create_org(a_token(alice), "another")


def test_a_renamed_org_answers_to_its_old_name(hub, sample_experiment):
    alice = hub.claim("alice")
    dashboard.create_org(alice, "old-name")
    dashboard.create_workspace(alice, "old-name", "prod", "public")
    ws = dashboard.authorize(alice, "old-name", "prod", "write")  # cached under the old name

    renamed = dashboard.update_org(alice, "old-name", name="New-Name")
    assert renamed.name == "New-Name" and renamed.former_names == ["old-name"]
    assert dashboard.get_org(alice, "OLD-NAME").name == "New-Name"
    assert dashboard.authorize(alice, "old-name", "prod", "write").org_name == "New-Name"
    assert dashboard.authorize(alice, "new-name", "prod", "write").id == ws.id
    stored = experiments.create_experiment(alice, "old-name", "prod", sample_experiment)
    assert stored.workspace_id == ws.id

    # Nobody else may take the old name while the org lives: old links never change hands.
    bob = hub.claim("bob")
    with pytest.raises(Conflict):
        dashboard.create_org(bob, "old-name")
    # Taking the old name back is fine, and the name in between becomes a former name.
    back = dashboard.update_org(alice, "new-name", name="old-name")
    assert back.name == "old-name" and back.former_names == ["New-Name"]
    with pytest.raises(Forbidden):
        dashboard.update_org(alice, "alice", name="alice-renamed")  # a personal org


def test_describing_an_org_checks_its_address_and_email(hub):
    alice = hub.claim("alice")
    dashboard.create_org(alice, "team")
    described = dashboard.update_org(alice, "team", description="  We break things.  ",
                                     url="https://team.example", email="sre@team.example")
    assert (described.description, described.url, described.email) == (
        "We break things.", "https://team.example", "sre@team.example")
    with pytest.raises(ValidationFailed) as refused:
        dashboard.update_org(alice, "team", url="javascript:alert(1)", email="nope",
                             description="x" * 1001)
    assert {p["pointer"] for p in refused.value.details} == {"/url", "/email", "/description"}
    cleared = dashboard.update_org(alice, "team", url="", email="")
    assert (cleared.url, cleared.email, cleared.description) == (None, None, "We break things.")


def test_deleting_an_org_takes_its_workspaces_and_their_experiments(hub, sample_experiment):
    alice, bob = hub.claim("alice"), hub.claim("bob")
    dashboard.create_org(alice, "team")
    dashboard.create_workspace(alice, "team", "one", "public")
    dashboard.create_workspace(alice, "team", "two", "private")
    dashboard.add_member(alice, "team", "bob", "maintainer")
    kept = experiments.create_experiment(alice, "alice", "Personal", sample_experiment)
    gone = [experiments.create_experiment(alice, "team", ws, sample_experiment)
            for ws in ("one", "two", "two")]
    dashboard.authorize(bob, "team", "two", "read")  # warm the caches

    with pytest.raises(Forbidden):
        dashboard.delete_org(bob, "team")  # maintainers may not
    dashboard.delete_org(alice, "team")  # experiment handles the org.deleted event

    for experiment in gone:
        with pytest.raises(NotFound):
            experiments.get_experiment(alice, experiment.id)
    assert experiments.get_experiment(alice, kept.id).id == kept.id
    with pytest.raises(NotFound):
        dashboard.get_org(alice, "team")
    with pytest.raises(NotFound):
        dashboard.authorize(bob, "team", "two", "read")
    assert [o.name for o in dashboard.list_orgs(bob)] == ["bob"]
    with pytest.raises(Forbidden):
        dashboard.delete_org(alice, "alice")
    dashboard.create_org(bob, "team")  # the name is free again


def test_workspaces_are_created_renamed_reshown_and_deleted(hub, sample_experiment):
    alice, bob = hub.claim("alice"), hub.claim("bob")
    dashboard.create_org(alice, "team")
    created = dashboard.create_workspace(alice, "team", "Prod", "private", "status")
    assert (created.name, created.visibility, created.outsider_executions) == (
        "Prod", "private", "status")
    with pytest.raises(Conflict):
        dashboard.create_workspace(alice, "team", "PROD")
    with pytest.raises(ValidationFailed) as refused:
        dashboard.create_workspace(alice, "team", "x", "secret", "everything")
    assert {p["pointer"] for p in refused.value.details} == {"/name", "/visibility",
                                                             "/outsider_executions"}

    with pytest.raises(NotFound):
        dashboard.authorize(bob, "team", "prod", "read")  # cached as invisible
    shown = dashboard.update_workspace(alice, "team", "prod", visibility="internal",
                                       outsider_executions="full")
    assert (shown.visibility, shown.outsider_executions) == ("internal", "full")
    assert dashboard.authorize(bob, "team", "prod", "read").visibility == "internal"

    dashboard.update_workspace(alice, "team", "prod", name="production")
    with pytest.raises(NotFound):
        dashboard.authorize(alice, "team", "prod", "read")
    assert dashboard.get_workspace(alice, "team", "Production").name == "production"

    stored = experiments.create_experiment(alice, "team", "production", sample_experiment)
    dashboard.delete_workspace(alice, "team", "production")
    with pytest.raises(NotFound):
        experiments.get_experiment(alice, stored.id)
    with pytest.raises(NotFound):
        dashboard.get_workspace(alice, "team", "production")
    assert dashboard.get_org(alice, "team").workspaces == []


def test_members_are_added_by_username_and_their_roles_change(hub):
    alice, bob, carol = hub.claim("alice"), hub.claim("bob"), hub.claim("carol")
    dashboard.create_org(alice, "team")
    dashboard.create_workspace(alice, "team", "secret", "private")
    with pytest.raises(NotFound):
        dashboard.authorize(bob, "team", "secret", "read")

    added = dashboard.add_member(alice, "team", "BOB", "viewer")
    assert (added.username, added.role) == ("bob", "viewer")
    assert dashboard.authorize(bob, "team", "secret", "read").name == "secret"
    with pytest.raises(Forbidden):
        dashboard.authorize(bob, "team", "secret", "write")
    with pytest.raises(Conflict):
        dashboard.add_member(alice, "team", "bob")
    with pytest.raises(NotFound):
        dashboard.add_member(alice, "team", "nobody-at-all")
    with pytest.raises(ValidationFailed):
        dashboard.add_member(alice, "team", "carol", "admin")
    with pytest.raises(Forbidden):
        dashboard.add_member(bob, "team", "carol")  # viewers do not manage members
    with pytest.raises(NotFound):
        dashboard.add_member(carol, "team", "carol")  # outsiders do not even see the org
    with pytest.raises(Forbidden):
        dashboard.add_member(alice, "alice", "bob")  # personal orgs have one member

    assert dashboard.change_member_role(alice, "team", "bob", "member").role == "member"
    assert dashboard.authorize(bob, "team", "secret", "write").name == "secret"
    assert [(m.username, m.role) for m in dashboard.list_members(bob, "team")] == [
        ("alice", "owner"), ("bob", "member")]


def test_the_last_owner_can_neither_leave_nor_be_demoted(hub):
    alice, bob = hub.claim("alice"), hub.claim("bob")
    dashboard.create_org(alice, "team")
    dashboard.add_member(alice, "team", "bob", "maintainer")
    with pytest.raises(Conflict):
        dashboard.change_member_role(alice, "team", "alice", "maintainer")
    with pytest.raises(Conflict):
        dashboard.remove_member(alice, "team", "alice")
    dashboard.change_member_role(alice, "team", "bob", "owner")
    dashboard.remove_member(alice, "team", "alice")  # leaving, now that bob owns it too
    assert [(m.username, m.role) for m in dashboard.list_members(bob, "team")] == [
        ("bob", "owner")]
    with pytest.raises(Conflict):
        dashboard.remove_member(bob, "team", "bob")


def test_a_removed_member_loses_access_at_once_with_a_session_and_a_token(
        hub, sample_experiment):
    alice, bob = hub.claim("alice"), hub.claim("bob")
    dashboard.create_org(alice, "team")
    dashboard.create_workspace(alice, "team", "secret", "private")
    dashboard.add_member(alice, "team", "bob", "member")
    token = a_token(bob)
    stored = experiments.create_experiment(token, "team", "secret", sample_experiment)
    for claim in (bob, token):  # both cached as a member now
        assert experiments.get_experiment(claim, stored.id).id == stored.id

    dashboard.remove_member(alice, "team", "bob")
    for claim in (bob, token):
        with pytest.raises(NotFound):
            experiments.get_experiment(claim, stored.id)
        with pytest.raises(NotFound):
            dashboard.authorize(claim, "team", "secret", "read")
    with pytest.raises(NotFound):
        dashboard.get_org(bob, "team")


def test_members_may_leave_but_not_remove_others(hub):
    alice, bob, carol = hub.claim("alice"), hub.claim("bob"), hub.claim("carol")
    dashboard.create_org(alice, "team")
    dashboard.add_member(alice, "team", "bob", "maintainer")
    dashboard.add_member(alice, "team", "carol", "viewer")
    with pytest.raises(Forbidden):
        dashboard.remove_member(bob, "team", "carol")
    dashboard.remove_member(carol, "team", "carol")
    with pytest.raises(NotFound):
        dashboard.list_members(carol, "team")


def test_api_tokens_read_but_never_run_the_org(hub):
    alice = hub.claim("alice")
    dashboard.create_org(alice, "team")
    token = a_token(alice)
    assert dashboard.get_org(token, "team").role == "owner"
    assert "delete_org" not in dashboard.get_org(token, "team").allowed
    for change in (lambda: dashboard.update_org(token, "team", description="x"),
                   lambda: dashboard.create_workspace(token, "team", "ws"),
                   lambda: dashboard.add_member(token, "team", "alice"),
                   lambda: dashboard.delete_org(token, "team")):
        with pytest.raises(Forbidden, match="session"):
            change()


def test_find_account_resolves_usernames_for_signed_in_callers(hub):
    alice = hub.claim("alice")
    assert auth.find_account(alice, "ALICE").username == "alice"
    with pytest.raises(NotFound):
        auth.find_account(alice, "nobody")
    with pytest.raises(Unauthorized):
        auth.find_account(hub.anonymous(), "alice")


def test_profiles_keep_the_username_for_member_lists(app, hub):
    from chaoshub.dashboard.models import Profile

    hub.claim("Zoe")
    with transaction("dashboard") as session:
        assert session.scalar(select(Profile.username)) == "Zoe"
        assert session.scalar(select(func.count()).select_from(Profile)) == 1


# The JSON API --------------------------------------------------------------------------------


def patch_json(client, url: str, body):
    return client.patch(url, json=body, headers={"X-CSRF-Token": csrf(client)})


def delete(client, url: str):
    return client.delete(url, headers={"X-CSRF-Token": csrf(client)})


def test_the_api_creates_describes_renames_and_deletes_an_org(app, sample_experiment):
    alice = signed_up_client(app, "alice")
    created = post_json(alice, "/api/v1/orgs", {"name": "Team"})
    assert created.status_code == 201, created.get_json()
    assert created.headers["Location"] == "/api/v1/orgs/Team"
    assert created.get_json()["role"] == "owner"
    assert post_json(alice, "/api/v1/orgs", {"name": "team"}).status_code == 409
    reserved = post_json(alice, "/api/v1/orgs", {"name": "status"})
    assert reserved.status_code == 422
    assert reserved.get_json()["details"] == [{"pointer": "/name",
                                               "message": "this name is reserved by the hub"}]
    for refused, where in (({"name": 3}, "/name"), ({"name": "team", "nom": "x"}, "/nom")):
        answer = post_json(alice, "/api/v1/orgs", refused)
        assert answer.status_code == 422
        assert [p["pointer"] for p in answer.get_json()["details"]] == [where]

    described = patch_json(alice, "/api/v1/orgs/team", {
        "description": "SRE", "url": "https://sre.example", "email": "sre@example.org"})
    assert described.status_code == 200
    assert described.get_json()["url"] == "https://sre.example"
    assert patch_json(alice, "/api/v1/orgs/team", {"url": "ftp://x"}).status_code == 422

    ws = post_json(alice, "/api/v1/orgs/team/workspaces",
                   {"name": "prod", "visibility": "internal"})
    assert ws.status_code == 201
    assert ws.headers["Location"] == "/api/v1/orgs/Team/workspaces/prod"
    renamed = patch_json(alice, "/api/v1/orgs/team", {"name": "sre"})
    assert renamed.get_json()["former_names"] == ["Team"]
    # Published API paths with the old name keep working.
    assert alice.get("/api/v1/orgs/team").get_json()["name"] == "sre"
    assert alice.get("/api/v1/orgs/team/workspaces/prod").status_code == 200
    experiment = post_json(alice, "/api/v1/orgs/team/workspaces/prod/experiments",
                           sample_experiment)
    assert experiment.status_code == 201
    assert [o["name"] for o in alice.get("/api/v1/orgs").get_json()["orgs"]] == ["alice", "sre"]

    assert delete(alice, "/api/v1/orgs/sre").status_code == 204
    assert alice.get("/api/v1/orgs/sre").status_code == 404
    assert alice.get(experiment.headers["Location"]).status_code == 404
    assert delete(alice, "/api/v1/orgs/alice").status_code == 403


def test_the_api_manages_workspaces(app):
    alice = signed_up_client(app, "alice")
    post_json(alice, "/api/v1/orgs", {"name": "team"})
    created = post_json(alice, "/api/v1/orgs/team/workspaces", {
        "name": "prod", "visibility": "public", "outsider_executions": "status"})
    assert created.get_json()["outsider_executions"] == "status"
    refused = post_json(alice, "/api/v1/orgs/team/workspaces", {"name": "x", "visibility": "y"})
    assert refused.status_code == 422
    assert {p["pointer"] for p in refused.get_json()["details"]} == {"/name", "/visibility"}
    changed = patch_json(alice, "/api/v1/orgs/team/workspaces/prod",
                         {"name": "production", "visibility": "private"})
    assert changed.status_code == 200
    assert changed.get_json()["visibility"] == "private"
    assert changed.get_json()["allowed"] == ["read", "write", "run", "list_members",
                                             "manage_members", "manage_workspace_members",
                                             "change_settings", "delete_org",
                                             "manage_environments", "manage_webhooks",
                                             "engage_kill_switch", "release_kill_switch"]
    listed = alice.get("/api/v1/orgs/team/workspaces").get_json()["workspaces"]
    assert [w["name"] for w in listed] == ["production"]
    assert delete(alice, "/api/v1/orgs/team/workspaces/production").status_code == 204
    assert alice.get("/api/v1/orgs/team/workspaces/production").status_code == 404


def test_the_api_manages_members(app):
    alice = signed_up_client(app, "alice")
    bob = signed_up_client(app, "bob")
    post_json(alice, "/api/v1/orgs", {"name": "team"})
    added = post_json(alice, "/api/v1/orgs/team/members", {"username": "Bob", "role": "viewer"})
    assert added.status_code == 201, added.get_json()
    assert added.headers["Location"] == "/api/v1/orgs/team/members/bob"
    assert bob.get("/api/v1/orgs/team/members/bob").get_json()["role"] == "viewer"
    assert post_json(alice, "/api/v1/orgs/team/members",
                     {"username": "nobody"}).get_json()["error"] == "not_found"
    assert post_json(alice, "/api/v1/orgs/team/members",
                     {"username": "bob"}).status_code == 409
    assert patch_json(bob, "/api/v1/orgs/team/members/bob", {"role": "owner"}).status_code == 403
    assert patch_json(alice, "/api/v1/orgs/team/members/bob",
                      {"role": "maintainer"}).get_json()["role"] == "maintainer"
    assert patch_json(alice, "/api/v1/orgs/team/members/bob", {"role": "god"}).status_code == 422
    last = patch_json(alice, "/api/v1/orgs/team/members/alice", {"role": "viewer"})
    assert last.status_code == 409 and last.get_json()["error"] == "conflict"
    names = [(m["username"], m["role"]) for m in
             bob.get("/api/v1/orgs/team/members").get_json()["members"]]
    assert names == [("alice", "owner"), ("bob", "maintainer")]
    assert delete(alice, "/api/v1/orgs/team/members/bob").status_code == 204
    assert bob.get("/api/v1/orgs/team/members").status_code == 404
    assert delete(alice, "/api/v1/orgs/team/members/bob").status_code == 404


def test_api_errors_keep_the_one_shape(app, client):
    assert client.get("/api/v1/orgs").status_code == 401
    anonymous = post_json(client, "/api/v1/orgs", {"name": "team"})
    assert anonymous.status_code == 401
    assert set(anonymous.get_json()) == {"error", "message", "details"}
    alice = signed_up_client(app, "alice")
    assert alice.post("/api/v1/orgs", json={"name": "team"}).status_code == 403  # no CSRF
    bad = alice.post("/api/v1/orgs", data="name=x", headers={"X-CSRF-Token": csrf(alice)},
                     content_type="text/plain")
    assert bad.status_code in (400, 415) and bad.get_json()["error"]


# The pages -----------------------------------------------------------------------------------


def form(client, path: str, **fields):
    return client.post(path, data={**fields, "csrf_token": csrf(client)})


def text(response) -> str:
    return response.get_data(as_text=True)


def test_the_home_page_creates_an_org_and_the_org_page_lists_what_each_reader_sees(app, client):
    alice = signed_up_client(app, "alice")
    home = alice.get("/")
    assert 'action="/orgs"' in text(home) and 'name="csrf_token"' in text(home)
    created = form(alice, "/orgs", name="Team")
    assert created.status_code == 303 and created.headers["Location"] == "/Team"
    refused = form(alice, "/orgs", name="settings")
    assert refused.status_code == 422 and "reserved" in text(refused)
    for name, visibility in (("open", "public"), ("inside", "internal"), ("secret", "private")):
        made = form(alice, "/team/-/workspaces", name=name, visibility=visibility,
                    outsider_executions="status")
        assert made.status_code == 303 and made.headers["Location"] == f"/Team/{name}"

    page = text(alice.get("/team"))
    assert page.count('data-testid="workspace"') == 3
    assert 'class="badge visibility private">private' in page
    assert "New workspace" in page and "/Team/-/settings" in page

    bob = signed_up_client(app, "bob")
    seen = text(bob.get("/team"))
    assert "/Team/open" in seen and "/Team/inside" in seen and "/Team/secret" not in seen
    assert "New workspace" not in seen and "/-/settings" not in seen
    anonymous = text(client.get("/team"))
    assert anonymous.count('data-testid="workspace"') == 1 and "/Team/inside" not in anonymous
    assert bob.get("/team/secret").status_code == 404
    assert client.get("/team/inside", headers={"Accept": "text/html"}).status_code == 404
    workspace = text(bob.get("/team/open"))
    assert "No experiments yet." in workspace and "status of its runs" in workspace


def test_an_org_nobody_outside_may_see_is_a_404_page(app, client):
    alice = signed_up_client(app, "alice")
    form(alice, "/orgs", name="quiet")
    form(alice, "/quiet/-/workspaces", name="ws", visibility="private")
    bob = signed_up_client(app, "bob")
    for path in ("/quiet", "/quiet/ws", "/quiet/-/members", "/quiet/-/settings",
                 "/quiet/ws/-/settings", "/no-such-org"):
        response = bob.get(path, headers={"Accept": "text/html"})
        assert response.status_code == 404, path
        assert "Nothing here" in text(response)
        assert client.get(path).status_code == 404, path
    assert form(bob, "/quiet/-/members", username="bob").status_code == 404


def test_pages_that_need_an_account_send_visitors_to_sign_in(app, client):
    alice = signed_up_client(app, "alice")
    form(alice, "/orgs", name="team")
    form(alice, "/team/-/workspaces", name="open", visibility="public")
    response = client.get("/team/-/settings")
    assert response.status_code == 302
    assert response.headers["Location"] == "/signin?next=/team/-/settings"
    bob = signed_up_client(app, "bob")
    assert bob.get("/team/-/settings").status_code == 403
    assert bob.get("/team/-/members").status_code == 403
    assert bob.get("/team/open/-/settings").status_code == 403


def test_renaming_an_org_in_its_settings_redirects_its_old_pages(app):
    alice = signed_up_client(app, "alice")
    form(alice, "/orgs", name="old-team")
    form(alice, "/old-team/-/workspaces", name="prod", visibility="private")
    settings = text(alice.get("/old-team/-/settings"))
    assert "Delete old-team" in settings
    refused = form(alice, "/old-team/-/settings", name="api")
    assert refused.status_code == 422 and "reserved" in text(refused)
    renamed = form(alice, "/old-team/-/settings", name="new-team")
    assert renamed.headers["Location"] == "/new-team/-/settings?saved=1"
    for old, new in (("/old-team", "/new-team"), ("/OLD-TEAM/prod", "/new-team/prod"),
                     ("/old-team/-/members", "/new-team/-/members"),
                     ("/old-team/prod/-/settings?x=1", "/new-team/prod/-/settings?x=1")):
        response = alice.get(old)
        assert response.status_code == 301 and response.headers["Location"] == new, old
    assert "Former names: old-team" in text(alice.get("/new-team/-/settings"))

    described = form(alice, "/new-team/-/settings", description="We break things",
                     url="https://team.example", email="")
    assert described.status_code == 303
    assert 'href="https://team.example"' in text(alice.get("/new-team"))
    bad = form(alice, "/new-team/-/settings", description="", url="javascript:alert(1)",
               email="")
    assert bad.status_code == 422 and "http" in text(bad)


def test_deleting_from_the_settings_pages_needs_the_name_typed(app):
    alice = signed_up_client(app, "alice")
    form(alice, "/orgs", name="team")
    form(alice, "/team/-/workspaces", name="prod", visibility="public")
    kept = form(alice, "/team/prod/-/delete", confirm="nope")
    assert kept.status_code == 422 and "type prod to confirm" in text(kept)
    changed = form(alice, "/team/prod/-/settings", name="production", visibility="internal",
                   outsider_executions="full")
    assert changed.headers["Location"] == "/team/production/-/settings?saved=1"
    assert "Everything, journals included" in text(alice.get("/team/production/-/settings"))
    assert form(alice, "/team/production/-/delete", confirm="production").status_code == 303
    assert alice.get("/team/production").status_code == 404

    assert form(alice, "/team/-/delete", confirm="other").status_code == 422
    gone = form(alice, "/team/-/delete", confirm="TEAM")
    assert gone.status_code == 303 and gone.headers["Location"] == "/"
    assert alice.get("/team").status_code == 404
    assert "Delete alice" not in text(alice.get("/alice/-/settings"))  # a personal org


def test_the_members_page_adds_changes_and_removes_members(app):
    alice = signed_up_client(app, "alice")
    bob = signed_up_client(app, "bob")
    form(alice, "/orgs", name="team")
    form(alice, "/team/-/workspaces", name="secret", visibility="private")
    unknown = form(alice, "/team/-/members", username="nobody", role="member")
    assert unknown.status_code == 404 and "no account named" in text(unknown)
    assert form(alice, "/team/-/members", username="bob", role="viewer").status_code == 303
    page = text(alice.get("/team/-/members"))
    assert page.count('data-testid="member"') == 2 and "Add a member" in page

    as_viewer = text(bob.get("/team/-/members"))
    assert "Add a member" not in as_viewer and "Leave" in as_viewer and "Remove" not in as_viewer
    assert bob.get("/team/secret").status_code == 200
    assert form(bob, "/team/-/members", username="alice").status_code == 403

    assert form(alice, "/team/-/members/bob/role", role="maintainer").status_code == 303
    assert "/team/-/settings" in text(bob.get("/team"))
    last = form(alice, "/team/-/members/alice/role", role="member")
    assert last.status_code == 409 and "needs an owner" in text(last)
    assert form(alice, "/team/-/members/bob/remove").status_code == 303
    assert bob.get("/team/secret").status_code == 404
    assert bob.get("/team").status_code == 404


def test_members_page_by_signed_cursor(app):
    olga = signed_up_client(app, "olga")
    post_json(olga, "/api/v1/orgs", {"name": "team"})
    post_json(olga, "/api/v1/orgs", {"name": "other"})
    for name, role in (("mary", "member"), ("nina", "maintainer"), ("paul", "member")):
        signed_up_client(app, name)
        post_json(olga, "/api/v1/orgs/team/members", {"username": name, "role": role})
    url = "/api/v1/orgs/team/members"
    seen, cursor = [], None
    while True:
        page = olga.get(f"{url}?limit=2" + (f"&cursor={cursor}" if cursor else "")).json
        assert len(page["members"]) <= 2
        seen += [m["username"] for m in page["members"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [m["username"] for m in olga.get(f"{url}?limit=100").json["members"]]
    assert sorted(seen) == ["mary", "nina", "olga", "paul"]
    cursor = olga.get(f"{url}?limit=1").json["next_cursor"]
    assert olga.get(f"/api/v1/orgs/other/members?cursor={cursor}").status_code == 400
    assert olga.get(f"/api/v1/activity?cursor={cursor}").status_code == 400
    assert olga.get(f"{url}?limit=101").status_code == 400


def test_workspace_members_page_by_signed_cursor(app):
    olga = signed_up_client(app, "olga")
    post_json(olga, "/api/v1/orgs", {"name": "team"})
    for name in ("prod", "test"):
        post_json(olga, "/api/v1/orgs/team/workspaces", {"name": name})
    for name in ("mary", "nina", "paul"):
        signed_up_client(app, name)
        assert post_json(olga, "/api/v1/orgs/team/workspaces/prod/members",
                         {"username": name, "role": "member"}).status_code == 201
    url = "/api/v1/orgs/team/workspaces/prod/members"
    seen, cursor = [], None
    while True:
        page = olga.get(f"{url}?limit=2" + (f"&cursor={cursor}" if cursor else "")).json
        assert len(page["members"]) <= 2
        seen += [m["username"] for m in page["members"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    whole = [m["username"] for m in olga.get(f"{url}?limit=100").json["members"]]
    assert seen == whole and len(set(seen)) == len(seen) >= 3
    cursor = olga.get(f"{url}?limit=1").json["next_cursor"]
    other = "/api/v1/orgs/team/workspaces/test/members"
    assert olga.get(f"{other}?cursor={cursor}").status_code == 400
    assert olga.get(f"/api/v1/orgs/team/members?cursor={cursor}").status_code == 400
    assert olga.get(f"{url}?limit=101").status_code == 400
