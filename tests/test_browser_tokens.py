"""The tokens page in a real Chromium: purposes tick scopes, the secret copies, revoking asks."""

from __future__ import annotations

import pytest
import requests

from tests.helpers import running_hub, sign_in_browser, sign_up_over_http

pytestmark = pytest.mark.e2e

CLI = ["experiments:read", "experiments:write", "executions:read", "executions:write"]


@pytest.fixture(scope="module")
def hub_url(tmp_path_factory):
    with running_hub(tmp_path_factory.mktemp("browser-tokens-hub")) as url:
        yield url


def ticked(page) -> list[str]:
    boxes = page.locator("input[name='scopes']")
    return [boxes.nth(i).get_attribute("value") for i in range(boxes.count())
            if boxes.nth(i).is_checked()]


def test_a_purpose_ticks_its_scopes_and_the_default_token_reports_runs(page, hub_url, tmp_path):
    sign_up_over_http(hub_url, "carla")
    sign_in_browser(page, hub_url, "carla")
    page.get_by_role("link", name="Tokens").click()
    page.wait_for_url(f"{hub_url}/settings/tokens")
    assert page.get_by_label("Report runs from the CLI").is_checked()
    assert ticked(page) == CLI
    assert "start runs on the hub" in page.locator("fieldset.scopes").inner_text()

    page.get_by_label("Run from CI").check()
    assert ticked(page) == [*CLI, "runs:execute"]
    page.get_by_label("Read only").check()
    assert ticked(page) == ["experiments:read", "executions:read", "orgs:read"]
    # Ticking a box by hand makes the choice custom.
    page.get_by_role("checkbox", name="audit:read").check()
    assert page.get_by_label("Custom: tick the scopes below").is_checked()
    page.get_by_label("Report runs from the CLI").check()
    assert ticked(page) == CLI
    page.screenshot(path=str(tmp_path / "token-form.png"), full_page=True)

    page.get_by_label("Name").fill("laptop")
    page.get_by_role("button", name="Create token").click()
    secret = page.get_by_label("New token secret").input_value()
    assert "experiments:write" in page.get_by_test_id("new-token").inner_text()
    # The token the form made by default can publish a run: the experiment first.
    experiments = f"{hub_url}/api/v1/orgs/carla/workspaces/Personal/experiments"
    denied = requests.post(experiments, json={"title": "x"}, timeout=10,
                           headers={"Authorization": f"Bearer {secret}"})
    assert denied.status_code == 422  # past the scope check, to the document's


def test_a_purpose_and_revoking_work_without_javascript(browser, hub_url, tmp_path):
    sign_up_over_http(hub_url, "nojs")
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        sign_in_browser(page, hub_url, "nojs")
        page.goto(f"{hub_url}/settings/tokens")
        page.get_by_label("Run from CI").check()
        assert ticked(page) == CLI  # no script: the boxes stay as they were
        page.get_by_label("Name").fill("ci")
        page.get_by_role("button", name="Create token").click()
        assert "runs:execute" in page.get_by_test_id("new-token").inner_text()
        page.screenshot(path=str(tmp_path / "no-script.png"), full_page=True)
        assert page.get_by_role("button", name="Copy").is_hidden()
        # Revoking asks first without a script too.
        confirm = page.get_by_role("button", name="Yes, revoke “ci”")
        assert not confirm.is_visible()
        page.get_by_test_id("token").get_by_text("Revoke…").click()
        confirm.click()
        page.wait_for_url(f"{hub_url}/settings/tokens?revoked=1")
        assert page.get_by_test_id("token").count() == 0
    finally:
        context.close()


def test_the_secret_copies_and_revoking_asks_first(page, hub_url, tmp_path):
    sign_up_over_http(hub_url, "dora")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=hub_url)
    sign_in_browser(page, hub_url, "dora")
    page.goto(f"{hub_url}/settings/tokens")
    page.get_by_label("Name").fill("ci on main")
    page.get_by_role("button", name="Create token").click()
    secret = page.get_by_label("New token secret").input_value()
    assert page.get_by_test_id("copied").inner_text() == ""
    page.get_by_role("button", name="Copy").click()
    page.get_by_test_id("copied").filter(has_text="Copied").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == secret
    page.screenshot(path=str(tmp_path / "token-copied.png"), full_page=True)

    # One click opens the question; only the second revokes.
    row = page.get_by_test_id("token").filter(has_text="ci on main")
    confirm = row.get_by_role("button", name="Yes, revoke “ci on main”")
    assert not confirm.is_visible()
    row.get_by_text("Revoke…").click()
    assert confirm.is_visible()
    assert "are refused from now on" in row.inner_text()
    assert page.get_by_test_id("token").count() == 1
    confirm.click()
    page.wait_for_url(f"{hub_url}/settings/tokens?revoked=1")
    assert page.get_by_test_id("token").count() == 0
    assert requests.get(f"{hub_url}/api/v1/me", timeout=10,
                        headers={"Authorization": f"Bearer {secret}"}).status_code == 401
