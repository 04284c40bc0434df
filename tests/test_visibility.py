"""Who sees and does what: every org, workspace and member route, and the experiment routes,
for anonymous visitors, signed-in outsiders and each role, on private, internal and public
workspaces, plus another org's ids put into URLs; and, last, roles given in one workspace.

Each org of the matrix holds workspaces of one visibility only, so the org itself is exactly as
visible as they are. The answers: 404 where the object must stay invisible, 403 where it is
visible but the action is not allowed, 401 (or, for pages read, a redirect to sign in) for
visitors who need an account.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from tests.conftest import csrf, post_json, signed_up_client

VISIBILITIES = ("private", "internal", "public")
ROLES = ("anonymous", "outsider", "viewer", "member", "maintainer", "owner")
MEMBERS = ("viewer", "member", "maintainer", "owner")
WRITERS = ("member", "maintainer", "owner")
SETTINGS = ("maintainer", "owner")
OWNERS = ("owner",)
USERS = {"owner": "olga", "maintainer": "mike", "member": "mary", "viewer": "vic",
         "outsider": "otto"}


def sees(role: str, visibility: str) -> bool:
    """The rule under test, written out plainly."""
    if role in MEMBERS or visibility == "public":
        return True
    return visibility == "internal" and role != "anonymous"


def read(role, visibility, ok=200):
    return ok if sees(role, visibility) else 404


def gated(allowed, ok, anonymous=401):
    """Visible first (404), then an account (401), then a role that allows it (403)."""
    def expect(role, visibility):
        if not sees(role, visibility):
            return 404
        if role == "anonymous":
            return anonymous
        return ok if role in allowed else 403
    return expect


def write(allowed, ok, also=()):
    """Writes: visitors get 401 whatever they aim at; `also` are roles allowed anyway."""
    def expect(role, visibility):
        if role == "anonymous":
            return 401
        if role in also:
            return ok
        return gated(allowed, ok)(role, visibility)
    return expect


@dataclass
class Route:
    method: str
    path: str  # {org} and {experiment} are filled in per cell
    expect: Callable[[str, str], int]
    body: dict | None = None
    form: bool = False
    restore: Callable | None = None  # puts the world back after a successful change


class World:
    """Three orgs, one per visibility, with the same members; and someone else's org."""

    def __init__(self, app, sample):
        self.app, self.sample = app, sample
        self.clients = {role: signed_up_client(app, name) for role, name in USERS.items()}
        self.clients["anonymous"] = app.test_client()
        self.owner = self.clients["owner"]
        self.experiments = {vis: self.build(vis) for vis in VISIBILITIES}
        zed = signed_up_client(app, "zed")
        assert post_json(zed, "/api/v1/orgs", {"name": "elsewhere"}).status_code == 201
        post_json(zed, "/api/v1/orgs/elsewhere/workspaces", {"name": "ws"})
        self.foreign = {
            "org_id": zed.get("/api/v1/orgs/elsewhere").get_json()["id"],
            "workspace_id": zed.get("/api/v1/orgs/elsewhere/workspaces/ws").get_json()["id"],
            "experiment": self.ok(post_json(
                zed, "/api/v1/orgs/elsewhere/workspaces/ws/experiments", sample))["id"],
        }

    @staticmethod
    def ok(response) -> dict:
        assert response.status_code < 300, response.get_json()
        return response.get_json() or {}

    def build(self, visibility: str) -> str:
        """The org of one visibility, its workspaces and members; returns its experiment."""
        org = f"{visibility}-org"
        self.ok(post_json(self.owner, "/api/v1/orgs", {"name": org}))
        for ws in ("ws", "doomed"):
            self.ok(post_json(self.owner, f"/api/v1/orgs/{org}/workspaces",
                              {"name": ws, "visibility": visibility}))
        for role in ("maintainer", "member", "viewer"):
            self.ok(post_json(self.owner, f"/api/v1/orgs/{org}/members",
                              {"username": USERS[role], "role": role}))
        created = post_json(self.owner, f"/api/v1/orgs/{org}/workspaces/ws/experiments",
                            self.sample)
        return self.ok(created)["id"]

    def send(self, client, method: str, path: str, body=None, form=False):
        headers = {"X-CSRF-Token": csrf(client)}
        if form:
            return client.open(path, method=method,
                               data={**(body or {}), "csrf_token": csrf(client)})
        return client.open(path, method=method, json=body, headers=headers)


