"""The empty workspace's first-run guide: shown to those who may write there while it has no
experiment, with a first experiment to download that checks this hub answers."""

from __future__ import annotations

import re

import pytest

from tests.conftest import csrf, post_json, signed_up_client
from tests.experiment_data import create


@pytest.fixture
def alice(app):
    return signed_up_client(app, "alice")


def test_an_empty_workspace_guides_its_writer_and_the_file_checks_this_hub(alice):
    page = alice.get("/alice/Personal").get_data(as_text=True)
    assert 'data-testid="first-run-guide"' in page
    assert "chaoshub login --url http://localhost --org alice --workspace Personal" in page
    found = alice.get("/alice/Personal/experiment/-/first-run.json")
    assert found.status_code == 200
    assert found.headers["Content-Disposition"] == 'attachment; filename="first-run.json"'
    document = found.get_json()
    assert document["steady-state-hypothesis"]["probes"][0]["provider"]["url"] == \
        "http://localhost/status/health"
    # The hub's own check of experiments takes it.
    assert post_json(alice, "/api/v1/orgs/alice/workspaces/Personal/experiments",
                     document).status_code == 201
    assert 'data-testid="first-run-guide"' not in alice.get("/alice/Personal").get_data(
        as_text=True)


def test_the_guides_token_is_kept_to_the_workspace_and_its_page_shows_the_login(alice):
    answer = alice.post("/settings/tokens", data={
        "csrf_token": csrf(alice), "name": "chaos CLI for alice/Personal", "preset": "cli",
        "workspace": "alice/Personal", "guide": "alice/Personal"})
    assert answer.status_code == 201
    page = answer.get_data(as_text=True)
    assert 'data-testid="guide-login-command"' in page
    assert "chaoshub login --url http://localhost --org alice --workspace Personal" in page
    # Shown once in its own field, never inside a command to paste into a shell.
    assert page.count(answer_secret(page)) == 1
    tokens = alice.get("/api/v1/tokens").get_json()["tokens"]
    assert [(t["name"], t["workspace"]) for t in tokens] == [
        ("chaos CLI for alice/Personal", "alice/Personal")]


def test_readers_get_no_guide_and_no_file(app, alice):
    assert post_json(alice, "/api/v1/orgs", {"name": "team"}).status_code == 201
    assert post_json(alice, "/api/v1/orgs/team/workspaces",
                     {"name": "open", "visibility": "public"}).status_code == 201
    bob = signed_up_client(app, "bob")
    page = bob.get("/team/open")
    assert page.status_code == 200
    assert 'data-testid="first-run-guide"' not in page.get_data(as_text=True)
    assert bob.get("/team/open/experiment/-/first-run.json").status_code == 403
    assert app.test_client().get("/team/open/experiment/-/first-run.json").status_code == 401


def test_a_workspace_with_experiments_shows_them_instead(alice):
    create(alice)
    assert 'data-testid="first-run-guide"' not in alice.get("/alice/Personal").get_data(
        as_text=True)


def answer_secret(page: str) -> str:
    """The new token's secret, from its one-time field."""
    return re.search(r'value="([^"]+)" aria-label="New token secret"', page).group(1)
