"""The changes between two versions of an experiment in a real Chromium: what a person sees."""

from __future__ import annotations

import pytest

from tests.experiment_data import experiment
from tests.helpers import running_hub, sign_in_browser, signed_in_session
from tests.test_version_diff_page import second_version

pytestmark = pytest.mark.e2e



def background(locator) -> tuple[int, int, int]:
    """The red, green and blue of an element's background, as the browser computes them."""
    rgb = locator.evaluate("e => getComputedStyle(e).backgroundColor")
    return tuple(int(n) for n in rgb[rgb.index("(") + 1:rgb.index(")")].split(",")[:3])


def third_version() -> dict:
    """The second version with its steady-state probes swapped, a probe added to the method
    and the file `delete-marker-file` removes moved."""
    changed = second_version()
    changed["steady-state-hypothesis"]["probes"].reverse()
    changed["method"][1]["provider"]["arguments"][1] = "/tmp/elsewhere"
    changed["method"].append({"type": "probe", "name": "count-files",
                              "provider": {"type": "process", "path": "ls"}})
    return changed


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """A hub with ivan's experiment in three versions."""
    with running_hub(tmp_path_factory.mktemp("version-diff-hub")) as url:
        http = signed_in_session(url, "ivan")
        created = http.post(f"{url}/api/v1/orgs/ivan/workspaces/Personal/experiments",
                            json=experiment()).json()
        for document, message in ((second_version(), "tighter timeout"),
                                  (third_version(), "check the files too")):
            answer = http.put(f"{url}/api/v1/experiments/{created['id']}", json=document,
                              params={"message": message})
            assert answer.status_code == 200, answer.text
        yield url, created["id"]


def folded(texts: list[str]) -> list[str]:
    return [" ".join(t.split()) for t in texts]


def test_follow_a_version_to_its_changes_then_pick_another_pair(page, hub):
    url, experiment_id = hub
    sign_in_browser(page, url, "ivan")
    page.goto(f"{url}/ivan/Personal/experiment/{experiment_id}")
    rows = page.get_by_test_id("version-row")
    assert rows.count() == 3
    page.get_by_role("link", name="changes since v2").click()
    page.wait_for_url(f"**/ivan/Personal/experiment/{experiment_id}/versions/diff?from=2&to=3")

    assert page.get_by_role("heading", level=1).inner_text() == "Changes from v2 to v3"
    newer = page.get_by_test_id("to-version")
    assert newer.get_by_test_id("number").inner_text() == "v3"
    assert newer.get_by_test_id("author").inner_text() == "ivan"
    assert newer.get_by_test_id("message").inner_text() == "check the files too"
    method = page.get_by_test_id("section-method")
    assert folded(method.get_by_test_id("added").all_inner_texts()) == [
        "added count-files The activity"]
    added_json = method.get_by_test_id("added").locator("pre")
    assert not added_json.is_visible()  # folded away until asked for
    method.get_by_text("The activity").click()
    assert '"path": "ls"' in added_json.inner_text()
    hypothesis = page.get_by_test_id("section-hypothesis")
    assert " ".join(hypothesis.get_by_test_id("reordered").inner_text().split()) == (
        "order changed was marker-file-exists → marker-file-test-succeeds; "
        "now marker-file-test-succeeds → marker-file-exists")
    # A changed item of a list inside the provider: its path and the two values alone.
    moved = method.get_by_test_id("changed")
    assert moved.get_by_test_id("activity-name").inner_text() == "delete-marker-file"
    assert folded(moved.get_by_test_id("field").all_inner_texts()) == [
        'provider.arguments[1] "${marker_path}" "/tmp/elsewhere"']
    # A long path wraps inside its column instead of running under the old value.
    path = moved.get_by_test_id("field").get_by_role("rowheader").locator("code")
    old_value = moved.get_by_test_id("field").get_by_test_id("before")
    assert path.bounding_box()["x"] + path.bounding_box()["width"] <= \
        old_value.bounding_box()["x"]
    assert page.get_by_test_id("section-rollbacks").count() == 0
    assert page.get_by_test_id("unchanged").inner_text() == \
        "Unchanged: Rollbacks, and every other field."

    # Another pair, through the form.
    page.get_by_label("From", exact=True).select_option("1")
    page.get_by_label("To", exact=True).select_option("2")
    page.get_by_role("button", name="Show the changes").click()
    page.wait_for_url("**/versions/diff?from=1&to=2")
    assert page.get_by_role("heading", level=1).inner_text() == "Changes from v1 to v2"
    assert page.get_by_test_id("from-version").get_by_test_id("message").inner_text() == \
        "created"
    method = page.get_by_test_id("section-method")
    assert folded(method.get_by_test_id("removed").get_by_test_id("activity-name")
                  .all_inner_texts()) == ["read-marker-size"]
    changed = method.get_by_test_id("changed")
    assert changed.get_by_test_id("activity-name").inner_text() == "run-true"
    # The one key that changed, with its old and new value; not the whole provider.
    assert changed.get_by_test_id("changed-fields").inner_text() == "provider.timeout"
    field = changed.get_by_test_id("field")
    assert field.count() == 1
    before, after = field.get_by_test_id("before"), field.get_by_test_id("after")
    assert (field.get_by_role("rowheader").inner_text(), before.inner_text(),
            after.inner_text()) == ("provider.timeout", "5", "10")
    whole = changed.locator("details pre")
    assert not whole.first.is_visible()  # the whole activity only when asked for
    changed.get_by_text("The whole activity, before and after").click()
    assert '"timeout": 5' in whole.first.inner_text()
    # The old value on a red tint, the new on a green one (whatever the exact shades).
    red, green, _ = background(before)
    assert red > green
    red, green, _ = background(after)
    assert green > red
    # Side by side: the new value sits to the right of the old one, on the same line.
    old_box, new_box = before.bounding_box(), after.bounding_box()
    assert new_box["x"] > old_box["x"] + old_box["width"] and new_box["y"] == old_box["y"]
    rollbacks = page.get_by_test_id("section-rollbacks")
    assert rollbacks.get_by_test_id("added").get_by_test_id("activity-name").inner_text() == \
        "say-done"
    title = page.get_by_test_id("fields").get_by_test_id("field")
    assert folded(title.all_inner_texts()) == [
        f'title "{experiment()["title"]}" "A better title"']

    # Swapped, what was added reads as removed.
    page.get_by_role("link", name="Swap the versions").click()
    page.wait_for_url("**/versions/diff?from=2&to=1")
    assert page.get_by_test_id("section-rollbacks").get_by_test_id("removed").count() == 1
    assert page.get_by_label("From", exact=True).input_value() == "2"

    # The same version on both sides.
    page.get_by_label("To", exact=True).select_option("2")
    page.get_by_role("button", name="Show the changes").click()
    page.wait_for_url("**/versions/diff?from=2&to=2")
    assert page.get_by_test_id("no-differences").get_by_role("heading").inner_text() == \
        "No differences"


def test_an_unknown_version_reads_as_not_found(page, hub):
    url, experiment_id = hub
    sign_in_browser(page, url, "ivan")
    answer = page.goto(f"{url}/ivan/Personal/experiment/{experiment_id}/versions/diff"
                       "?from=1&to=7")
    assert answer.status == 404
    assert page.get_by_role("heading", level=1).inner_text() == "Nothing here"
    assert page.get_by_text("this experiment has no version 7").is_visible()