def routes(world: World) -> list[Route]:
    def undo(method, path, body=None):
        return lambda org: world.ok(world.send(world.owner, method, path.format(org=org), body))

    def rebuild(org):
        visibility = org.removesuffix("-org")
        world.experiments[visibility] = world.build(visibility)

    return [
        # Reads.
        Route("GET", "/api/v1/orgs/{org}", read),
        Route("GET", "/api/v1/orgs/{org}/workspaces", read),
        Route("GET", "/api/v1/orgs/{org}/workspaces/ws", read),
        Route("GET", "/api/v1/orgs/{org}/members", gated(MEMBERS, 200)),
        Route("GET", "/api/v1/orgs/{org}/members/mary", gated(MEMBERS, 200)),
        Route("GET", "/api/v1/experiments/{experiment}", read),
        Route("GET", "/{org}", read),
        Route("GET", "/{org}/ws", read),
        Route("GET", "/{org}/-/members", gated(MEMBERS, 200, anonymous=302)),
        Route("GET", "/{org}/-/settings", gated(SETTINGS, 200, anonymous=302)),
        Route("GET", "/{org}/ws/-/settings", gated(SETTINGS, 200, anonymous=302)),
        # Writes through the API.
        Route("POST", "/api/v1/orgs/{org}/workspaces/ws/experiments", write(WRITERS, 201),
              body=world.sample),
        Route("PATCH", "/api/v1/orgs/{org}", write(SETTINGS, 200), body={"description": "d"}),
        Route("POST", "/api/v1/orgs/{org}/workspaces", write(SETTINGS, 201),
              body={"name": "fresh"},
              restore=undo("DELETE", "/api/v1/orgs/{org}/workspaces/fresh")),
        Route("PATCH", "/api/v1/orgs/{org}/workspaces/ws", write(SETTINGS, 200),
              body={"outsider_executions": "status"}),
        Route("DELETE", "/api/v1/orgs/{org}/workspaces/doomed", write(SETTINGS, 204),
              restore=lambda org: world.ok(post_json(
                  world.owner, f"/api/v1/orgs/{org}/workspaces",
                  {"name": "doomed", "visibility": org.removesuffix("-org")}))),
        Route("POST", "/api/v1/orgs/{org}/members", write(OWNERS, 201),
              body={"username": "zed", "role": "viewer"},
              restore=undo("DELETE", "/api/v1/orgs/{org}/members/zed")),
        Route("PATCH", "/api/v1/orgs/{org}/members/vic", write(OWNERS, 200),
              body={"role": "viewer"}),
        # A member may leave: removing mary is hers to do, and the owners'.
        Route("DELETE", "/api/v1/orgs/{org}/members/mary", write(OWNERS, 204, also=("member",)),
              restore=undo("POST", "/api/v1/orgs/{org}/members",
                           {"username": "mary", "role": "member"})),
        # Writes through the pages' forms.
        Route("POST", "/{org}/-/workspaces", write(SETTINGS, 303), body={"name": "fresh"},
              form=True, restore=undo("DELETE", "/api/v1/orgs/{org}/workspaces/fresh")),
        Route("POST", "/{org}/-/settings", write(SETTINGS, 303), body={"description": "d"},
              form=True),
        Route("POST", "/{org}/ws/-/settings", write(SETTINGS, 303),
              body={"outsider_executions": "none"}, form=True),
        Route("POST", "/{org}/-/members", write(OWNERS, 303),
              body={"username": "zed", "role": "viewer"}, form=True,
              restore=undo("DELETE", "/api/v1/orgs/{org}/members/zed")),
        Route("POST", "/{org}/-/members/vic/role", write(OWNERS, 303), body={"role": "viewer"},
              form=True),
        # Last: deleting the org itself, rebuilt after each success.
        Route("DELETE", "/api/v1/orgs/{org}", write(OWNERS, 204), restore=rebuild),
    ]


@pytest.fixture
def world(app, sample_experiment):
    return World(app, sample_experiment)


def test_every_route_answers_exactly_what_the_matrix_allows(world):
    wrong = []
    for route in routes(world):
        for visibility in VISIBILITIES:
            org = f"{visibility}-org"
            for role in ROLES:
                path = route.path.format(org=org, experiment=world.experiments[visibility])
                response = world.send(world.clients[role], route.method, path, route.body,
                                      route.form)
                expected = route.expect(role, visibility)
                if response.status_code != expected:
                    wrong.append(f"{route.method} {path} as {role}: "
                                 f"{response.status_code}, expected {expected}")
                if response.status_code == 302:
                    assert response.headers["Location"].startswith("/signin?next=/")
                if route.restore and response.status_code in (200, 201, 204, 303):
                    route.restore(org)
    assert wrong == []


def test_the_api_answers_in_the_one_error_shape_across_the_matrix(world):
    anonymous, outsider = world.clients["anonymous"], world.clients["outsider"]
    for client, path, status in ((anonymous, "/api/v1/orgs/private-org", 404),
                                 (outsider, "/api/v1/orgs/internal-org/members", 403),
                                 (anonymous, "/api/v1/orgs/public-org/members", 401)):
        response = client.get(path)
        assert response.status_code == status
        assert set(response.get_json()) == {"error", "message", "details"}


