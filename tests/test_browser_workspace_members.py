"""Workspace members in a real Chromium: an owner lets someone outside the org into one
workspace, changes their role, and takes it away again."""

from __future__ import annotations

import pytest

from tests.helpers import running_hub, sign_in_browser, sign_up_over_http

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def hub_url(tmp_path_factory):
    with running_hub(tmp_path_factory.mktemp("browser-workspace-members-hub")) as url:
        yield url


def create_workspace(page, hub_url: str, org: str, name: str) -> None:
    page.goto(f"{hub_url}/{org}")
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Who sees it").select_option("private")
    page.get_by_role("button", name="Create workspace").click()
    page.wait_for_url(f"{hub_url}/{org}/{name}")


def sign_out(page, hub_url: str) -> None:
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{hub_url}/signin")


def test_an_owner_lets_an_outsider_into_one_workspace(page, hub_url, tmp_path):
    sign_up_over_http(hub_url, "olga")
    sign_up_over_http(hub_url, "otto")
    sign_in_browser(page, hub_url, "olga")
    page.get_by_label("Org name").fill("Chaos-Team")
    page.get_by_role("button", name="Create org").click()
    page.wait_for_url(f"{hub_url}/Chaos-Team")
    create_workspace(page, hub_url, "Chaos-Team", "staging")
    create_workspace(page, hub_url, "Chaos-Team", "production")

    members = page.get_by_test_id("workspace-members")
    assert members.get_by_test_id("no-workspace-members").is_visible()
    members.get_by_label("Username").fill("otto")
    members.get_by_label("Role in production").select_option("maintainer")
    members.get_by_role("button", name="Add to workspace").click()
    page.wait_for_url(f"{hub_url}/Chaos-Team/production#members")
    row = page.get_by_test_id("workspace-member")
    assert row.count() == 1 and "outside the org" in row.inner_text()
    assert page.get_by_label("Workspace role of otto").input_value() == "maintainer"

    page.get_by_label("Workspace role of otto").select_option("member")
    row.get_by_role("button", name="Change").click()
    page.wait_for_url(f"{hub_url}/Chaos-Team/production#members")
    assert page.get_by_label("Workspace role of otto").input_value() == "member"

    # A name nobody has comes back as the form's error.
    members = page.get_by_test_id("workspace-members")
    members.get_by_label("Username").fill("nobody-here")
    members.get_by_role("button", name="Add to workspace").click()
    assert "nobody-here" in page.get_by_role("alert").inner_text()
    page.screenshot(path=str(tmp_path / "workspace-members.png"), full_page=True)
    sign_out(page, hub_url)

    # otto sees the org through production alone, with his role there.
    sign_in_browser(page, hub_url, "otto")
    team = page.get_by_test_id("org").filter(has_text="Chaos-Team")
    assert "production" in team.inner_text() and "staging" not in team.inner_text()
    team.get_by_role("link", name="production").click()
    page.wait_for_url(f"{hub_url}/Chaos-Team/production")
    assert page.get_by_role("button", name="Leave").count() == 1
    assert page.get_by_role("button", name="Add to workspace").count() == 0
    assert page.goto(f"{hub_url}/Chaos-Team/staging").status == 404
    assert page.goto(f"{hub_url}/Chaos-Team/-/members").status == 403
    page.goto(f"{hub_url}/")
    sign_out(page, hub_url)

    # olga takes the role away: the workspace closes to otto at once.
    sign_in_browser(page, hub_url, "olga")
    page.goto(f"{hub_url}/Chaos-Team/production")
    page.get_by_test_id("workspace-member").get_by_role("button", name="Remove").click()
    page.wait_for_url(f"{hub_url}/Chaos-Team/production#members")
    assert page.get_by_test_id("no-workspace-members").is_visible()
    sign_out(page, hub_url)
    sign_in_browser(page, hub_url, "otto")
    assert page.get_by_test_id("org").filter(has_text="Chaos-Team").count() == 0
    assert page.goto(f"{hub_url}/Chaos-Team/production").status == 404
