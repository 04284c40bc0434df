"""The runs overview (/-/runs): latest runs, runs in progress, what deviated this week and what
has not run for a month, across the workspaces the reader holds a role in, and no other."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from chaoshub.core.db import transaction
from chaoshub.core.models import utcnow
from chaoshub.experiment.models import Execution, Experiment
from tests.conftest import csrf, post_json, signed_up_client
from tests.experiment_data import create, experiment, make_token, variant
from tests.run_data import runnable

RUNNER = ["experiments:read", "executions:read", "executions:write", "runs:execute"]


@pytest.fixture
def alice(app):
    return signed_up_client(app, "alice")


def publish(client, experiment_id: str, outcome: str) -> dict:
    response = client.post(f"/api/v1/experiments/{experiment_id}/executions",
                           json=variant(outcome), headers={"X-CSRF-Token": csrf(client)})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def titled(title: str) -> dict:
    return {**experiment(), "title": title}


def page_text(client) -> str:
    response = client.get("/-/runs")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def section(html: str, testid: str) -> str:
    start = html.index(f'data-testid="{testid}"')
    return html[start:html.index("</section>", start)]


def test_the_overview_shows_latest_deviated_in_progress_and_quiet_runs(app, alice):
    steady = create(alice, document=titled("Checkout holds"))
    shaky = create(alice, document=titled("Search degrades"))
    create(alice, document=titled("Never run yet"))
    old = create(alice, document=titled("Ran long ago"))
    publish(alice, steady["id"], "passed")
    publish(alice, shaky["id"], "deviated")
    long_ago = publish(alice, old["id"], "probe-error")
    with app.app_context(), transaction("experiment") as session:
        # Forty days back: neither this week's deviations nor recent enough to count as run.
        then = utcnow() - timedelta(days=40)
        session.execute(update(Execution).where(Execution.id == long_ago["id"])
                        .values(created_at=then))
        session.execute(update(Experiment).where(Experiment.id == old["id"])
                        .values(last_run_at=then))
    token = make_token(alice, RUNNER)
    runner = create(alice, document=runnable())
    started = app.test_client().post(f"/api/v1/experiments/{runner['id']}/runs", json={},
                                     headers={"Authorization": f"Bearer {token}"})
    assert started.status_code == 202, started.get_json()

    html = page_text(alice)
    latest = section(html, "overview-recent")
    assert latest.index("Search degrades") < latest.index("Checkout holds")  # newest first
    assert "Ran long ago" in latest  # still among the latest ten
    deviated = section(html, "overview-deviated")
    assert "Search degrades" in deviated and 'data-outcome="deviated"' in deviated
    assert "Checkout holds" not in deviated and "Ran long ago" not in deviated
    going = section(html, "overview-in-progress")
    assert "Run me" in going and "Queued" in going
    assert f"/experiment/{runner['id']}/run/{started.get_json()['id']}" in going
    quiet_part = section(html, "overview-quiet")
    assert "Never run yet" in quiet_part and "never run" in quiet_part
    assert "Ran long ago" in quiet_part
    assert "Checkout holds" not in quiet_part and "Search degrades" not in quiet_part
    assert quiet_part.index("Never run yet") < quiet_part.index("Ran long ago")
    assert f'/alice/Personal/experiment/{shaky["id"]}/execution/' in latest


def test_the_overview_shows_nothing_from_workspaces_the_reader_holds_no_role_in(app, alice):
    bob = signed_up_client(app, "bob")
    assert post_json(bob, "/api/v1/orgs", {"name": "bobs-team"}).status_code == 201
    hidden_ws = post_json(bob, "/api/v1/orgs/bobs-team/workspaces",
                          {"name": "open", "visibility": "public"})
    assert hidden_ws.status_code == 201, hidden_ws.get_json()
    secret = create(bob, "bobs-team", "open", titled("Bobs public experiment"))
    publish(bob, secret["id"], "deviated")
    mine = create(alice, document=titled("Alices own"))
    publish(alice, mine["id"], "passed")

    html = page_text(alice)
    assert "Alices own" in html
    assert "Bobs public experiment" not in html
    assert "Bobs public experiment" in page_text(bob)


def test_an_empty_overview_says_what_to_do(app, alice):
    html = page_text(alice)
    assert "No run has been published yet" in html
    assert "Nothing is queued or running" in html


def test_a_visitor_is_sent_to_sign_in_and_back(client):
    response = client.get("/-/runs")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/signin?next=/-/runs")


def test_every_page_links_to_the_overview(alice):
    assert 'href="/-/runs"' in alice.get("/").get_data(as_text=True)
