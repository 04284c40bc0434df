"""The experiment and execution pages in a real Chromium: what a person sees."""

from __future__ import annotations

import pytest

from tests.experiment_data import experiment, variant
from tests.helpers import running_hub, sign_in_browser, signed_in_session

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """A hub with grace's experiment and two of its runs."""
    with running_hub(tmp_path_factory.mktemp("experiment-hub")) as url:
        http = signed_in_session(url, "grace")
        created = http.post(f"{url}/api/v1/orgs/grace/workspaces/Personal/experiments",
                            json=experiment()).json()
        runs = {}
        for outcome in ("deviated", "baseline-not-met"):
            runs[outcome] = http.post(
                f"{url}/api/v1/experiments/{created['id']}/executions",
                json=variant(outcome)).json()["id"]
        yield url, created["id"], runs


def test_the_experiment_page_reads_as_a_plan(page, hub):
    url, experiment_id, _ = hub
    sign_in_browser(page, url, "grace")
    page.goto(f"{url}/grace/personal/experiment/{experiment_id}")
    assert page.get_by_role("heading", level=1).inner_text() == experiment()["title"]
    hypothesis = page.get_by_test_id("plan-hypothesis")
    assert hypothesis.get_by_test_id("activity").count() == 2
    assert hypothesis.get_by_test_id("target").first.inner_text() == "os.path.exists"
    assert hypothesis.get_by_test_id("tolerance").first.inner_text() == "Tolerance: must be true"
    method = page.get_by_test_id("plan-method").get_by_test_id("activity-name")
    assert method.all_inner_texts() == ["run-true", "read-marker-size", "delete-marker-file"]
    outcomes = page.get_by_test_id("executions").get_by_test_id("outcome").all_inner_texts()
    assert outcomes == ["Steady state not met before the method", "Deviated"]
    command = page.get_by_test_id("run-command").inner_text()
    assert command == f"chaos run {url}/grace/Personal/experiment/{experiment_id}"
    assert "type: bearer" in page.get_by_test_id("settings-snippet").inner_text()


def test_the_execution_page_tells_what_happened(page, hub):
    url, experiment_id, runs = hub
    sign_in_browser(page, url, "grace")
    page.goto(f"{url}/grace/personal/experiment/{experiment_id}")
    page.get_by_role("link", name="Deviated").click()
    page.wait_for_url(f"**/execution/{runs['deviated']}")
    assert page.get_by_test_id("fact-outcome").inner_text() == "Deviated"
    assert page.get_by_test_id("fact-status").inner_text() == "completed"
    assert page.get_by_test_id("fact-deviated").inner_text() == "yes"
    after = page.get_by_test_id("steady-after")
    assert "not met" in after.get_by_role("heading").inner_text()
    assert after.get_by_test_id("verdict").inner_text() == "tolerance not met"
    timeline = page.get_by_test_id("timeline").get_by_test_id("activity-name")
    assert timeline.all_inner_texts() == ["run-true", "read-marker-size", "delete-marker-file",
                                          "recreate-marker-file"]
    page.get_by_test_id("raw-journal").click()
    assert '"status": "completed"' in page.content() or '"status":"completed"' in page.content()
