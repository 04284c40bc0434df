"""Experiments from git in a real Chromium, against `chaoshub run` (its embedded worker does the
syncs) and a repository served by git http-backend on 127.0.0.1 behind a token: linked from
the Repository page, synced with its button, the imported experiments and the invalid file in
the history, the synced experiment read only, and a deploy key whose private half never shows."""

from __future__ import annotations

import json
import re

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

from tests.git_server import Repository, git_http_server
from tests.helpers import running_hub, sign_in_browser, signed_in_session
from tests.run_data import runnable

pytestmark = pytest.mark.e2e
TOKEN = "gh-browser-token-Vb72"
ANN = ("Ann Author", "ann@example.com")


def serious(page) -> list[str]:
    """axe-core's serious and critical violations on the page."""
    found = Axe().run(page).response["violations"]
    return [f"{v['id']}: {v['help']}" for v in found if v["impact"] in ("serious", "critical")]


def test_linking_syncing_and_reading_experiments_from_git(page, tmp_path):
    with git_http_server(tmp_path / "served", token=TOKEN) as server, \
            running_hub(tmp_path, ALLOW_PRIVATE_TARGETS="true",
                        GIT_SYNC_POLL_SECONDS="0.2") as url:
        repo = Repository.create(server.root, "chaos")
        head = repo.commit({
            "chaos/latency.json": json.dumps(runnable("Latency stays low"), indent=2),
            "chaos/pods/restart.json": json.dumps(runnable("Pods come back"), indent=2),
            "chaos/broken.json": '{"title": "A plan without a method"}\n',
            "README.md": "not an experiment\n",
        }, "Add the team's experiments", author=ANN)
        repo.push()
        signed_in_session(url, "alice")
        sign_in_browser(page, url, "alice")

        page.goto(f"{url}/alice/Personal/-/settings")
        page.get_by_role("link", name="Repository", exact=True).click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Repository")
        expect(page.get_by_test_id("no-link")).to_be_visible()
        page.get_by_label("Repository URL").fill(server.url_for("chaos"))
        page.get_by_label("Branch").fill("main")
        page.get_by_label("Experiment files").fill("chaos/**/*.json")
        page.get_by_label("An access token", exact=True).check()
        page.get_by_label("Access token", exact=True).fill(TOKEN)
        page.get_by_role("button", name="Link the repository").click()

        expect(page.get_by_role("heading", name="Repository linked")).to_be_visible()
        secret = page.get_by_label("Webhook secret", exact=True).input_value()
        assert secret.startswith("ghsec_")
        expect(page.get_by_test_id("webhook-url")).to_contain_text(f"{url}/api/v1/hooks/git/")
        assert TOKEN not in page.content()
        assert serious(page) == []

        page.get_by_role("button", name="Sync now").click()
        page.wait_for_url(re.compile(r".*/-/repository/syncs/[^/]+$"))
        # The page looks again by itself until the worker is done.
        expect(page.get_by_test_id("sync-status").first).to_have_text("succeeded",
                                                                        timeout=30_000)
        created = page.get_by_test_id("sync-created")
        expect(created.get_by_test_id("sync-file")).to_have_count(2)
        expect(created).to_contain_text("Latency stays low")
        expect(created).to_contain_text("chaos/pods/restart.json")
        invalid = page.get_by_test_id("invalid-file")
        expect(invalid).to_have_count(1)
        expect(invalid.get_by_test_id("invalid-path")).to_have_text("chaos/broken.json")
        expect(invalid.get_by_test_id("invalid-error").first).to_be_visible()
        expect(page.get_by_test_id("sync-commits")).to_contain_text(head[:7])
        assert serious(page) == []

        page.get_by_role("link", name="Back to the repository").click()
        history = page.get_by_test_id("sync")
        expect(history).to_have_count(1)
        expect(history.get_by_test_id("sync-counts")).to_have_text(
            "3 seen · 2 created · 0 updated · 0 removed · 1 invalid")
        expect(page.get_by_test_id("webhook-secret")).to_have_count(0)  # shown once
        assert secret not in page.content()

        # The synced experiment: where it comes from, and nothing that would edit it.
        page.goto(f"{url}/alice/Personal")
        page.get_by_test_id("experiments").get_by_role("link", name="Latency stays low").click()
        notice = page.get_by_test_id("git-source")
        expect(notice).to_contain_text("This experiment comes from git")
        expect(notice.get_by_test_id("git-path")).to_have_text("chaos/latency.json")
        expect(notice.get_by_test_id("git-branch")).to_have_text("main")
        expect(notice.get_by_test_id("git-repository")).to_have_text(server.url_for("chaos"))
        expect(page.get_by_test_id("version-commit")).to_have_text(head[:12])
        expect(page.get_by_test_id("edit-link")).to_have_count(0)
        expect(page.get_by_test_id("delete-link")).to_have_count(0)
        assert serious(page) == []
        page.goto(page.url + "/edit")
        expect(page.get_by_test_id("document-readonly")).to_contain_text("Latency stays low")
        expect(page.get_by_role("button", name=re.compile("Save"))).to_have_count(0)
        expect(page.get_by_test_id("git-source")).to_be_visible()

        # A deploy key instead of the token: its public half to copy, never the private one.
        page.goto(f"{url}/alice/Personal/-/repository")
        page.get_by_label("Repository URL").fill("ssh://git@127.0.0.1:2222/team/chaos.git")
        page.get_by_label(re.compile("A deploy key the hub makes")).check()
        page.get_by_role("button", name="Save the link").click()
        expect(page.get_by_role("status")).to_have_text("Saved.")
        public = page.get_by_test_id("deploy-public-key").input_value()
        assert public.startswith("ssh-ed25519 ")
        expect(page.get_by_test_id("link-credential")).to_contain_text("deploy key")
        expect(page.get_by_test_id("link-url")).to_have_text(
            "ssh://git@127.0.0.1:2222/team/chaos.git")
        content = page.content()
        assert "PRIVATE KEY" not in content and TOKEN not in content
        expect(page.get_by_test_id("sync")).to_have_count(1)
