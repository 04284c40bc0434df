"""The activity feed in a real Chromium: each entry links to what it is about, and people are
named by username wherever the entry was written."""

from __future__ import annotations

import time

import pytest
import requests

from tests.conftest import PASSWORD
from tests.experiment_data import experiment, journal
from tests.helpers import running_hub, sign_in_browser, signed_in_session

pytestmark = pytest.mark.e2e


def signed_in_as(url: str, username: str, display_name: str) -> requests.Session:
    """A session of a new account with a display name of its own, sending its CSRF header."""
    http = requests.Session()
    http.get(f"{url}/signin")
    form = {"username": username, "password": PASSWORD, "display_name": display_name,
            "csrf_token": http.cookies["chaoshub_csrf"]}
    assert http.post(f"{url}/signup", data=form, allow_redirects=False).status_code == 303
    assert http.post(f"{url}/signin", data=form, allow_redirects=False).status_code == 303
    assert http.get(f"{url}/", allow_redirects=False).status_code == 200
    http.headers["X-CSRF-Token"] = http.cookies["chaoshub_csrf"]
    return http


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """Ada Lovelace (ada) runs org "team": a public workspace "lab" showing outsiders the
    status of runs, an experiment there with one run, and bob as a member."""
    with running_hub(tmp_path_factory.mktemp("feed-hub")) as url:
        signed_in_session(url, "bob")
        http = signed_in_as(url, "ada", "Ada Lovelace")
        assert http.post(f"{url}/api/v1/orgs", json={"name": "team"}).status_code == 201
        assert http.post(f"{url}/api/v1/orgs/team/workspaces", json={
            "name": "lab", "visibility": "public", "outsider_executions": "status"}
        ).status_code == 201
        made = http.post(f"{url}/api/v1/orgs/team/workspaces/lab/experiments",
                         json=experiment())
        assert made.status_code == 201, made.text
        ran = http.post(f"{url}/api/v1/experiments/{made.json()['id']}/executions",
                        json=journal())
        assert ran.status_code == 201, ran.text
        # Experiment's entries reach the feed a moment after its answers.
        deadline = time.monotonic() + 10
        while "execution.published" not in {
                e["kind"] for e in http.get(f"{url}/api/v1/orgs/team/activity").json()["entries"]}:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert http.post(f"{url}/api/v1/orgs/team/members",
                         json={"username": "bob"}).status_code == 201
        yield {"url": url, "experiment": made.json(), "run": ran.json()["id"]}


def entry(page, text: str):
    return page.get_by_test_id("activity-entry").filter(has_text=text)


def test_each_entry_links_to_what_it_is_about(page, hub):
    url, made = hub["url"], hub["experiment"]
    sign_in_browser(page, url, "ada")
    page.goto(f"{url}/team")
    # Written by the experiment service with her display name, by dashboard with her username:
    # the feed names her by username in every entry, each a link to her page.
    actors = page.get_by_test_id("activity-actor").all_inner_texts()
    assert len(actors) >= 5 and set(actors) == {"ada"}
    assert "Ada Lovelace" not in page.get_by_test_id("activity").inner_text()

    entry(page, "created the experiment").get_by_test_id("activity-link").click()
    page.wait_for_url(f"{url}/team/lab/experiment/{made['id']}")
    page.go_back()
    entry(page, "published a run").get_by_test_id("activity-link").click()
    page.wait_for_url(f"{url}/team/lab/experiment/{made['id']}/execution/{hub['run']}")
    page.go_back()
    entry(page, "added bob").get_by_test_id("activity-link").click()
    page.wait_for_url(f"{url}/bob")
    page.go_back()
    entry(page, "created the workspace lab").get_by_test_id("activity-link").click()
    page.wait_for_url(f"{url}/team/lab")
    entry(page, "created the workspace lab").get_by_test_id("activity-actor").click()
    page.wait_for_url(f"{url}/ada")


def test_visitors_follow_links_to_what_they_may_see_only(page, hub):
    url, made = hub["url"], hub["experiment"]
    page.goto(f"{url}/team/lab")
    feed = page.get_by_test_id("activity")
    assert page.get_by_test_id("activity-actor").count() == 0  # no links to people
    assert "added bob" not in feed.inner_text()  # members' business
    # The run, as outsiders see it here: its status, without who published it.
    run = entry(page, "A run of")
    assert "ada" not in run.inner_text()
    run.get_by_test_id("activity-link").click()
    page.wait_for_url(f"{url}/team/lab/experiment/{made['id']}/execution/{hub['run']}")
    assert page.get_by_role("heading", level=1).count() == 1
