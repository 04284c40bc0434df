"""Writing an experiment in a real Chromium: from a starter to a second version, and deleted."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.conftest import PASSWORD
from tests.helpers import running_hub

pytestmark = pytest.mark.e2e

STARTER = "The application survives losing one of its pods"


@pytest.fixture(scope="module")
def hub_url(tmp_path_factory):
    with running_hub(tmp_path_factory.mktemp("editor-hub")) as url:
        yield url


def sign_up_and_in(page, hub_url: str, username: str) -> None:
    """Sign up through the form; sign in too when the hub asks for it after signing up."""
    page.goto(f"{hub_url}/signup")
    page.locator("input[name=username]").fill(username)
    page.locator("input[name=password]").fill(PASSWORD)
    with page.expect_navigation():
        page.get_by_role("button", name="Create account").click()
    if "/signin" in page.url:
        page.locator("input[name=password]").fill(PASSWORD)
        with page.expect_navigation():
            page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_test_id("viewer")).to_be_visible()


def line_of(text: str, needle: str) -> int:
    return text[:text.index(needle)].count("\n") + 1


def test_from_a_starter_to_version_two_then_deleted(page, hub_url):
    sign_up_and_in(page, hub_url, "nina")
    page.goto(f"{hub_url}/nina/Personal")
    page.get_by_test_id("new-experiment").click()
    page.wait_for_url(f"{hub_url}/nina/Personal/experiment/-/new")
    assert page.get_by_test_id("starter").count() == 3
    page.get_by_role("button", name=f"Use the template: {STARTER}").click()
    page.wait_for_url(re.compile(r".*/nina/Personal/experiment/[^/]+/edit$"))
    base = page.url.removesuffix("/edit")
    status = page.get_by_test_id("problems-status")
    expect(status).to_have_text("Valid: the hub would keep this document.")

    # Break it: the action's provider type is misspelt. The problem shows at its line.
    editor = page.get_by_test_id("document")
    original = editor.input_value()
    action = original.index('"chaosk8s.pod.actions"')
    broken_at = original.rindex('"type": "python"', 0, action)
    broken = original[:broken_at] + '"type": "pythn"' + original[broken_at + 16:]
    editor.fill(broken)
    line = line_of(broken, '"pythn"')
    problem = page.get_by_test_id("problem")
    expect(problem).to_have_count(1)
    expect(problem).to_contain_text(f"Line {line} 'pythn' is not one of")
    expect(status).to_have_text("1 problem: the hub would not keep this document.")
    expect(page.get_by_test_id("gutter").locator(".bad")).to_have_text(str(line))
    problem.get_by_role("button", name=f"Line {line}").click()
    selected = editor.evaluate("t => t.value.slice(t.selectionStart, t.selectionEnd)")
    assert '"pythn"' in selected

    # Fix it, with a change of its own, and save it as version 2 with a message.
    editor.fill(original.replace('"namespace": "default"', '"namespace": "shop"'))
    expect(status).to_have_text("Valid: the hub would keep this document.")
    expect(page.get_by_test_id("problem")).to_have_count(0)
    page.get_by_test_id("message").fill("Kill pods in the shop namespace")
    page.get_by_role("button", name="Save as version 2").click()
    page.wait_for_url(base)
    expect(page.get_by_test_id("version")).to_have_text("version 2")
    newest = page.get_by_test_id("version-row").first
    expect(newest).to_contain_text("v2")
    expect(newest).to_contain_text("Kill pods in the shop namespace")

    # Delete it: a confirmation first, then back to the workspace without it.
    page.get_by_test_id("delete-link").click()
    page.wait_for_url(f"{base}/delete")
    expect(page.get_by_test_id("confirm-delete")).to_contain_text("2 versions")
    page.get_by_role("button", name="Delete the experiment").click()
    page.wait_for_url(f"{hub_url}/nina/Personal?deleted=1#experiments")
    expect(page.get_by_test_id("deleted")).to_have_text("The experiment was deleted.")
    expect(page.get_by_test_id("experiment-row")).to_have_count(0)
    assert page.request.get(base, headers={"Accept": "text/html"}).status == 404


def test_paste_yaml_see_its_problem_then_create(page, hub_url):
    sign_up_and_in(page, hub_url, "omar")
    page.goto(f"{hub_url}/omar/Personal/experiment/-/new")
    page.get_by_test_id("format").select_option("yaml")
    text = ("title: Pasted\n"
            "description: typed in the page\n"
            "method:\n"
            "  - type: action\n"
            "    name: say-hello\n"
            "    provider:\n"
            "      type: process\n")
    page.get_by_test_id("document").fill(text)
    problem = page.get_by_test_id("problem")
    expect(problem).to_contain_text("Line 6 'path' is a required property")
    page.get_by_test_id("document").fill(text + "      path: echo\n")
    expect(page.get_by_test_id("problems-status")).to_have_text(
        "Valid: the hub would keep this document.")
    page.get_by_role("button", name="Create experiment").click()
    page.wait_for_url(re.compile(r".*/omar/Personal/experiment/[^/]+$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Pasted")
    expect(page.get_by_test_id("version-row")).to_contain_text("created in the browser")