def test_another_orgs_ids_lead_nowhere(world):
    owner, foreign = world.owner, world.foreign
    for method, path, body in (
        ("GET", f"/api/v1/experiments/{foreign['experiment']}", None),
        ("GET", f"/api/v1/orgs/{foreign['org_id']}", None),
        ("GET", f"/api/v1/orgs/private-org/workspaces/{foreign['workspace_id']}", None),
        ("GET", "/api/v1/orgs/elsewhere", None),
        ("GET", "/api/v1/orgs/elsewhere/workspaces/ws", None),
        ("GET", "/api/v1/orgs/elsewhere/members", None),
        ("PATCH", "/api/v1/orgs/elsewhere", {"description": "x"}),
        ("DELETE", "/api/v1/orgs/elsewhere", None),
        ("PATCH", "/api/v1/orgs/elsewhere/workspaces/ws", {"visibility": "public"}),
        ("DELETE", "/api/v1/orgs/elsewhere/workspaces/ws", None),
        ("POST", "/api/v1/orgs/elsewhere/members", {"username": "olga", "role": "owner"}),
        ("DELETE", "/api/v1/orgs/elsewhere/members/zed", None),
        ("POST", "/api/v1/orgs/elsewhere/workspaces/ws/experiments", world.sample),
        ("GET", "/elsewhere", None),
        ("GET", "/elsewhere/ws", None),
        ("GET", f"/{foreign['org_id']}", None),
        ("GET", f"/private-org/{foreign['workspace_id']}", None),
    ):
        response = world.send(owner, method, path, body)
        assert response.status_code == 404, f"{method} {path}: {response.status_code}"


def test_a_token_restricted_to_one_workspace_reads_nothing_elsewhere(world):
    owner = world.owner
    token = post_json(owner, "/api/v1/tokens", {"name": "one", "scopes": ["full"],
                                                "workspace": "private-org/ws"}).get_json()
    bearer = {"Authorization": f"Bearer {token['secret']}"}
    mine = owner.get(f"/api/v1/experiments/{world.experiments['private']}", headers=bearer)
    assert mine.status_code == 200
    other = owner.get(f"/api/v1/experiments/{world.experiments['internal']}", headers=bearer)
    assert other.status_code == 404
    # Not even an org whose workspaces are open to every signed-in user.
    listed = owner.get("/api/v1/orgs/internal-org/workspaces", headers=bearer)
    assert listed.status_code == 404
    # A token may read an org but never run it.
    changed = owner.patch("/api/v1/orgs/private-org", json={"description": "x"}, headers=bearer)
    assert changed.status_code == 403


# Workspace roles -----------------------------------------------------------------------------
# Someone given a role in the workspace "ws" of an org whose workspaces are all private: what
# they get there and in its other workspace "other" (the role that counts in a workspace is the
# higher of the org and workspace roles), and whether they may list the org's members.

IN_A_WORKSPACE = (
    ("GET", "/api/v1/orgs/team/workspaces/{ws}", None),
    ("POST", "/api/v1/orgs/team/workspaces/{ws}/experiments", "experiment"),
    ("PATCH", "/api/v1/orgs/team/workspaces/{ws}", {"outsider_executions": "none"}),
    ("POST", "/api/v1/orgs/team/workspaces/{ws}/members", {"username": "zed", "role": "viewer"}),
)
# org role, role in ws, then (read, write, settings, members) in ws, the same in other, and
# the org's member list.
WORKSPACE_ROLE_ROWS = [
    ("viewer", "maintainer", (200, 201, 200, 201), (200, 403, 403, 403), 200),
    ("maintainer", "viewer", (200, 201, 200, 201), (200, 201, 200, 201), 200),
    ("member", "owner", (200, 201, 200, 201), (200, 201, 403, 403), 200),
    (None, "maintainer", (200, 201, 200, 201), (404, 404, 404, 404), 403),
    (None, "member", (200, 201, 403, 403), (404, 404, 404, 404), 403),
    (None, "viewer", (200, 403, 403, 403), (404, 404, 404, 404), 403),
]


@pytest.mark.parametrize("org_role,ws_role,in_ws,in_other,org_members", WORKSPACE_ROLE_ROWS,
                         ids=[f"{o or 'outsider'}+ws-{w}" for o, w, *_ in WORKSPACE_ROLE_ROWS])
def test_a_workspace_role_answers_as_the_matrix_says(app, sample_experiment, org_role, ws_role,
                                                     in_ws, in_other, org_members):
    owner, pat = signed_up_client(app, "olga"), signed_up_client(app, "pat")
    signed_up_client(app, "zed")
    World.ok(post_json(owner, "/api/v1/orgs", {"name": "team"}))
    for ws in ("ws", "other"):
        World.ok(post_json(owner, "/api/v1/orgs/team/workspaces", {"name": ws}))
    if org_role:
        World.ok(post_json(owner, "/api/v1/orgs/team/members",
                           {"username": "pat", "role": org_role}))
    World.ok(post_json(owner, "/api/v1/orgs/team/workspaces/ws/members",
                       {"username": "pat", "role": ws_role}))
    got = {}
    for ws in ("ws", "other"):
        got[ws] = tuple(
            pat.open(path.format(ws=ws), method=method, headers={"X-CSRF-Token": csrf(pat)},
                     json=sample_experiment if body == "experiment" else body).status_code
            for method, path, body in IN_A_WORKSPACE)
    got["org members"] = pat.get("/api/v1/orgs/team/members").status_code
    assert got == {"ws": in_ws, "other": in_other, "org members": org_members}
