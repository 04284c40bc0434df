"""An execution's HTML report opened in Chromium with the network shut: it shows the run whole
and asks for nothing (no stylesheet, script, font or image from anywhere)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import csrf, signed_up_client
from tests.experiment_data import FIXTURES, create

pytestmark = pytest.mark.e2e


@pytest.fixture
def backend() -> str:
    """One database is enough: the report is drawn the same from either."""
    return "sqlite"


def test_the_report_shows_the_run_and_loads_nothing(app, page):
    alice = signed_up_client(app, "alice")
    ran = json.loads((FIXTURES / "failing-journal.json").read_text())
    made = create(alice, document=ran["experiment"])
    published = alice.post(f"/api/v1/experiments/{made['id']}/executions", json=ran,
                           headers={"X-CSRF-Token": csrf(alice)})
    assert published.status_code == 201, published.get_json()
    answer = alice.get(f"/api/v1/executions/{published.get_json()['id']}/report")
    assert answer.status_code == 200

    asked = []

    def refuse(route):
        asked.append(route.request.url)
        route.abort()

    page.route("**/*", refuse)
    page.set_content(answer.get_data(as_text=True), wait_until="load")

    title = page.get_by_test_id("report-title")
    assert title.is_visible() and title.inner_text() == "Run of Failures read as failures"
    verdict = page.get_by_test_id("report-verdict")
    assert verdict.is_visible() and verdict.inner_text() == "Deviated"
    # Its colour comes from the report's own style: red, as a run that deviated reads.
    assert verdict.evaluate("e => getComputedStyle(e).color") == "rgb(201, 42, 42)"
    probe = page.get_by_test_id("section-after").get_by_test_id("activity-name")
    assert probe.is_visible() and probe.inner_text() == "marker-file-exists"
    missed = page.get_by_test_id("section-after").get_by_test_id("activity-verdict")
    assert missed.inner_text() == "tolerance not met"
    failed = page.get_by_test_id("section-method").get_by_test_id("activity").filter(
        has_text="read-missing-file-size")
    assert failed.get_by_test_id("error").inner_text().startswith("FileNotFoundError:")
    traceback = failed.get_by_test_id("traceback").locator("pre")
    assert not traceback.is_visible()
    failed.get_by_text("Traceback", exact=True).click()
    assert traceback.is_visible()
    assert asked == []  # nothing was fetched, not even a favicon
