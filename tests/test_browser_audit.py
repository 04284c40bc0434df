"""The audit log in a real Chromium: details read as text, and a personal token's events stay in
its account's own log."""

from __future__ import annotations

import pytest

from tests.helpers import running_hub, sign_in_browser, signed_in_session

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def hub_url(tmp_path_factory):
    with running_hub(tmp_path_factory.mktemp("browser-audit-hub")) as url:
        yield url


def test_a_personal_tokens_creation_is_in_its_accounts_log_only(page, hub_url, tmp_path):
    olga = signed_in_session(hub_url, "olga")
    assert olga.post(f"{hub_url}/api/v1/orgs", json={"name": "team"}).status_code == 201
    signed_in_session(hub_url, "mary").close()
    assert olga.post(f"{hub_url}/api/v1/orgs/team/members",
                     json={"username": "mary", "role": "member"}).status_code == 201

    sign_in_browser(page, hub_url, "mary")
    page.goto(f"{hub_url}/settings/tokens")
    page.get_by_label("Name").fill("my laptop")
    page.get_by_label("Read only").check()
    page.get_by_role("button", name="Create token").click()
    page.get_by_test_id("new-token").wait_for()

    # Mary's own log shows it, in words.
    page.goto(f"{hub_url}/mary")
    page.get_by_role("link", name="Audit log").click()
    page.wait_for_url(f"{hub_url}/mary/-/audit")
    created = page.get_by_test_id("audit-entry").filter(has_text="auth.token_created")
    assert created.count() == 1
    details = created.locator("dl.details")
    assert details.locator("dt", has_text="Scopes").count() == 1
    text = details.inner_text()
    assert "experiments:read, executions:read, orgs:read" in text
    assert "my laptop" in text and "UTC" in text
    for python in ("['", "None", "token_id"):
        assert python not in page.get_by_test_id("audit").inner_text()
    page.screenshot(path=str(tmp_path / "own-log.png"), full_page=True)
    page.get_by_role("button", name="Sign out").click()

    # The team's log has mary's sign-in as a member, not her token.
    sign_in_browser(page, hub_url, "olga")
    page.goto(f"{hub_url}/team/-/audit")
    log = page.get_by_test_id("audit").inner_text()
    assert "auth.sign_in" in log and "member.added" in log
    assert "auth.token_created" not in log and "my laptop" not in log
