"""Trends in the API: a workspace's, an org's and the caller's own, counted by the database,
and made only of the runs the caller may see."""

from __future__ import annotations

from datetime import timedelta

import pytest

from chaoshub.core.db import transaction
from chaoshub.core.models import utcnow
from chaoshub.experiment.models import Experiment, Run
from tests.conftest import post_json, signed_up_client
from tests.experiment_data import create, experiment, make_token
from tests.trend_data import seed_runs

TEAM = "/api/v1/orgs/team"


def titled(title: str) -> dict:
    return {**experiment(), "title": title}


@pytest.fixture
def alice(app):
    return signed_up_client(app, "alice")


@pytest.fixture
def team(app, alice):
    """Alice's org: a private workspace and a public one whose runs outsiders see the status of."""
    assert post_json(alice, "/api/v1/orgs", {"name": "team"}).status_code == 201
    for name, visibility, runs in (("secret", "private", "none"), ("open", "public", "status"),
                                   ("closed", "public", "none")):
        made = post_json(alice, f"{TEAM}/workspaces", {
            "name": name, "visibility": visibility, "outsider_executions": runs})
        assert made.status_code == 201, made.get_json()
    hidden = create(alice, "team", "secret", titled("Secret payments"))
    seed_runs(app, alice, hidden["id"], [("deviated", 3), ("deviated", 2), ("deviated", 1)])
    shown = create(alice, "team", "open", titled("Open checkout"))
    seed_runs(app, alice, shown["id"], [("passed", 2), ("passed", 1)])
    closed = create(alice, "team", "closed", titled("Closed search"))
    seed_runs(app, alice, closed["id"], [("probe-error", 1)])
    return {"hidden": hidden, "shown": shown, "closed": closed}


def test_a_workspaces_trends_count_runs_by_day_and_outcome(app, alice):
    steady = create(alice, document=titled("Steady"))
    flipped = create(alice, document=titled("Flipped"))
    create(alice, document=titled("Never run"))
    quiet = create(alice, document=titled("Quiet"))
    seed_runs(app, alice, steady["id"], [("passed", 3), ("passed", 1), ("interrupted", 1)])
    runs = seed_runs(app, alice, flipped["id"], [("passed", 2), ("deviated", 0)])
    seed_runs(app, alice, quiet["id"], [("passed", 45)])

    answer = alice.get("/api/v1/orgs/alice/workspaces/Personal/trends")
    assert answer.status_code == 200, answer.get_json()
    found = answer.get_json()
    assert len(found["days"]) == 30 and found["window_days"] == 30
    assert found["totals"] == {"passed": 3, "deviated": 1, "interrupted": 1}
    assert found["days"][-1]["counts"] == {"deviated": 1}
    assert found["days"][-2]["counts"] == {"passed": 1, "interrupted": 1}
    assert found["outcomes"] == ["passed", "deviated", "interrupted"]
    by_title = {e["title"]: e for e in found["experiments"]}
    assert by_title["Steady"]["pass_rate"] == 1.0 and by_title["Steady"]["runs"] == 3
    assert by_title["Flipped"]["pass_rate"] == 0.5
    assert by_title["Never run"]["last_run_at"] is None
    assert by_title["Quiet"]["runs"] == 0 and by_title["Quiet"]["rate_counted"] == 1.0
    assert [f["title"] for f in found["flips"]] == ["Flipped"]
    assert found["flips"][0]["failed"]["execution_id"] == runs[1]
    assert found["flips"][0]["passed"]["execution_id"] == runs[0]
    assert [e["title"] for e in found["stale"]] == ["Never run", "Quiet"]
    score = found["score"]
    assert score["experiments"] == 4
    contributions = sum(e["contribution"] for e in found["experiments"])
    assert score["value"] == pytest.approx(100 * contributions / 4)
    assert 0 < score["value"] < 50  # Steady's ~0.95 and half of Flipped, over four
    assert "freshness" in score["formula"] and score["worked"].endswith(
        f"= {score['value']:.0f}")


