"""Schedules in a real Chromium: add one on the experiment page, see its next five fire times in
its zone, disable it, and see the workspace's coming runs in UTC and in another zone."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.helpers import running_hub, sign_in_browser, signed_in_session
from tests.run_data import runnable

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """A hub where sam has an experiment to schedule."""
    with running_hub(tmp_path_factory.mktemp("schedules-hub")) as url:
        http = signed_in_session(url, "sam")
        made = http.post(f"{url}/api/v1/orgs/sam/workspaces/Personal/experiments",
                         json=runnable("Nightly check"))
        assert made.status_code == 201, made.text
        yield url, made.json()["id"]


@pytest.fixture
def page(browser):
    """A page of a browser in New York's time zone, failing on any script error."""
    context = browser.new_context(timezone_id="America/New_York")
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert errors == [], errors


def test_add_a_schedule_see_its_times_and_the_coming_runs(page, hub):
    url, experiment_id = hub
    sign_in_browser(page, url, "sam")
    page.goto(f"{url}/sam/Personal/experiment/{experiment_id}")
    section = page.get_by_test_id("schedules")
    expect(section).to_contain_text("No schedule")
    section.get_by_test_id("schedule-new").click()
    # The browser's own zone is offered; Kolkata is chosen.
    expect(section.get_by_test_id("schedule-zone")).to_have_value("America/New_York")
    section.get_by_test_id("schedule-cron").fill("0 9 * * mon-fri")
    section.get_by_test_id("schedule-zone").fill("Asia/Kolkata")
    section.get_by_test_id("schedule-submit").click()
    page.wait_for_url(f"{url}/sam/Personal/experiment/{experiment_id}?scheduled=1#schedules")

    schedule = page.get_by_test_id("schedule")
    expect(schedule).to_have_count(1)
    expect(schedule.get_by_test_id("schedule-when")).to_have_text("0 9 * * mon-fri")
    times = schedule.get_by_test_id("next-fire-times").locator("li")
    expect(times).to_have_count(5)
    for text in times.all_inner_texts():
        assert "09:00 (+05:30)" in text and text[:3] in ("Mon", "Tue", "Wed", "Thu", "Fri")

    # A cron expression the hub cannot read is refused on the page, with nothing added.
    section.get_by_test_id("schedule-new").click()
    section.get_by_test_id("schedule-cron").fill("every day at nine")
    section.get_by_test_id("schedule-submit").click()
    expect(page.get_by_test_id("schedule-error")).to_contain_text("cron")
    expect(page.get_by_test_id("schedule")).to_have_count(1)

    # The workspace's coming runs: in UTC, labelled, then in Kolkata's time.
    page.get_by_test_id("upcoming-link").click()
    page.wait_for_url(f"{url}/sam/Personal/-/schedules")
    expect(page.get_by_test_id("upcoming-zone")).to_contain_text("UTC")
    rows = page.get_by_test_id("upcoming-run")
    expect(rows).to_have_count(5)
    for text in rows.all_inner_texts():
        assert "03:30" in text and "Nightly check" in text
    local = page.get_by_test_id("local-zone-link")
    expect(local).to_be_visible()  # offered in the browser's own zone
    expect(local).to_contain_text("America/New_York")
    page.goto(f"{url}/sam/Personal/-/schedules?tz=Asia/Kolkata")
    expect(page.get_by_test_id("upcoming-zone")).to_contain_text("Asia/Kolkata")
    for text in page.get_by_test_id("upcoming-run").all_inner_texts():
        assert "09:00" in text

    # Disabled: no time to come, and nothing coming in the workspace.
    page.goto(f"{url}/sam/Personal/experiment/{experiment_id}")
    page.get_by_test_id("schedule-toggle").click()
    page.wait_for_url(f"{url}/sam/Personal/experiment/{experiment_id}?scheduled=1#schedules")
    expect(page.get_by_test_id("schedule")).to_have_attribute("data-enabled", "no")
    expect(page.get_by_test_id("schedule")).to_contain_text("No firing to come")
    page.goto(f"{url}/sam/Personal/-/schedules")
    expect(page.get_by_test_id("upcoming-run")).to_have_count(0)
    page.goto(f"{url}/sam/Personal/experiment/{experiment_id}")
    page.get_by_test_id("schedule-history").click()
    expect(page.get_by_test_id("firings")).to_contain_text("It has not fired yet")
