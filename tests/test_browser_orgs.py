"""Orgs in a real Chromium: create one, add a workspace and a member, and see what they see."""

from __future__ import annotations

import pytest

from tests.helpers import running_hub, sign_in_browser, sign_up_over_http

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def hub_url(tmp_path_factory):
    with running_hub(tmp_path_factory.mktemp("browser-orgs-hub")) as url:
        yield url


def test_an_owner_builds_an_org_and_a_member_sees_it(page, hub_url, tmp_path):
    sign_up_over_http(hub_url, "olga")
    sign_up_over_http(hub_url, "mary")
    sign_in_browser(page, hub_url, "olga")

    page.get_by_label("Org name").fill("Chaos-Team")
    page.get_by_role("button", name="Create org").click()
    page.wait_for_url(f"{hub_url}/Chaos-Team")
    assert page.get_by_test_id("my-role").inner_text() == "owner"

    page.get_by_label("Name", exact=True).fill("production")
    page.get_by_label("Who sees it").select_option("private")
    page.get_by_role("button", name="Create workspace").click()
    page.wait_for_url(f"{hub_url}/Chaos-Team/production")
    assert page.get_by_test_id("visibility").inner_text() == "private"
    assert page.get_by_test_id("no-experiments").is_visible()

    page.get_by_role("link", name="Chaos-Team", exact=True).click()
    page.get_by_role("link", name="Members").click()
    page.wait_for_url(f"{hub_url}/Chaos-Team/-/members")
    page.get_by_label("Username").fill("mary")
    page.get_by_label("Role", exact=True).select_option("member")
    page.get_by_role("button", name="Add member").click()
    page.wait_for_url(f"{hub_url}/Chaos-Team/-/members")
    assert page.get_by_test_id("member").count() == 2
    assert page.get_by_label("Role of mary").input_value() == "member"
    page.screenshot(path=str(tmp_path / "members.png"), full_page=True)

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{hub_url}/signin")
    sign_in_browser(page, hub_url, "mary")
    team = page.get_by_test_id("org").filter(has_text="Chaos-Team")
    assert "member" in team.inner_text() and "production" in team.inner_text()

    team.get_by_role("link", name="Chaos-Team", exact=True).click()
    page.wait_for_url(f"{hub_url}/Chaos-Team")
    workspaces = page.get_by_test_id("workspace")
    assert workspaces.count() == 1 and "private" in workspaces.inner_text()
    assert page.get_by_role("link", name="Settings", exact=True).count() == 1  # the top bar's
    assert page.get_by_role("heading", name="New workspace").count() == 0

    page.get_by_role("link", name="Members").click()
    page.wait_for_url(f"{hub_url}/Chaos-Team/-/members")
    assert page.get_by_role("heading", name="Add a member").count() == 0
    assert page.get_by_role("button", name="Leave").count() == 1
    assert page.get_by_role("button", name="Remove").count() == 0

    refused = page.goto(f"{hub_url}/Chaos-Team/-/settings")
    assert refused.status == 403
    assert "Not allowed" in page.get_by_role("heading", level=1).inner_text()