def test_hub_runs_that_ended_without_a_journal_count_in_the_chart(app, alice):
    made = create(alice, document=titled("Lost worker"))
    seed_runs(app, alice, made["id"], [("passed", 1)])
    with app.app_context(), transaction("experiment") as session:
        for status in ("interrupted", "refused"):  # a refused run never ran: not counted
            session.add(Run(experiment_id=made["id"], workspace_id=_workspace_id(app, made),
                            status=status, origin="hub", created_by="x",
                            created_at=utcnow() - timedelta(hours=1)))
    found = alice.get("/api/v1/orgs/alice/workspaces/Personal/trends").get_json()
    assert found["totals"] == {"passed": 1, "interrupted": 1}
    assert found["experiments"][0]["pass_rate"] == 1.0  # no verdict from a run stopped so


def _workspace_id(app, made: dict) -> str:
    with app.app_context(), transaction("experiment") as session:
        return session.get(Experiment, made["id"]).workspace_id


def test_an_orgs_trends_leave_out_what_an_outsider_may_not_see(app, alice, team):
    bob = signed_up_client(app, "bob")
    found = bob.get(f"{TEAM}/trends").get_json()
    # Only the open workspace: the private one is hidden, the closed one shows no runs.
    assert found["totals"] == {"passed": 2}
    assert [e["title"] for e in found["experiments"]] == ["Open checkout"]
    assert found["flips"] == [] and found["score"]["experiments"] == 1
    text = bob.get(f"{TEAM}/trends").get_data(as_text=True)
    assert "Secret payments" not in text and team["hidden"]["id"] not in text
    assert "Closed search" not in text
    # Alice, a member, sees all three.
    mine = alice.get(f"{TEAM}/trends").get_json()
    assert mine["totals"] == {"passed": 2, "deviated": 3, "probe-error": 1}
    assert mine["score"]["experiments"] == 3


def test_a_workspaces_trends_are_for_those_who_see_its_runs(app, alice, team, client):
    bob = signed_up_client(app, "bob")
    assert bob.get(f"{TEAM}/workspaces/secret/trends").status_code == 404
    closed = bob.get(f"{TEAM}/workspaces/closed/trends")
    assert closed.status_code == 404 and closed.get_json()["error"] == "not_found"
    assert bob.get(f"{TEAM}/workspaces/open/trends").get_json()["totals"] == {"passed": 2}
    # A visitor too sees a public workspace's trends; the org's are those of what is public.
    assert client.get(f"{TEAM}/workspaces/open/trends").status_code == 200
    assert client.get(f"{TEAM}/trends").get_json()["totals"] == {"passed": 2}
    assert client.get("/api/v1/orgs/nobody-here/trends").status_code == 404


def test_a_token_needs_the_executions_read_scope(app, alice, client):
    reader = make_token(alice, ["experiments:read"])
    path = "/api/v1/orgs/alice/workspaces/Personal/trends"
    refused = client.get(path, headers={"Authorization": f"Bearer {reader}"})
    assert refused.status_code == 403
    runs_reader = make_token(alice, ["executions:read"])
    assert client.get(path, headers={"Authorization": f"Bearer {runs_reader}"}
                      ).status_code == 200
    assert client.get("/api/v1/orgs/alice/trends",
                      headers={"Authorization": f"Bearer {reader}"}).status_code == 403


def test_my_trends_are_those_of_the_workspaces_i_hold_a_role_in(app, alice, team, client):
    bob = signed_up_client(app, "bob")
    own = create(bob, "bob", "Personal", titled("Bobs own"))
    seed_runs(app, bob, own["id"], [("aborted", 1)])
    found = bob.get("/api/v1/trends").get_json()
    assert found["totals"] == {"aborted": 1}  # not alice's public runs
    assert [e["title"] for e in found["experiments"]] == ["Bobs own"]
    assert alice.get("/api/v1/trends").get_json()["score"]["experiments"] == 3
    assert client.get("/api/v1/trends").status_code == 401
