"""A workspace's experiments in a real Chromium: filter them, order them, page through them."""

from __future__ import annotations

import pytest

from tests.experiment_data import experiment, variant
from tests.helpers import running_hub, sign_in_browser, signed_in_session

pytestmark = pytest.mark.e2e

MANY = 23  # more than the page shows (20)


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """A hub where ada's personal workspace holds MANY plain experiments and two that ran:
    one about DNS that deviated, one about disks that passed."""
    with running_hub(tmp_path_factory.mktemp("workspace-listing-hub")) as url:
        http = signed_in_session(url, "ada")
        listing = f"{url}/api/v1/orgs/ada/workspaces/Personal/experiments"

        def create(title: str, description: str, tags: list[str]) -> str:
            document = {**experiment(), "title": title, "description": description,
                        "tags": tags}
            answer = http.post(listing, json=document)
            assert answer.status_code == 201, answer.text
            return answer.json()["id"]

        for n in range(MANY):
            create(f"Plain experiment {n:02d}", "Nothing to see.", ["plain"])
        ran = {"deviated": create("Break DNS", "Resolvers fail for a minute.", ["network"]),
               "passed": create("Fill the disk", "Logs pile up until it is full.", ["disk"])}
        for outcome, experiment_id in ran.items():
            answer = http.post(f"{url}/api/v1/experiments/{experiment_id}/executions",
                               json=variant(outcome))
            assert answer.status_code == 201, answer.text
        yield url


def titles(page) -> list[str]:
    return page.get_by_test_id("experiment-row").get_by_role("link").all_inner_texts()


def test_filter_by_words_tags_and_last_run_then_clear(page, hub):
    sign_in_browser(page, hub, "ada")
    page.goto(f"{hub}/ada/Personal")
    filters = page.get_by_test_id("experiment-filters")

    filters.get_by_label("Search").fill("resolvers")  # a word of a description
    filters.get_by_role("button", name="Filter").click()
    page.wait_for_url("**search=resolvers**")
    assert titles(page) == ["Break DNS"]
    assert page.get_by_test_id("outcome").all_inner_texts() == ["deviated"]

    filters.get_by_label("Search").fill("")
    filters.get_by_label("Last run").select_option("passed")
    filters.get_by_role("button", name="Filter").click()
    page.wait_for_url("**last_run=passed**")
    assert titles(page) == ["Fill the disk"]
    assert filters.get_by_label("Last run").input_value() == "passed"  # the form remembers

    filters.get_by_label("Last run").select_option("")
    filters.get_by_label("Tag").fill("nothing-has-this")
    filters.get_by_role("button", name="Filter").click()
    page.wait_for_url("**tag=nothing-has-this**")
    assert page.get_by_test_id("no-match").is_visible()
    assert page.get_by_test_id("experiment-row").count() == 0

    page.get_by_test_id("clear-filters").click()
    page.wait_for_url(f"{hub}/ada/Personal#experiments")
    assert page.get_by_test_id("experiment-row").count() == 20


def test_order_by_last_run_and_page_through_every_experiment(page, hub):
    sign_in_browser(page, hub, "ada")
    page.goto(f"{hub}/ada/Personal")
    filters = page.get_by_test_id("experiment-filters")
    filters.get_by_label("Order").select_option("last_run")
    filters.get_by_role("button", name="Filter").click()
    page.wait_for_url("**sort=last_run**")
    first = titles(page)
    # Those that ran come first, the latest run first; then the others, latest update first.
    assert first[:3] == ["Fill the disk", "Break DNS", f"Plain experiment {MANY - 1:02d}"]
    assert len(first) == 20

    page.get_by_test_id("next-page").click()
    page.wait_for_url("**cursor=**")
    rest = titles(page)
    assert len(first) + len(rest) == MANY + 2
    assert set(first).isdisjoint(rest)
    assert page.get_by_test_id("next-page").count() == 0
    assert filters.get_by_label("Order").input_value() == "last_run"  # still this order

    page.get_by_test_id("first-page").click()
    page.wait_for_url("**sort=last_run#experiments")
    assert titles(page) == first


def test_a_stale_cursor_says_so_on_the_page(page, hub):
    sign_in_browser(page, hub, "ada")
    page.goto(f"{hub}/ada/Personal?cursor=not-a-cursor")
    assert "start" in page.get_by_test_id("experiments-problem").inner_text()
    assert page.get_by_test_id("first-page").is_visible()
