"""Trends in a real Chromium: the workspace page's runs chart (SVG drawn by the server), the
resilience score with its formula, a flipped experiment, and the org's trends tab."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import create_engine, select, update
from sqlalchemy.orm import Session

from chaoshub.core.models import utcnow
from chaoshub.experiment.models import Execution, Experiment
from tests.experiment_data import experiment, variant
from tests.helpers import running_hub, sign_in_browser, signed_in_session

pytestmark = pytest.mark.e2e

# (title, [(outcome, days ago), ...]): runs on four days, one flip, two stale experiments.
SEEDED = [
    ("Checkout holds", [("passed", 3), ("passed", 1)]),
    ("DNS flips", [("passed", 2), ("deviated", 0)]),
    ("Old disk", [("passed", 40)]),
    ("Never run", []),
]


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """A hub where ada's personal workspace holds SEEDED's experiments and runs, dated back in
    its database as if they had run on those days."""
    root = tmp_path_factory.mktemp("trends-hub")
    with running_hub(root) as url:
        http = signed_in_session(url, "ada")
        dated: dict[str, float] = {}
        for title, runs in SEEDED:
            made = http.post(f"{url}/api/v1/orgs/ada/workspaces/Personal/experiments",
                             json={**experiment(), "title": title})
            assert made.status_code == 201, made.text
            for n, (outcome, days_ago) in enumerate(runs):
                journal = {**variant(outcome), "node": f"{title}-{n}"}
                answer = http.post(f"{url}/api/v1/experiments/{made.json()['id']}/executions",
                                   json=journal)
                assert answer.status_code == 201, answer.text
                dated[answer.json()["id"]] = days_ago
        _date_back(root / "instance" / "experiment.db", dated)
        yield url


def _date_back(database, dated: dict[str, float]) -> None:
    engine = create_engine(f"sqlite:///{database}")
    try:
        with Session(engine) as session, session.begin():
            now = utcnow()
            for execution_id, days_ago in dated.items():
                session.execute(update(Execution).where(Execution.id == execution_id)
                                .values(created_at=now - timedelta(days=days_ago)))
            for found in session.scalars(select(Experiment)):
                last = session.scalars(
                    select(Execution).where(Execution.experiment_id == found.id)
                    .order_by(Execution.created_at.desc()).limit(1)).first()
                if last is not None:
                    found.last_run_at, found.last_execution_id = last.created_at, last.id
                    found.last_run_outcome = last.outcome
    finally:
        engine.dispose()


def test_the_workspace_page_draws_runs_a_day_the_score_its_formula_and_flips(page, hub):
    sign_in_browser(page, hub, "ada")
    page.goto(f"{hub}/ada/Personal")
    trends = page.get_by_test_id("trends")
    trends.scroll_into_view_if_needed()

    chart = trends.get_by_role("img", name=re.compile(r"^Runs a day by outcome, 30 days"))
    assert chart.count() == 1 and chart.is_visible()
    assert "Passed: 3, Deviated: 1" in chart.locator("desc").text_content()
    assert trends.get_by_test_id("trend-day").count() == 30  # a bar a UTC day
    bars = trends.get_by_test_id("trend-bar")
    assert bars.count() == 4  # the four days that had runs, one outcome each
    assert [bars.nth(n).get_attribute("data-outcome") for n in range(4)] == [
        "passed", "passed", "passed", "deviated"]
    # Drawn with the theme's colours (hub.css: the CSP allows no inline style).
    assert bars.nth(3).evaluate("b => getComputedStyle(b).fill") == "rgb(232, 89, 12)"
    assert bars.nth(0).bounding_box()["height"] > 0
    assert "2" not in [bars.nth(n).get_attribute("data-count") for n in range(4)]
    assert trends.get_by_test_id("trends-legend").inner_text().split("\n") == [
        "Passed (3)", "Deviated (1)"]

    # Checkout ~0.95 (a day old), DNS flips 0.5 (half its runs passed), Old disk ~0.14 (its
    # last run passed, 40 days ago), Never run 0: (0.95 + 0.5 + 0.14 + 0) / 4 = 40.
    score = trends.get_by_test_id("resilience-score")
    assert score.is_visible() and score.inner_text().startswith("40")
    assert "from 4 experiments" in score.inner_text()
    formula = trends.get_by_test_id("score-formula")
    assert formula.is_visible() and "0.5 ^ (days since the experiment's last run ÷ 14)" in (
        formula.inner_text())
    assert trends.get_by_test_id("score-worked").inner_text().endswith("÷ 4 = 40")
    rows = trends.get_by_test_id("trend-experiment")
    assert rows.count() == 4
    assert rows.first.get_by_role("link").first.inner_text() == "DNS flips"  # newest run first

    flip = trends.get_by_test_id("flip")
    assert flip.count() == 1 and "DNS flips" in flip.inner_text()
    flip.get_by_role("link", name=re.compile("^steady state deviated|^deviated")).click()
    page.wait_for_url(re.compile(r"/execution/"))
    assert page.get_by_text("Deviated").first.is_visible()


def test_the_stale_list_and_the_table_alternative(page, hub):
    sign_in_browser(page, hub, "ada")
    page.goto(f"{hub}/ada/Personal")
    stale = page.get_by_test_id("stale-experiment")
    assert stale.all_inner_texts()[0].startswith("Never run")
    assert "Old disk" in stale.all_inner_texts()[1] and "40 days ago" in stale.all_inner_texts()[1]
    page.get_by_text("The runs a day, as a table").click()
    table = page.get_by_test_id("trends-days")
    assert table.is_visible() and table.locator("tbody tr").count() == 4


def test_the_org_trends_tab_shows_the_same_figures(page, hub):
    sign_in_browser(page, hub, "ada")
    page.goto(f"{hub}/ada")
    page.get_by_role("navigation", name="Organization").get_by_role("link", name="Trends").click()
    page.wait_for_url(f"{hub}/ada/-/trends")
    assert page.get_by_role("link", name="Trends").get_attribute("aria-current") == "page"
    assert page.get_by_test_id("trend-bar").count() == 4
    assert page.get_by_test_id("resilience-score").inner_text().startswith("40")
    assert "ada/Personal" in page.get_by_test_id("flip").inner_text()
