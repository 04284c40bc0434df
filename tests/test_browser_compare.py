"""Comparing runs and the runs chart in a real Chromium: what a person sees."""

from __future__ import annotations

import pytest

from tests.experiment_data import experiment, journal, variant
from tests.helpers import running_hub, sign_in_browser, signed_in_session

pytestmark = pytest.mark.e2e

# The outcome colours of hub.css, as the browser computes them.
COLOURS = {"deviated": "rgb(232, 89, 12)", "passed": "rgb(43, 138, 62)",
           "probe-error": "rgb(201, 42, 42)"}


def slower_and_failing() -> dict:
    """A passing run (09:01) in which `run-true` took 2.5 s, `read-marker-size` failed and
    `delete-marker-file` took 6.7 ms instead of 2.7 (timing noise)."""
    later = variant("passed")
    later["duration"] = 2.6
    later["run"][0]["duration"] = 2.5
    later["run"][1]["status"] = "failed"
    later["run"][2]["duration"] = 0.0067
    return later


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """A hub with heidi's experiment and three runs: deviated (08:57), passed (09:01) and
    probe-error (09:03)."""
    with running_hub(tmp_path_factory.mktemp("compare-hub")) as url:
        http = signed_in_session(url, "heidi")
        created = http.post(f"{url}/api/v1/orgs/heidi/workspaces/Personal/experiments",
                            json=experiment()).json()
        runs = {}
        for outcome, body in (("deviated", journal()), ("passed", slower_and_failing()),
                              ("probe-error", variant("probe-error"))):
            answer = http.post(f"{url}/api/v1/experiments/{created['id']}/executions",
                               json=body)
            assert answer.status_code == 201, answer.text
            runs[outcome] = answer.json()["id"]
        yield url, created["id"], runs


def changes(page, section: str) -> list[str]:
    """The lines of one section of the compare page, whitespace folded."""
    texts = page.get_by_test_id(section).get_by_test_id("change").all_inner_texts()
    return [" ".join(t.split()) for t in texts]


def test_the_execution_page_charts_every_run_by_outcome(page, hub):
    url, experiment_id, runs = hub
    sign_in_browser(page, url, "heidi")
    page.goto(f"{url}/heidi/Personal/experiment/{experiment_id}/execution/{runs['passed']}")
    chart = page.get_by_test_id("runs-history").get_by_role("img")
    assert chart.get_attribute("aria-label").startswith(
        "Outcomes and durations of the last 3 runs, oldest first.")
    marks = page.get_by_test_id("chart-mark")
    assert marks.count() == 3
    outcomes = [marks.nth(i).get_attribute("data-outcome") for i in range(3)]
    assert outcomes == ["deviated", "passed", "probe-error"]  # oldest on the left
    xs = [float(marks.nth(i).get_attribute("x")) for i in range(3)]
    assert xs == sorted(xs)
    for i, outcome in enumerate(outcomes):
        fill = marks.nth(i).evaluate("mark => getComputedStyle(mark).fill")
        assert fill == COLOURS[outcome], outcome
    titles = [marks.nth(i).locator("title").text_content() for i in range(3)]
    assert titles[0].startswith("Deviated · 2026-11-23 08:57:40 UTC · ")
    assert titles[1].startswith("Passed (this run) · 2026-11-23 09:01:40 UTC · ")
    assert titles[2].startswith("A probe failed · 2026-11-23 09:03:40 UTC · ")
    assert "current" in marks.nth(1).get_attribute("class")
    # The slow passing run is the tallest bar.
    heights = [float(marks.nth(i).get_attribute("height")) for i in range(3)]
    assert heights[1] > 10 * max(heights[0], heights[2])
    legend = page.get_by_test_id("legend-item").all_inner_texts()
    assert legend == ["A probe failed (1)", "Deviated (1)", "Passed (1)"]  # most telling first
    swatch = page.get_by_test_id("chart-legend").locator(".swatch.passed")
    assert swatch.evaluate("s => getComputedStyle(s).backgroundColor") == COLOURS["passed"]


