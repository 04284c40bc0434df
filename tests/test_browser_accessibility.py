"""axe-core in Chromium on the hub's main pages, in light and dark colour schemes: no serious or
critical violation."""

from __future__ import annotations

import pytest
from axe_playwright_python.sync_playwright import Axe

from tests.experiment_data import experiment, journal
from tests.helpers import running_hub, sign_in_browser, signed_in_session

pytestmark = pytest.mark.e2e
BLOCKING = ("serious", "critical")


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """A hub where alice has an experiment with a run."""
    with running_hub(tmp_path_factory.mktemp("a11y-hub")) as url:
        alice = signed_in_session(url, "alice")
        saved = alice.post(f"{url}/api/v1/orgs/alice/workspaces/Personal/experiments",
                           json=experiment())
        assert saved.status_code == 201, saved.text
        ran = alice.post(f"{url}/api/v1/experiments/{saved.json()['id']}/executions",
                         json=journal())
        assert ran.status_code == 201, ran.text
        yield url, saved.json()["id"], ran.json()["id"]


def blocking(page) -> list[str]:
    """The serious and critical violations axe-core finds on the page, one line each."""
    found = Axe().run(page).response["violations"]
    return [f"{v['id']} ({v['impact']}): {v['help']} at "
            + ", ".join(str(n["target"]) for n in v["nodes"][:3])
            for v in found if v["impact"] in BLOCKING]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_main_pages_have_no_serious_accessibility_violation(browser, hub, scheme):
    url, experiment_id, execution_id = hub
    context = browser.new_context(color_scheme=scheme)
    page = context.new_page()
    try:
        found = {}
        for path in ("/signin", "/signup", "/password/forgot"):
            page.goto(url + path)
            found[path] = blocking(page)
        sign_in_browser(page, url, "alice")
        base = f"/alice/Personal/experiment/{experiment_id}"
        # /alice/Public is empty: its writer sees the first-run guide.
        for path in ("/", "/-/runs", "/alice", "/alice/-/trends", "/alice/Personal",
                     "/alice/Public", base,
                     f"{base}/execution/{execution_id}", "/settings", "/settings/tokens",
                     "/search?q=alice", "/api/v1/docs"):
            page.goto(url + path)
            found[path] = blocking(page)
        failing = [f"{path}: {line}" for path, lines in found.items() for line in lines]
        assert not failing, "\n".join(failing)
    finally:
        context.close()
