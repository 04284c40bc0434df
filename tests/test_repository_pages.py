"""The workspace's Repository page and a synced experiment's pages, through the test client
against a real repository served over git http-backend: the forms link, change and unlink, the
Sync button queues a sync whose page lists what it did, and the experiment's pages are read
only, saying where it comes from."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import select

from chaoshub.core.db import transaction
from chaoshub.experiment import git_sync
from chaoshub.experiment.models import RepositoryLink
from chaoshub.experiment.repository_links import context
from chaoshub.experiment.secret_box import open_sealed
from tests.conftest import csrf, signed_up_client
from tests.git_server import Repository, git_http_server
from tests.run_data import runnable

PAGE = "/alice/Personal/-/repository"
TOKEN = "gh-page-token-Qz81"
ANN = ("Ann Author", "ann@example.com")


@pytest.fixture
def hub(app, tmp_path):
    app.config.update(ALLOW_PRIVATE_TARGETS=True, GIT_CACHE_DIR=str(tmp_path / "git-cache"))
    return app


@pytest.fixture
def alice(hub):
    return signed_up_client(hub, "alice")


@pytest.fixture
def served(tmp_path):
    with git_http_server(tmp_path / "served", token=TOKEN) as server:
        repo = Repository.create(server.root, "chaos")
        repo.commit({"chaos/a.json": json.dumps(runnable("Alpha")),
                     "chaos/b.json": json.dumps(runnable("Beta")),
                     "chaos/broken.json": '{"title": "no method"}'},
                    "Add the experiments", author=ANN)
        repo.push()
        yield server, repo


def form(browser, path: str, **fields):
    return browser.post(path, data={"csrf_token": csrf(browser), **fields})


def link_form(browser, server, **extra):
    fields = {"url": server.url_for("chaos"), "branch": "main", "paths": "chaos/**/*.json\n",
              "credential": "token", "token": TOKEN, **extra}
    return form(browser, PAGE, **fields)


def run_sync(hub, browser, **fields) -> str:
    """Press a Sync button, do the worker's round; the sync page's path."""
    asked = form(browser, f"{PAGE}/sync", **fields)
    assert asked.status_code == 303
    with hub.app_context():
        assert git_sync.run_due() == 1
    return asked.headers["Location"]


def text(answer) -> str:
    return answer.get_data(as_text=True)


def test_linking_syncing_and_the_history(hub, alice, served):
    server, repo = served
    empty = alice.get(PAGE)
    assert empty.status_code == 200
    assert 'data-testid="no-link"' in text(empty)
    assert "Link the repository" in text(empty)

    made = link_form(alice, server)
    assert made.status_code == 201
    assert made.headers["Cache-Control"] == "no-store"
    page = text(made)
    secret = re.search(r'data-testid="webhook-secret" id="webhook-secret"', page) and \
        re.search(r'value="(ghsec_[^"]+)"', page).group(1)
    assert secret
    assert TOKEN not in page
    with hub.app_context(), transaction("experiment") as session:
        row = session.scalar(select(RepositoryLink))
        assert open_sealed(row.webhook_secret_sealed, context(row.id, "webhook")) == secret
        hook_path = f"/api/v1/hooks/git/{row.id}"
    assert f"http://localhost{hook_path}" in page

    again = text(alice.get(PAGE))
    assert secret not in again  # shown once
    assert TOKEN not in again
    assert server.url_for("chaos") in again
    assert "an access token (kept encrypted" in again
    assert 'data-testid="no-syncs"' in again

    sync_path = run_sync(hub, alice)
    assert sync_path.startswith(f"{PAGE}/syncs/")
    shown = text(alice.get(sync_path))
    assert "succeeded" in shown
    assert shown.count('data-testid="sync-file"') == 2  # Alpha and Beta created
    assert "Alpha" in shown and "Beta" in shown
    assert 'data-testid="invalid-path">chaos/broken.json<' in shown
    assert shown.count('data-testid="invalid-error"') >= 1
    assert repo.served_head()[:7] in shown

    history = text(alice.get(PAGE))
    assert history.count('data-testid="sync"') == 1
    assert "3 seen · 2 created · 0 updated · 0 removed · <strong>1 invalid</strong>" in history
    assert sync_path in history


def test_a_synced_experiment_is_read_only_on_its_pages(hub, alice, served):
    server, repo = served
    assert link_form(alice, server).status_code == 201
    run_sync(hub, alice)
    listing = alice.get("/api/v1/orgs/alice/workspaces/Personal/experiments").get_json()
    alpha = next(e for e in listing["experiments"] if e["title"] == "Alpha")
    base = f"/alice/Personal/experiment/{alpha['id']}"

    listed = text(alice.get("/alice/Personal"))
    assert listed.count('data-testid="listed-from-git"') == 2
    assert 'title="chaos/a.json" data-testid="listed-from-git"' in listed
    page = text(alice.get(base, headers={"Accept": "text/html"}))
    assert 'data-testid="git-source"' in page
    assert 'data-testid="git-path">chaos/a.json<' in page
    assert 'data-testid="git-branch">main<' in page
    assert server.url_for("chaos") in page
    assert 'data-testid="edit-link"' not in page and 'data-testid="delete-link"' not in page
    assert 'data-testid="move"' not in page
    assert f'title="{repo.served_head()}"' in page  # the version's commit
    assert "Ann Author &lt;ann@example.com&gt;" in page
    assert "removed upstream" not in page

    editor = text(alice.get(f"{base}/edit"))
    assert 'data-testid="document-readonly"' in editor
    assert 'data-testid="editor"' not in editor and "Save as version" not in editor
    refused = form(alice, f"{base}/edit", document=json.dumps(runnable("Changed")),
                   format="json", base_version="1", message="x")
    assert refused.status_code == 409
    assert "synced from" in text(refused)
    confirm = text(alice.get(f"{base}/delete"))
    assert "Delete the experiment" not in confirm and 'data-testid="git-source"' in confirm

    # The file removed upstream: the page says so, the experiment stays.
    repo.commit({"chaos/a.json": None}, "Drop a")
    repo.push()
    run_sync(hub, alice)
    page = text(alice.get(base, headers={"Accept": "text/html"}))
    assert 'data-testid="removed-upstream"' in page
    assert "Removed upstream:" in page
    assert 'data-testid="delete-link"' in page and 'data-testid="edit-link"' not in page
    assert "Delete the experiment" in text(alice.get(f"{base}/delete"))

    # Unlinked: the experiment is the hub's own again, editable.
    unlinked = form(alice, f"{PAGE}/unlink")
    assert unlinked.status_code == 303
    assert "Unlinked" in text(alice.get(unlinked.headers["Location"]))
    page = text(alice.get(base, headers={"Accept": "text/html"}))
    assert 'data-testid="git-source"' not in page and 'data-testid="edit-link"' in page


def test_the_deploy_key_shows_its_public_half_only(hub, alice, served):
    server, _ = served
    # With an https:// URL, refused beside the credential's choices: no use for a deploy key.
    refused = link_form(alice, server, credential="deploy_key", token="")
    assert refused.status_code == 422
    assert re.search(r'<legend>Credential</legend>\s*<span class="field-error">a deploy key '
                     r'goes with an ssh:// or git@host:path URL', text(refused)), text(refused)
    made = link_form(alice, server, credential="deploy_key", token="",
                     url="ssh://git@127.0.0.1/team/chaos.git")
    assert made.status_code == 201
    page = text(alice.get(PAGE))
    public = re.search(r'value="(ssh-ed25519 [^"]+)"', page).group(1)
    assert public.startswith("ssh-ed25519 ")
    with hub.app_context(), transaction("experiment") as session:
        row = session.scalar(select(RepositoryLink))
        private = open_sealed(row.credential_sealed, context(row.id, "deploy_key"))
    body = "".join(private.splitlines()[1:-1])
    assert "PRIVATE KEY" in private
    for shown in (text(made), page):
        assert "PRIVATE KEY" not in shown and body[:40] not in shown


def test_refusals_keep_the_form_but_not_the_token(hub, alice, served):
    server, _ = served
    bad = link_form(alice, server, url="ftp://example.com/x.git", token="typed-secret-1")
    assert bad.status_code == 422
    page = text(bad)
    assert 'role="alert"' in page
    assert "ftp://example.com/x.git" in page
    assert "typed-secret-1" not in page
    missing = link_form(alice, server, token="")
    assert missing.status_code == 422
    assert "type the access token" in text(missing)
    # Linked with a token, then a new URL with the token field left empty: asked for again,
    # never dropped without a word.
    assert link_form(alice, server).status_code == 201
    moved = link_form(alice, server, url=server.url_for("chaos") + "-moved", token="")
    assert moved.status_code == 422
    assert "type the access token for the new URL" in text(moved)
    # Said with whatever else is wrong, in one answer.
    both = link_form(alice, server, url="ftp://example.com/x.git", token="")
    assert both.status_code == 422
    assert "type the access token for the new URL" in text(both)
    assert "an https:// or ssh:// URL" in text(both)
    with hub.app_context(), transaction("experiment") as session:
        kept = session.scalar(select(RepositoryLink))
        assert (kept.url, kept.credential) == (server.url_for("chaos"), "token")
    assert link_form(alice, server, token="").status_code == 303  # same URL: the token kept
    unlink = form(alice, f"{PAGE}/unlink")
    assert unlink.status_code == 303
    # Nothing linked: the Sync button is refused with the reason, on the page.
    refused = form(alice, f"{PAGE}/sync")
    assert refused.status_code == 409
    assert "link one first" in text(refused)


def test_who_may_see_and_change_the_link(hub, alice, served):
    server, _ = served
    assert link_form(alice, server).status_code == 201
    bob = signed_up_client(hub, "bob")
    # Personal workspaces are private: another account sees nothing of it.
    assert bob.get(PAGE).status_code == 404
    assert form(bob, PAGE, url=server.url_for("chaos"), branch="main",
                paths="x/*.json").status_code == 404
    assert form(bob, f"{PAGE}/sync").status_code == 404
    assert form(bob, f"{PAGE}/unlink").status_code == 404
    visitor = hub.test_client()
    assert visitor.get(PAGE).status_code in (302, 401, 404)


def test_sync_and_run_what_changed_lists_the_runs_and_why(hub, alice, served):
    server, repo = served
    assert link_form(alice, server).status_code == 201
    run_sync(hub, alice)
    repo.commit({"chaos/b.json": json.dumps(runnable("Beta, stricter"))}, "Tighten Beta")
    repo.push()
    done = text(alice.get(run_sync(hub, alice, run="changed")))
    assert "to run what changed" in done
    assert done.count('data-testid="sync-run"') == 1
    assert 'data-testid="run-reason">file changed: chaos/b.json<' in done
    run_link = re.search(r'href="(/alice/Personal/experiment/[^"]+/run/[^"]+)" '
                         r'data-testid="run-link"', done).group(1)
    assert alice.get(run_link).status_code == 200
    assert 'data-testid="sync-updated"' in done and "Beta, stricter" in done
    history = text(alice.get(PAGE))
    assert history.count('data-testid="sync"') == 2
    assert re.search(r'data-testid="sync-runs">1<', history)


def test_members_sync_and_viewers_read_but_only_maintainers_change_the_link(hub, served):
    from chaoshub.dashboard import service as dashboard
    from tests.test_invitations import claim_for

    server, _ = served
    olga_client, mike, vic = (signed_up_client(hub, name) for name in ("olga", "mike", "vic"))
    with hub.app_context():
        olga = claim_for("olga")
        dashboard.create_org(olga, "team")
        dashboard.create_workspace(olga, "team", "alpha", "private")
        dashboard.add_member(olga, "team", "mike", "member")
        dashboard.add_member(olga, "team", "vic", "viewer")
    page = "/team/alpha/-/repository"
    made = form(olga_client, page, url=server.url_for("chaos"), branch="main",
                paths="chaos/*.json", credential="token", token=TOKEN)
    assert made.status_code == 201

    seen = text(mike.get(page))
    assert "Sync now" in seen and "Sync and run what changed" in seen
    assert 'data-testid="link-form"' not in seen and "Unlink the repository" not in seen
    refused = form(mike, page, url=server.url_for("chaos"), branch="dev", paths="x/*.json",
                   credential="none")
    assert refused.status_code == 403
    assert 'role="alert"' in text(refused)
    assert form(mike, f"{page}/unlink").status_code == 403
    assert form(mike, f"{page}/sync").status_code == 303

    read = text(vic.get(page))
    assert server.url_for("chaos") in read and 'data-testid="sync"' in read
    assert "Sync now" not in read and 'data-testid="link-form"' not in read
    assert form(vic, f"{page}/sync").status_code == 403
    with hub.app_context(), transaction("experiment") as session:
        assert session.scalar(select(RepositoryLink)).branch == "main"


def test_a_new_webhook_secret_shows_once_and_the_old_one_stops(hub, alice, served):
    server, _ = served
    first = re.search(r'value="(ghsec_[^"]+)"', text(link_form(alice, server))).group(1)
    kept = link_form(alice, server, credential="keep", token="")
    assert kept.status_code == 303 and kept.headers["Location"].endswith("?done=changed")
    assert "Saved." in text(alice.get(kept.headers["Location"]))
    rotated = link_form(alice, server, credential="keep", token="", rotate_webhook_secret="on")
    assert rotated.status_code == 200
    assert rotated.headers["Cache-Control"] == "no-store"
    page = text(rotated)
    assert "New webhook secret" in page
    second = re.search(r'value="(ghsec_[^"]+)"', page).group(1)
    assert second != first
    with hub.app_context(), transaction("experiment") as session:
        row = session.scalar(select(RepositoryLink))
        assert open_sealed(row.webhook_secret_sealed, context(row.id, "webhook")) == second
        assert row.credential == "token"  # kept
