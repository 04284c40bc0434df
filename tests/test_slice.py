"""The vertical slice through the three services: sign-up, sign-in, dashboard, experiments."""

from __future__ import annotations

from sqlalchemy import func, select

from chaoshub.core.db import transaction
from chaoshub.core.web import SESSION_COOKIE
from tests.conftest import PASSWORD, csrf, post_json, sign_in, sign_up, signed_up_client


def test_sign_up_creates_the_account_and_its_personal_org(app, client):
    response = sign_up(client, "Alice", display_name="Alice Liddell")
    assert response.status_code == 303
    assert response.headers["Location"] == "/"

    from chaoshub.auth.models import Account
    from chaoshub.dashboard.models import Org, OrgMember, Workspace

    with app.app_context():
        with transaction("auth") as session:
            account = session.scalar(select(Account))
            assert account.username == "Alice"
            assert account.password_hash.startswith("$argon2")
            assert PASSWORD not in account.password_hash
        with transaction("dashboard") as session:
            org = session.scalar(select(Org))
            assert (org.name, org.personal) == ("Alice", True)
            workspaces = {(w.name, w.visibility) for w in session.scalars(select(Workspace))}
            assert workspaces == {("Personal", "private"), ("Public", "public")}
            member = session.scalar(select(OrgMember))
            assert (member.account_id, member.role) == (account.id, "owner")


