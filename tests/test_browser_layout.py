"""The pages' layout in Chromium: at a phone's 390 px nothing scrolls sideways and the main
navigation stays on screen; at 1280 px no two cards touch."""

from __future__ import annotations

import pytest

from tests.experiment_data import experiment, journal
from tests.helpers import running_hub, sign_in_browser, signed_in_session

pytestmark = pytest.mark.e2e

# Pairs of cards, one above the other, closer than 8 px: they look glued together.
TOUCHING = """() => {
  const boxes = [...document.querySelectorAll('.card')].map(c => c.getBoundingClientRect())
    .filter(b => b.width > 0 && b.height > 0);
  const close = [];
  for (const a of boxes) for (const b of boxes) {
    const overlapX = Math.min(a.right, b.right) - Math.max(a.left, b.left);
    const gap = b.top - a.bottom;
    if (a !== b && overlapX > 0 && gap >= 0 && gap < 8) close.push([a.top, b.top, gap]);
  }
  return close;
}"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """A hub where alice has an experiment with a run."""
    with running_hub(tmp_path_factory.mktemp("layout-hub")) as url:
        alice = signed_in_session(url, "alice")
        saved = alice.post(f"{url}/api/v1/orgs/alice/workspaces/Personal/experiments",
                           json=experiment()).json()
        ran = alice.post(f"{url}/api/v1/experiments/{saved['id']}/executions",
                         json=journal()).json()
        base = f"/alice/Personal/experiment/{saved['id']}"
        yield url, ["/", "/-/runs", "/alice", "/alice/Personal", base,
                    f"{base}/execution/{ran['id']}", "/settings/tokens", "/search?q=alice"]


def each_page(browser, hub, width: int, height: int):
    """Each of the hub's pages, opened by alice in a window this size: (path, page)."""
    url, paths = hub
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    try:
        sign_in_browser(page, url, "alice")
        for path in paths:
            page.goto(url + path)
            yield path, page
    finally:
        context.close()


def test_at_390_px_no_page_scrolls_sideways_and_the_navigation_fits(browser, hub):
    wide = {}
    for path, page in each_page(browser, hub, width=390, height=844):
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > 390:
            wide[path] = width
        for name in ("Dashboard", "Runs", "Tokens", "Settings"):
            box = page.get_by_role("navigation", name="Main").get_by_role(
                "link", name=name).bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390, (path, name)
    assert wide == {}


def test_at_1280_px_no_two_cards_touch(browser, hub):
    touching = {}
    for path, page in each_page(browser, hub, width=1280, height=900):
        close = page.evaluate(TOUCHING)
        if close:
            touching[path] = close
    assert touching == {}
