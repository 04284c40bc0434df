"""The kill switch and the run policy in a real Chromium: a member engages the switch from the
org page, its banner follows them across the org's pages, an owner releases it; a maintainer
changes the run policy on the workspace settings page."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.experiment_data import experiment
from tests.helpers import running_hub, sign_in_browser, signed_in_session

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """alice's org team with a workspace ops holding an experiment; bob is a member there,
    mona a maintainer."""
    with running_hub(tmp_path_factory.mktemp("safety-hub")) as url:
        people = {name: signed_in_session(url, name) for name in ("alice", "bob", "mona")}
        alice = people["alice"]
        assert alice.post(f"{url}/api/v1/orgs", json={"name": "team"}).status_code == 201
        assert alice.post(f"{url}/api/v1/orgs/team/workspaces",
                          json={"name": "ops"}).status_code == 201
        for name, role in (("bob", "member"), ("mona", "maintainer")):
            assert alice.post(f"{url}/api/v1/orgs/team/members",
                              json={"username": name, "role": role}).status_code == 201
        created = alice.post(f"{url}/api/v1/orgs/team/workspaces/ops/experiments",
                             json=experiment())
        assert created.status_code == 201, created.text
        yield url, created.json()["id"], people


def test_a_member_engages_the_kill_switch_and_an_owner_releases_it(page, hub):
    url, experiment_id, people = hub
    sign_in_browser(page, url, "bob")
    page.goto(f"{url}/team")
    page.get_by_label("Why").fill("checkout errors in production")
    page.get_by_role("button", name="Engage the kill switch").click()
    page.wait_for_url(f"{url}/team?kill_switch=engaged")
    banner = page.get_by_test_id("kill-switch-banner")
    expect(banner).to_contain_text("checkout errors in production")
    expect(page.get_by_role("button", name="Release the kill switch")).to_have_count(0)

    for path in ("/team/ops", f"/team/ops/experiment/{experiment_id}"):
        page.goto(f"{url}{path}")
        expect(banner).to_be_visible()
        expect(banner).to_contain_text("No run of this org starts until it is released.")
        expect(page.get_by_test_id("kill-switch-who")).to_have_text("bob")

    page.context.clear_cookies()
    sign_in_browser(page, url, "alice")
    page.goto(f"{url}/team")
    page.get_by_role("button", name="Release the kill switch").click()
    page.wait_for_url(f"{url}/team?kill_switch=released")
    expect(page.get_by_role("status")).to_contain_text("The kill switch is released")
    expect(banner).to_have_count(0)
    page.goto(f"{url}/team/ops")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    expect(banner).to_have_count(0)
    assert people["alice"].get(f"{url}/api/v1/orgs/team/kill-switch").json()["engaged"] is False


def test_a_maintainer_changes_the_run_policy_on_the_settings_page(page, hub):
    url, _, people = hub
    sign_in_browser(page, url, "mona")
    page.goto(f"{url}/team/ops/-/settings")
    policy = page.get_by_test_id("run-policy")
    policy.get_by_role("checkbox", name="python", exact=True).uncheck()
    policy.get_by_label("HTTP hosts, one a line").fill("staging.example.com\napi.example.com")
    policy.get_by_label("Maximum runs at once").fill("0")
    policy.get_by_role("button", name="Save the run policy").click()
    # Refused: the error beside its field, what was typed kept.
    expect(policy.locator(".field-error")).to_have_text(["Input should be greater than or "
                                                         "equal to 1"])
    expect(policy.get_by_label("HTTP hosts, one a line")).to_have_value(
        "staging.example.com\napi.example.com")

    policy.get_by_label("Maximum runs at once").fill("1")
    policy.get_by_label("A dry run must pass before a new version's first real run").check()
    policy.get_by_role("button", name="Save the run policy").click()
    page.wait_for_url(f"{url}/team/ops/-/settings?saved=1#run-policy")
    expect(page.get_by_role("status")).to_have_text("Saved.")

    answer = people["mona"].get(f"{url}/api/v1/orgs/team/workspaces/ops/policy").json()
    assert answer["provider_types"] == ["process", "http"]
    assert answer["http_hosts"] == ["staging.example.com", "api.example.com"]
    assert answer["max_concurrent_runs"] == 1 and answer["dry_run_first"] is True
