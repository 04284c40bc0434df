"""Running an experiment from its page in a real Chromium: press Run, watch it live, abort it."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.helpers import running_hub, sign_in_browser, signed_in_session

pytestmark = pytest.mark.e2e


def process(kind: str, name: str, path: str, *arguments: str) -> dict:
    return {"type": kind, "name": name,
            "provider": {"type": "process", "path": path, "arguments": list(arguments),
                         "timeout": 120}}


SLOW = {
    "title": "Slow to end",
    "description": "Its method sleeps long enough to be watched and aborted.",
    "steady-state-hypothesis": {"title": "all is well", "probes": [
        {**process("probe", "alive", "/bin/true"), "tolerance": 0}]},
    "method": [process("action", "wait-a-while", "/bin/sleep", "20")],
    "rollbacks": [process("action", "restore", "/bin/true")],
}


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """A hub (with its embedded worker) where ruth has the slow experiment."""
    with running_hub(tmp_path_factory.mktemp("runs-hub")) as url:
        http = signed_in_session(url, "ruth")
        made = http.post(f"{url}/api/v1/orgs/ruth/workspaces/Personal/experiments", json=SLOW)
        assert made.status_code == 201, made.text
        yield url, made.json()["id"]


def test_press_run_watch_the_timeline_fill_in_then_abort(page, hub):
    url, experiment_id = hub
    sign_in_browser(page, url, "ruth")
    page.goto(f"{url}/ruth/Personal/experiment/{experiment_id}")
    page.get_by_test_id("run-it").get_by_role("button", name="Run").click()
    page.wait_for_url(f"{url}/ruth/Personal/experiment/{experiment_id}/run/*")
    # Marks this document: a reload would lose it.
    page.evaluate("window.sameDocument = true")

    timeline = page.get_by_test_id("run-timeline")
    waiting = timeline.get_by_test_id("phase-method").locator('[data-name="wait-a-while"]')
    waiting.wait_for(timeout=30_000)
    assert waiting.get_by_test_id("entry-status").inner_text() == "running"
    before = timeline.get_by_test_id("phase-before")
    assert before.get_by_test_id("steady-verdict").inner_text() == "met"
    assert before.locator('[data-name="alive"]').get_by_test_id(
        "entry-status").inner_text() == "succeeded"
    assert page.get_by_test_id("run-status").inner_text() == "Running"
    assert page.evaluate("window.sameDocument") is True  # it all came without a reload

    page.get_by_test_id("abort").get_by_role("button", name="Abort", exact=True).click()
    page.wait_for_load_state()
    # It ends within seconds, rollbacks played; the page learns it from the stream.
    expect(page.get_by_test_id("run-status")).to_have_text("Aborted", timeout=60_000)
    rollback = timeline.get_by_test_id("phase-rollbacks").locator('[data-name="restore"]')
    rollback.wait_for(timeout=10_000)
    assert rollback.get_by_test_id("entry-status").inner_text() == "succeeded"
    assert page.get_by_test_id("abort").is_hidden()
    execution = page.get_by_test_id("execution-link")
    execution.wait_for(timeout=10_000)
    execution.click()
    page.wait_for_url(f"{url}/ruth/Personal/experiment/{experiment_id}/execution/*")
    assert page.get_by_test_id("rollbacks").get_by_test_id("activity-name").all_inner_texts() \
        == ["restore"]

    # The experiment page keeps the run: ended, not in progress any more.
    page.goto(f"{url}/ruth/Personal/experiment/{experiment_id}")
    assert page.get_by_test_id("recent-run-status").all_inner_texts() == ["Aborted"]
