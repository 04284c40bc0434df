"""Search by name prefix, whatever the case, within what the reader may see."""

from __future__ import annotations

import pytest

from chaoshub.auth import service as auth
from chaoshub.dashboard import service as dashboard
from chaoshub.experiment import service as experiment
from chaoshub.router import service_for
from tests import experiment_data
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
    page = olga.get("/-/search?q=olga")
    hits = page.text.count('data-testid="search-hit"')
    assert page.status_code == 200 and hits == 2  # the user and the org
    assert 'action="/-/search"' in olga.get("/").text
    moved = olga.get("/search?q=olga")  # the former address, kept for old links
    assert moved.status_code == 301 and moved.headers["Location"].endswith("/-/search?q=olga")


def document(title: str, *tags: str) -> dict:
    found = experiment_data.experiment()
    found["title"], found["tags"] = title, list(tags)
    return found


def titles(hits) -> list[str]:
    return [hit.title for hit in hits]


def test_experiments_and_runs_are_found_where_the_reader_may_see_them(hub):
    olga, mary, otto = hub("olga"), hub("mary"), hub("otto")
    visitor = auth.resolve_credentials()
    dashboard.create_org(olga, "team")
    dashboard.create_workspace(olga, "team", "secret", "private")
    dashboard.create_workspace(olga, "team", "inside", "internal")
    dashboard.create_workspace(olga, "team", "open", "public", "status")
    dashboard.add_member(olga, "team", "mary", "member")
    hidden = experiment.create_experiment(olga, "team", "secret", document("Latency storm"))
    experiment.create_experiment(olga, "team", "inside", document("Disk fill", "latency"))
    shown = experiment.create_experiment(olga, "team", "open", document("Network latency"))
    hidden_run = experiment.publish_execution(olga, hidden.id, experiment_data.journal())
    shown_run = experiment.publish_execution(olga, shown.id, experiment_data.journal())

    # By the start of the title, of one of its words, or of a tag; newest first.
    assert titles(experiment.search(mary, "LATENCY").experiments) == [
        "Network latency", "Disk fill", "Latency storm"]
    assert [run.id for run in experiment.search(mary, "latency").runs] == [
        shown_run.execution.id, hidden_run.execution.id]
    assert titles(experiment.search(mary, "net").experiments) == ["Network latency"]
    assert experiment.search(mary, "work").experiments == []  # the start of a word only

    # A private workspace's experiments and runs never show to outsiders.
    assert titles(experiment.search(otto, "latency").experiments) == [
        "Network latency", "Disk fill"]
    assert titles(experiment.search(visitor, "latency").experiments) == ["Network latency"]
    # By the end of a run's id: its start is when it was published, the same for both.
    assert hidden_run.execution.id[:6] == shown_run.execution.id[:6]
    by_id = experiment.search(otto, hidden_run.execution.id[-8:])
    assert by_id.runs == [] and by_id.experiments == []
    # Where outsiders see runs' statuses, they find them, by id too: its end, or whole.
    url = f"/team/open/experiment/{shown.id}/execution/{shown_run.execution.id}"
    for part in (shown_run.execution.id[-8:], shown_run.execution.id.upper()):
        assert [run.url for run in experiment.search(visitor, part).runs] == [url]
    assert [run.url for run in experiment.search(mary, hidden_run.execution.id[:6]).runs] == [
        url, f"/team/secret/experiment/{hidden.id}/execution/{hidden_run.execution.id}"]

    # A workspace made private later takes its experiments and runs out of sight.
    dashboard.update_workspace(olga, "team", "open", visibility="private")
    assert experiment.search(visitor, "latency") == experiment.search(visitor, "zzz")
    assert titles(experiment.search(otto, "latency").experiments) == ["Disk fill"]
    assert experiment.search(otto, "latency").runs == []  # internal, showing no runs


def test_the_search_page_and_the_api_show_experiments_and_runs(app):
    olga = signed_up_client(app, "olga")
    made = experiment_data.create(olga, "olga", "Public", document("Kill the cache", "redis"))
    experiment_data.create(olga, "olga", "Personal", document("Kill the database"))
    page = olga.get("/-/search?q=redis")
    assert page.status_code == 200 and "Kill the cache" in page.text
    assert f'href="/olga/Public/experiment/{made["id"]}"' in page.text
    visitor = app.test_client()
    assert visitor.get("/-/search?q=kill").text.count("Kill the") == 1

    # The API answers the same, composed the same way, for the same readers.
    assert [e["title"] for e in olga.get("/api/v1/search?q=kill").json["experiments"]] == [
        "Kill the database", "Kill the cache"]
    found = visitor.get("/api/v1/search?q=kill").json
    assert [e["url"] for e in found["experiments"]] == [
        f"/olga/Public/experiment/{made['id']}"]
    assert found["runs"] == [] and found["users"] == []
    # Split, both go to the service that composes them.
    assert service_for("/api/v1/search") == service_for("/-/search") == "experiment"
