"""Search by name prefix, whatever the case, within what the reader may see."""

from __future__ import annotations

import pytest

from chaoshub.auth import service as auth
from chaoshub.dashboard import service as dashboard
from tests.conftest import signed_up_client
from tests.test_invitations import claim_for


@pytest.fixture
def hub(app):
    with app.app_context():
        yield claim_for


def names(hits) -> list[str]:
    return [hit.name for hit in hits]


def test_search_respects_visibility(hub):
    olga, otto = hub("olga"), hub("otto")
    visitor = auth.resolve_credentials()
    dashboard.create_org(olga, "Chaos-Team")
    dashboard.create_org(olga, "chaos_closed")
    dashboard.create_workspace(olga, "Chaos-Team", "chaos-prod", "private")
    dashboard.create_workspace(olga, "Chaos-Team", "chaos-stage", "internal")
    dashboard.create_workspace(olga, "chaos_closed", "chaos-lab", "private")
    hub("Chad")

    mine = dashboard.search(olga, "CHA")
    assert names(mine.users) == ["Chad"]
    assert names(mine.orgs) == ["Chad", "Chaos-Team", "chaos_closed"]  # Chad's is personal
    assert names(mine.workspaces) == ["chaos_closed/chaos-lab", "Chaos-Team/chaos-prod",
                                      "Chaos-Team/chaos-stage"]

    theirs = dashboard.search(otto, "chaos")
    assert names(theirs.orgs) == ["Chaos-Team"]  # it has a workspace open to otto
    assert names(theirs.workspaces) == ["Chaos-Team/chaos-stage"]

    anonymous = dashboard.search(visitor, "chaos")
    assert (anonymous.users, anonymous.orgs, anonymous.workspaces) == ([], [], [])
    dashboard.update_workspace(olga, "Chaos-Team", "chaos-stage", visibility="public")
    anonymous = dashboard.search(visitor, "c")
    assert names(anonymous.orgs) == ["Chad", "Chaos-Team"] and names(anonymous.workspaces) == [
        "Chaos-Team/chaos-stage"]


def test_prefixes_are_literal_and_results_limited(hub):
    olga = hub("olga")
    for n in range(4):
        dashboard.create_org(olga, f"team-{n}")
    dashboard.create_org(olga, "teamx")
    assert names(dashboard.search(olga, "team_").orgs) == []  # "_" is no wildcard
    assert names(dashboard.search(olga, "team%").orgs) == []
    assert len(dashboard.search(olga, "team", limit=2).orgs) == 2
    assert dashboard.search(olga, "  ").orgs == []


def test_the_api_and_the_page(app):
    olga = signed_up_client(app, "olga")
    found = app.test_client().get("/api/v1/search?q=OL").json
    assert [o["name"] for o in found["orgs"]] == ["olga"]  # its Public workspace is open
    assert found["users"] == []
    mine = olga.get("/api/v1/search?q=ol&limit=1").json
    assert [u["url"] for u in mine["users"]] == ["/olga"]
    assert olga.get("/api/v1/search?q=ol&limit=x").status_code == 400
    page = olga.get("/search?q=olga")
    hits = page.text.count('data-testid="search-hit"')
    assert page.status_code == 200 and hits == 2  # the user and the org
    assert 'action="/search"' in olga.get("/").text
