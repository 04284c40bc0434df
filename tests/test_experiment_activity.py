"""What the experiment service writes into feeds, and the workspace page's experiments."""

from __future__ import annotations

import pytest

from tests.conftest import csrf, post_json, signed_up_client
from tests.experiment_data import create, experiment, journal


@pytest.fixture
def olga(app):
    browser = signed_up_client(app, "olga")
    post_json(browser, "/api/v1/orgs", {"name": "team"})
    for name, visibility in (("secret", "private"), ("open", "public")):
        post_json(browser, "/api/v1/orgs/team/workspaces",
                  {"name": name, "visibility": visibility})
    return browser


def titled(title: str, tags=("demo",)) -> dict:
    document = experiment()
    document["title"], document["tags"] = title, list(tags)
    return document


def publish(browser, experiment_id: str, status: int = 201):
    response = browser.post(f"/api/v1/experiments/{experiment_id}/executions", json=journal(),
                            headers={"X-CSRF-Token": csrf(browser)})
    assert response.status_code == status, response.get_json()
    return response.get_json()


def feed(browser, path: str) -> list[dict]:
    response = browser.get(path)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["entries"]


def test_experiments_and_runs_show_in_the_feed_of_those_who_may_read_them(app, olga):
    hidden = create(olga, "team", "secret", titled("Break the vault"))
    shown = create(olga, "team", "open", titled("Kill a pod"))
    changed = titled("Break the vault", tags=["demo", "vault"])
    assert olga.put(f"/api/v1/experiments/{hidden['id']}", json=changed,
                    headers={"X-CSRF-Token": csrf(olga)}).status_code == 200
    assert olga.put(f"/api/v1/experiments/{hidden['id']}", json=changed,
                    headers={"X-CSRF-Token": csrf(olga)}).status_code == 200  # no new version
    publish(olga, hidden["id"])
    publish(olga, hidden["id"], 200)  # the same journal again: no new execution, no entry

    entries = feed(olga, "/api/v1/orgs/team/workspaces/secret/activity")
    assert [e["kind"] for e in entries] == [
        "execution.published", "experiment.changed", "experiment.created", "workspace.created"]
    assert [e["summary"] for e in entries[:3]] == [
        "olga published a run of Break the vault: deviated",
        "olga changed the experiment Break the vault (version 2)",
        "olga created the experiment Break the vault"]
    assert all(e["actor"] == "olga" for e in entries)
    assert "olga created the experiment Kill a pod" in [
        e["summary"] for e in feed(olga, "/api/v1/activity")]

    otto = signed_up_client(app, "otto")
    assert otto.get("/api/v1/orgs/team/workspaces/secret/activity").status_code == 404
    for reader in (otto, app.test_client()):
        seen = feed(reader, "/api/v1/orgs/team/activity")
        assert [e["workspace_name"] for e in seen] == ["open", "open"]
        assert "vault" not in str(seen)
        assert [e["kind"] for e in feed(reader, "/api/v1/orgs/team/workspaces/open/activity")
                ] == ["experiment.created", "workspace.created"]
    assert "vault" not in str(feed(otto, "/api/v1/activity"))
    assert shown["id"] not in str(feed(otto, "/api/v1/activity"))


# When a feed cannot take an entry for a while: tests/test_feed_outbox.py.


def test_the_workspace_page_lists_its_experiments(app, olga):
    empty = olga.get("/team/secret")
    assert 'data-testid="no-experiments"' in empty.text
    # The form's default order is no filter: still "no experiments yet", nothing to clear.
    ordered = olga.get("/team/secret?search=&sort=updated")
    assert 'data-testid="no-experiments"' in ordered.text
    assert 'data-testid="clear-filters"' not in ordered.text
    vault = create(olga, "team", "secret", titled("Break the vault", tags=["vault", "demo"]))
    publish(olga, vault["id"])
    pod = create(olga, "team", "open", titled("Kill a pod"))
    publish(olga, pod["id"])

    page = olga.get("/team/secret")
    assert page.status_code == 200
    assert page.text.count('data-testid="experiment-row"') == 1
    assert f'<a href="/team/secret/experiment/{vault["id"]}">Break the vault</a>' in page.text
    assert '<span class="badge tag">vault</span>' in page.text
    assert 'data-testid="outcome">deviated</span>' in page.text
    assert "Kill a pod" not in page.text and 'data-testid="no-experiments"' not in page.text
    assert olga.get(f"/team/secret/experiment/{vault['id']}").status_code == 200

    # Outsiders see the public workspace's experiments, not the runs it keeps from them.
    outsider = app.test_client().get("/team/open")
    assert f'<a href="/team/open/experiment/{pod["id"]}">Kill a pod</a>' in outsider.text
    assert 'data-testid="outcome"' not in outsider.text
    assert app.test_client().get("/team/secret").status_code == 404
