"""Search in a real Chromium: experiments by title and tag, and runs, beside people, orgs and
workspaces; a private workspace's experiments never shown to outsiders."""

from __future__ import annotations

import pytest

from tests.experiment_data import experiment, journal
from tests.helpers import running_hub, sign_in_browser, signed_in_session

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """ada's org "team" with a private workspace "vault" holding "Vault latency", and her
    personal Public workspace holding "Cache latency" (tagged redis) with one run; bob is
    another user."""
    with running_hub(tmp_path_factory.mktemp("search-hub")) as url:
        http = signed_in_session(url, "ada")
        assert http.post(f"{url}/api/v1/orgs", json={"name": "team"}).status_code == 201
        assert http.post(f"{url}/api/v1/orgs/team/workspaces",
                         json={"name": "vault", "visibility": "private"}).status_code == 201

        def create(org: str, workspace: str, title: str, tags: list[str]) -> str:
            answer = http.post(f"{url}/api/v1/orgs/{org}/workspaces/{workspace}/experiments",
                               json={**experiment(), "title": title, "tags": tags})
            assert answer.status_code == 201, answer.text
            return answer.json()["id"]

        create("team", "vault", "Vault latency", ["latency"])
        public = create("ada", "Public", "Cache latency", ["redis"])
        ran = http.post(f"{url}/api/v1/experiments/{public}/executions", json=journal())
        assert ran.status_code == 201, ran.text
        signed_in_session(url, "bob")
        yield {"url": url, "public": public, "run": ran.json()["id"]}


def search_from_the_header(page, words: str) -> None:
    box = page.get_by_role("search").first.get_by_role("searchbox")
    box.fill(words)
    box.press("Enter")
    page.wait_for_url("**/-/search?q=*")


def test_a_member_finds_experiments_by_title_and_tag_and_their_runs(page, hub):
    url = hub["url"]
    sign_in_browser(page, url, "ada")
    search_from_the_header(page, "latency")
    found = page.get_by_test_id("search-experiments").get_by_role("link").all_inner_texts()
    assert found == ["Cache latency", "Vault latency"]
    runs = page.get_by_test_id("search-runs").get_by_role("link")
    assert runs.all_inner_texts() == [f"Run {hub['run'][-8:]} of Cache latency"]

    search_from_the_header(page, "REDIS")  # a tag, any case
    page.get_by_test_id("search-experiments").get_by_role("link", name="Cache latency").click()
    page.wait_for_url(f"{url}/ada/Public/experiment/{hub['public']}")
    assert "Cache latency" in page.get_by_role("heading", level=1).inner_text()

    search_from_the_header(page, hub["run"][-8:])  # a run by the end of its id, as shown
    page.get_by_test_id("search-runs").get_by_role("link").click()
    page.wait_for_url(f"**/execution/{hub['run']}")


def test_outsiders_never_find_a_private_workspace_s_experiments(page, hub):
    url = hub["url"]
    sign_in_browser(page, url, "bob")
    search_from_the_header(page, "latency")
    experiments = page.get_by_test_id("search-experiments")
    assert experiments.get_by_role("link").all_inner_texts() == ["Cache latency"]
    assert "Vault" not in page.locator("main").inner_text()
    # Nor do visitors, who find what is public.
    page.context.clear_cookies()
    page.goto(f"{url}/-/search?q=vault")
    assert page.get_by_test_id("search-experiments").get_by_role("link").count() == 0
    assert page.get_by_test_id("search-workspaces").get_by_role("link").count() == 0
    page.goto(f"{url}/search?q=cache")  # the former address leads here
    page.wait_for_url("**/-/search?q=cache")
    assert page.get_by_test_id("search-experiments").get_by_role("link").all_inner_texts() == [
        "Cache latency"]