def test_sign_in_shows_the_dashboard_with_orgs_and_workspaces(client):
    sign_up(client, "bob")
    response = sign_in(client, "bob")
    assert response.status_code == 303 and response.headers["Location"] == "/"
    cookie = client.get_cookie(SESSION_COOKIE)
    assert cookie.http_only and cookie.same_site == "Lax"

    page = client.get("/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Hello, bob" in html
    assert html.count('data-testid="workspace"') == 2
    assert "Personal" in html and "Public" in html


def test_visitors_are_sent_to_sign_in(client):
    response = client.get("/")
    assert response.status_code == 302 and response.headers["Location"] == "/signin"


def test_wrong_password_and_unknown_user_get_the_same_answer(app, client):
    sign_up(app.test_client(), "carol")  # another browser: signing up signs that one in
    wrong = sign_in(client, "carol", "not the password at all")
    unknown = sign_in(client, "nobody-here", "not the password at all")
    assert wrong.status_code == unknown.status_code == 401
    assert "The username or the password is wrong".lower() in wrong.get_data(as_text=True).lower()
    assert _alert(wrong) == _alert(unknown)
    assert client.get_cookie(SESSION_COOKIE) is None


def test_sign_up_rejects_bad_input_and_keeps_nothing(app, client):
    short = sign_up(client, "dave", password="short")
    assert short.status_code == 422
    assert "at least 10 characters" in short.get_data(as_text=True)
    assert sign_up(client, "x").status_code == 422
    assert sign_up(client, "dave").status_code == 303
    taken = sign_up(client, "DAVE")
    assert taken.status_code == 422 and "taken" in taken.get_data(as_text=True)


def test_a_username_the_dashboard_refuses_leaves_no_account_behind(app, client):
    from chaoshub.auth.models import Account
    from chaoshub.dashboard.models import Org

    response = sign_up(client, "api")
    assert response.status_code == 422
    assert "reserved" in response.get_data(as_text=True)
    with app.app_context():
        with transaction("auth") as session:
            assert session.scalar(select(func.count()).select_from(Account)) == 0
        with transaction("dashboard") as session:
            assert session.scalar(select(func.count()).select_from(Org)) == 0


def test_sign_out_ends_the_session(client):
    sign_up(client, "erin")
    sign_in(client, "erin")
    token = client.get_cookie(SESSION_COOKIE).value
    assert client.post("/signout", data={"csrf_token": csrf(client)}).status_code == 303
    assert client.get("/").status_code == 302
    # The old cookie value no longer works, even if a browser kept it.
    client.set_cookie(SESSION_COOKIE, token)
    assert client.get("/").status_code == 302


def test_forms_without_the_csrf_token_are_refused(client):
    response = client.post("/signup", data={"username": "frank", "password": PASSWORD})
    assert response.status_code == 403
    assert sign_up(client, "frank").status_code == 303
    sign_in(client, "frank")
    assert client.post("/signout").status_code == 403


def test_experiment_is_stored_and_read_back_by_its_owner(app, sample_experiment):
    alice = signed_up_client(app, "alice")
    created = post_json(alice, "/api/v1/orgs/ALICE/workspaces/personal/experiments",
                        sample_experiment)
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["title"] == sample_experiment["title"]
    assert body["tags"] == ["demo", "filesystem"]
    assert created.headers["Location"] == f"/api/v1/experiments/{body['id']}"

    read = alice.get(created.headers["Location"])
    assert read.status_code == 200
    assert read.get_json()["experiment"] == sample_experiment


def test_private_experiments_stay_invisible_to_others(app, sample_experiment):
    alice = signed_up_client(app, "alice")
    bob = signed_up_client(app, "bob")
    private = post_json(alice, "/api/v1/orgs/alice/workspaces/Personal/experiments",
                        sample_experiment).get_json()
    public = post_json(alice, "/api/v1/orgs/alice/workspaces/Public/experiments",
                       sample_experiment).get_json()

    assert bob.get(f"/api/v1/experiments/{private['id']}").status_code == 404
    assert app.test_client().get(f"/api/v1/experiments/{private['id']}").status_code == 404
    assert bob.get(f"/api/v1/experiments/{public['id']}").status_code == 200
    assert app.test_client().get(f"/api/v1/experiments/{public['id']}").status_code == 200
    assert bob.get("/api/v1/experiments/not-an-id").status_code == 404


def test_only_members_write_into_a_workspace(app, sample_experiment):
    signed_up_client(app, "alice")
    bob = signed_up_client(app, "bob")
    hidden = post_json(bob, "/api/v1/orgs/alice/workspaces/Personal/experiments",
                       sample_experiment)
    assert hidden.status_code == 404
    visible = post_json(bob, "/api/v1/orgs/alice/workspaces/Public/experiments",
                        sample_experiment)
    assert visible.status_code == 403
    assert visible.get_json()["error"] == "forbidden"
    nowhere = post_json(bob, "/api/v1/orgs/nobody/workspaces/Public/experiments",
                        sample_experiment)
    assert nowhere.status_code == 404


def test_anonymous_writes_need_a_sign_in(client, sample_experiment):
    response = post_json(client, "/api/v1/orgs/alice/workspaces/Public/experiments",
                         sample_experiment)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_invalid_experiments_get_every_problem_with_its_path(app):
    alice = signed_up_client(app, "alice")
    response = post_json(alice, "/api/v1/orgs/alice/workspaces/Personal/experiments", {
        "title": "no description",
        "method": [{"type": "action", "name": "boom", "provider": {"type": "python"}},
                   {"ref": "missing"}],
    })
    assert response.status_code == 422
    body = response.get_json()
    assert body["error"] == "validation_failed"
    pointers = {p["pointer"] for p in body["details"]}
    assert pointers == {"", "/method/0/provider"}


def test_unresolved_refs_are_reported(app, sample_experiment):
    alice = signed_up_client(app, "alice")
    sample_experiment["rollbacks"].append({"ref": "no-such-activity"})
    response = post_json(alice, "/api/v1/orgs/alice/workspaces/Personal/experiments",
                         sample_experiment)
    assert response.status_code == 422
    assert response.get_json()["details"] == [
        {"pointer": "/rollbacks/1/ref", "message": "no activity is named 'no-such-activity'"}
    ]


def test_a_document_naming_a_module_is_never_imported(app, sample_experiment, tmp_path):
    import sys

    alice = signed_up_client(app, "alice")
    sample_experiment["method"][1]["provider"]["module"] = "chaoshub_never_imported"
    response = post_json(alice, "/api/v1/orgs/alice/workspaces/Personal/experiments",
                         sample_experiment)
    assert response.status_code == 201
    assert "chaoshub_never_imported" not in sys.modules


def _alert(response) -> str:
    html = response.get_data(as_text=True)
    start = html.index('role="alert">')
    return html[start:html.index("</p>", start)]