def test_compare_with_the_previous_run_from_the_execution_page(page, hub):
    url, experiment_id, runs = hub
    sign_in_browser(page, url, "heidi")
    page.goto(f"{url}/heidi/Personal/experiment/{experiment_id}/execution/{runs['passed']}")
    page.get_by_role("link", name="Compare with the previous run").click()
    page.wait_for_url(f"**/compare?a={runs['deviated']}&b={runs['passed']}")
    assert page.get_by_role("heading", level=1).inner_text() == \
        f"Compare runs of {experiment()['title']}"
    facts = page.get_by_test_id("compare-runs")
    assert facts.get_by_test_id("fact-outcome").get_by_test_id("outcome").all_inner_texts() == \
        ["Deviated", "Passed"]
    assert " ".join(facts.get_by_test_id("fact-version").inner_text().split()) == \
        "Version v1 v1 same"
    assert changes(page, "flipped") == [
        "marker-file-exists steady state after tolerance not met → tolerance met"]
    assert changes(page, "status-changed") == ["read-marker-size method succeeded → failed"]
    assert changes(page, "slower") == [
        "run-true method 1.4 ms → 2.50 s: +2.50 s (×1837)"]
    assert page.get_by_test_id("only-in-a").get_by_test_id("change").count() == 0
    rows = page.get_by_test_id("all-activities").get_by_test_id("activity-row")
    assert rows.count() == 7
    # Swapped, the slowdown reads as a speed-up.
    page.get_by_role("link", name="Swap A and B").click()
    page.wait_for_url(f"**/compare?a={runs['passed']}&b={runs['deviated']}")
    assert changes(page, "faster") == ["run-true method 2.50 s → 1.4 ms: −2.50 s (×0.00054)"]
    page.get_by_role("link", name="Run A").click()
    page.wait_for_url(f"**/execution/{runs['passed']}")


def test_a_few_milliseconds_more_is_not_called_slower(page, hub):
    url, experiment_id, runs = hub
    sign_in_browser(page, url, "heidi")
    page.goto(f"{url}/heidi/Personal/experiment/{experiment_id}/compare"
              f"?a={runs['deviated']}&b={runs['passed']}")
    slower = page.get_by_test_id("slower")
    assert slower.get_by_role("heading").inner_text() == "Slower in run B"
    assert [t.split(" ")[0] for t in changes(page, "slower")] == ["run-true"]
    assert "delete-marker-file" not in slower.inner_text()
    assert page.get_by_test_id("faster").count() == 0
    assert page.get_by_test_id("unchanged").inner_text().startswith("None got faster;")
    # The table of every activity still shows the small change, unmarked.
    row = page.get_by_test_id("activity-row").filter(has_text="delete-marker-file")
    assert " ".join(row.inner_text().split()).endswith("2.7 ms succeeded 6.7 ms +4.0 ms")
    assert "differs" not in (row.get_attribute("class") or "")


def test_pick_two_runs_on_the_experiment_page(page, hub):
    url, experiment_id, runs = hub
    sign_in_browser(page, url, "heidi")
    page.goto(f"{url}/heidi/Personal/experiment/{experiment_id}")
    assert page.get_by_test_id("executions").get_by_test_id("chart-mark").count() == 3
    # The newest two are picked to begin with.
    assert page.get_by_role("radio", name="Compare as run B: the run started "
                            "2026-11-23 09:03:40").is_checked()
    page.get_by_role("radio", name="Compare as run A: the run started "
                     "2026-11-23 08:57:40").check()
    page.get_by_role("button", name="Compare runs A and B").click()
    # The form sends the radios in the table's order: b (the newest row) may come first.
    page.wait_for_url(lambda at: "/compare?" in at and f"a={runs['deviated']}" in at
                      and f"b={runs['probe-error']}" in at)
    assert page.get_by_test_id("fact-outcome").get_by_test_id("outcome").all_inner_texts() == \
        ["Deviated", "A probe failed"]
    assert changes(page, "status-changed") == [
        "marker-file-test-succeeds steady state before succeeded → failed"]
    assert changes(page, "flipped") == []
    went = [t.split(" ")[0] for t in changes(page, "only-in-a")]
    assert went == ["run-true", "read-marker-size", "delete-marker-file", "marker-file-exists",
                    "recreate-marker-file"]
