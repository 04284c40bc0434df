"""Moving an experiment from its page, in a real Chromium."""

from __future__ import annotations

import pytest

from tests.experiment_data import experiment, variant
from tests.helpers import running_hub, sign_in_browser, signed_in_session

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """A hub where grace has an experiment with a run in her Personal workspace, and an org
    `team` with a workspace `ops`."""
    with running_hub(tmp_path_factory.mktemp("move-hub")) as url:
        http = signed_in_session(url, "grace")
        assert http.post(f"{url}/api/v1/orgs", json={"name": "team"}).status_code == 201
        made = http.post(f"{url}/api/v1/orgs/team/workspaces", json={"name": "ops"})
        assert made.status_code == 201
        created = http.post(f"{url}/api/v1/orgs/grace/workspaces/Personal/experiments",
                            json=experiment()).json()
        assert http.post(f"{url}/api/v1/experiments/{created['id']}/executions",
                         json=variant("deviated")).status_code == 201
        yield url, created["id"]


def test_the_move_form_takes_the_experiment_to_the_chosen_workspace(page, hub):
    url, experiment_id = hub
    sign_in_browser(page, url, "grace")
    page.goto(f"{url}/grace/Personal/experiment/{experiment_id}")
    form = page.get_by_test_id("move")
    choices = form.get_by_label("Move to workspace")
    assert choices.locator("option").all_inner_texts() == ["grace/Public", "team/ops"]
    choices.select_option("team/ops")
    form.get_by_role("button", name="Move experiment").click()
    page.wait_for_url(f"{url}/team/ops/experiment/{experiment_id}")
    assert page.get_by_role("heading", level=1).inner_text() == experiment()["title"]
    assert page.get_by_role("navigation", name="Breadcrumb").inner_text().split() == [
        "team", "/", "ops", "/"]
    outcomes = page.get_by_test_id("executions").get_by_test_id("outcome").all_inner_texts()
    assert outcomes == ["Deviated"]
    # On its new page, the form offers the workspace it came from.
    assert "grace/Personal" in page.get_by_test_id("move").locator(
        "option").all_inner_texts()

    gone = page.goto(f"{url}/grace/Personal/experiment/{experiment_id}")
    assert gone.status == 404
