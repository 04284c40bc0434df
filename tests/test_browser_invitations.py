"""Invitations in a real Chromium: an owner makes a link, someone else signs in through it."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD
from tests.helpers import running_hub, sign_in_browser, sign_up_over_http

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def hub_url(tmp_path_factory):
    with running_hub(tmp_path_factory.mktemp("browser-invitations-hub")) as url:
        yield url


def test_an_owner_invites_by_link_and_the_invitee_joins(page, hub_url, tmp_path):
    sign_up_over_http(hub_url, "olga")
    sign_up_over_http(hub_url, "mary")
    sign_in_browser(page, hub_url, "olga")
    page.get_by_label("Org name").fill("Chaos-Team")
    page.get_by_role("button", name="Create org").click()
    page.wait_for_url(f"{hub_url}/Chaos-Team")

    page.get_by_role("link", name="Members").click()
    page.wait_for_url(f"{hub_url}/Chaos-Team/-/members")
    page.get_by_label("Invitation role").select_option("maintainer")
    page.get_by_role("button", name="Invite").click()
    link = page.get_by_label("Invitation link").input_value()
    assert link.startswith(f"{hub_url}/invitations/chinv_")
    assert page.get_by_test_id("pending-invitation").count() == 1
    page.screenshot(path=str(tmp_path / "invite.png"), full_page=True)
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{hub_url}/signin")

    # A visitor with the link signs in first, and comes back to it.
    page.goto(link)
    assert page.url == f"{hub_url}/signin?next=/invitations/pending"
    page.get_by_label("Username").fill("mary")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{hub_url}/invitations/pending")
    assert page.get_by_test_id("invitation-org").inner_text() == "Chaos-Team"
    assert page.get_by_test_id("invitation-role").inner_text() == "maintainer"
    page.get_by_role("button", name="Accept invitation").click()
    page.wait_for_url(f"{hub_url}/Chaos-Team")
    assert page.get_by_test_id("my-role").inner_text() == "maintainer"
    assert "mary accepted an invitation" in page.get_by_test_id("activity").inner_text()

    page.goto(f"{hub_url}/")
    team = page.get_by_test_id("org").filter(has_text="Chaos-Team")
    assert "maintainer" in team.inner_text()

    # The link was for one person only.
    page.goto(link)
    assert "cannot be used" in page.get_by_role("heading", level=1).inner_text()
