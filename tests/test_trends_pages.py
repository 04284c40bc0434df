"""Trends on pages: the workspace page's part, the org's trends tab and the runs overview's
part, each made of what the reader may see."""

from __future__ import annotations

import pytest

from tests.conftest import post_json, signed_up_client
from tests.experiment_data import create, experiment
from tests.trend_data import seed_runs


def titled(title: str) -> dict:
    return {**experiment(), "title": title}


def section(html: str) -> str:
    start = html.index('data-testid="trends"')
    return html[start:html.index("</section>", start)]


@pytest.fixture
def alice(app):
    return signed_up_client(app, "alice")


@pytest.fixture
def team(app, alice):
    assert post_json(alice, "/api/v1/orgs", {"name": "team"}).status_code == 201
    for name, visibility in (("secret", "private"), ("open", "public")):
        made = post_json(alice, "/api/v1/orgs/team/workspaces", {
            "name": name, "visibility": visibility, "outsider_executions": "status"})
        assert made.status_code == 201, made.get_json()
    hidden = create(alice, "team", "secret", titled("Secret payments"))
    seed_runs(app, alice, hidden["id"], [("passed", 2), ("deviated", 1)])
    shown = create(alice, "team", "open", titled("Open checkout"))
    seed_runs(app, alice, shown["id"], [("passed", 1)])


def test_the_workspace_page_shows_the_chart_score_formula_and_flips(app, alice):
    flipped = create(alice, document=titled("DNS flips"))
    runs = seed_runs(app, alice, flipped["id"], [("passed", 2), ("deviated", 0)])
    html = section(alice.get("/alice/Personal").get_data(as_text=True))
    assert html.count('data-testid="trend-day"') == 30
    assert html.count('data-testid="trend-bar"') == 2
    assert 'role="img"' in html and "<desc" in html and "Passed: 1, Deviated: 1" in html
    assert 'data-testid="resilience-score"' in html and "0.5 ^ (days since" in html
    flips = html[html.index('data-testid="trends-flips"'):]
    assert "DNS flips" in flips and f"/execution/{runs[1]}" in flips


def test_the_org_trends_tab_shows_an_outsider_only_what_is_public(app, alice, team):
    bob = signed_up_client(app, "bob")
    page = bob.get("/team/-/trends")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Open checkout" in html and "Secret payments" not in html
    assert "Passed: 1." in html and "Deviated" not in section(html)
    mine = alice.get("/team/-/trends").get_data(as_text=True)
    assert "Secret payments" in mine and "Open checkout" in mine
    assert 'href="/team/-/trends"' in alice.get("/team").get_data(as_text=True)


def test_the_org_trends_tab_redirects_from_a_former_name_and_hides_unknown_orgs(app, alice,
                                                                                team):
    renamed = alice.patch("/api/v1/orgs/team", json={"name": "crew"},
                          headers={"X-CSRF-Token": alice.get_cookie("chaoshub_csrf").value})
    assert renamed.status_code == 200, renamed.get_json()
    moved = alice.get("/team/-/trends")
    assert moved.status_code == 301 and moved.headers["Location"].endswith("/crew/-/trends")
    assert alice.get("/nobody-here/-/trends").status_code == 404


def test_the_runs_overview_shows_the_trends_of_my_workspaces(app, alice, team):
    html = alice.get("/-/runs").get_data(as_text=True)
    assert "Secret payments" in section(html) and "team/secret" in section(html)
    bob = signed_up_client(app, "bob")
    assert "Open checkout" not in bob.get("/-/runs").get_data(as_text=True)


def test_the_dashboard_links_to_each_orgs_trends_and_to_mine(app, alice, team):
    html = alice.get("/").get_data(as_text=True)
    assert 'href="/team/-/trends"' in html and 'href="/alice/-/trends"' in html
    assert 'href="/-/runs#trends"' in html
