"""Experiments from git, against what a repository's contributors or a careless link could
send: globs made to backtrack, files that are no files, paths that are not UTF-8, and the
cache folder's permissions."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import socket
import stat
import threading
from pathlib import Path
from urllib.parse import urlencode

import pytest
import yaml
from sqlalchemy import select

from chaoshub.core.db import transaction
from chaoshub.experiment import git_mirror, git_sync
from chaoshub.experiment.models import Run
from tests.conftest import csrf, post_json, signed_up_client
from tests.experiment_data import make_token
from tests.git_server import Repository, git
from tests.run_data import runnable
from tests.test_git_sync import WS, experiment_json, link, sync


@pytest.fixture
def hub(app, tmp_path):
    # The repositories are local (file://).
    app.config.update(ALLOW_PRIVATE_TARGETS=True, GIT_ALLOW_FILE_URLS=True,
                      GIT_CACHE_DIR=str(tmp_path / "git-cache"))
    return app


@pytest.fixture
def alice(hub):
    return signed_up_client(hub, "alice")


def test_globs_that_would_backtrack_match_at_once():
    # A depends_on glob comes from any commit to the repository; matched by a regular
    # expression, these took hours of the worker's sync thread.
    deep = "**/" * 20 + "x"
    assert not git_mirror.matches("a/" * 40 + "y", [deep])
    assert git_mirror.matches("a/" * 40 + "x", [deep])
    stars = "*a" * 30 + "b"
    assert not git_mirror.matches("a" * 200, [stars])
    assert git_mirror.matches("a" * 200 + "b", [stars])
    assert git_mirror.glob_problem("[z-a].json") == "not a valid glob"
    assert git_mirror.matches("chaos/x/a.json", ["chaos/**/[!b].json"])


def test_a_submodule_a_symlink_and_a_non_utf8_name_do_not_stop_a_sync(hub, alice, tmp_path):
    repo = Repository.create(tmp_path / "local", "chaos")
    repo.commit({"chaos/a.json": experiment_json("A")}, "A")
    env = repo.env()
    # A submodule (a commit, not a file, in the tree) and a symlink out of the repository,
    # both where the globs look, and a file whose name is not UTF-8.
    (repo.work / "chaos" / "passwd.json").symlink_to("/etc/passwd")
    os.makedirs(os.fsencode(repo.work / "chaos"), exist_ok=True)
    with open(os.fsencode(repo.work / "chaos") + b"/caf\xe9.json", "w") as out:
        out.write(experiment_json("Latin-1"))
    git("add", "-A", cwd=repo.work, env=env)
    git("update-index", "--add", "--cacheinfo", "160000," + "1" * 40 + ",chaos/vendor.json",
        cwd=repo.work, env=env)
    git("commit", "-q", "-m", "Odd entries", cwd=repo.work, env=env)
    repo.push()
    link(alice, repo.file_url)
    done = sync(hub, alice)
    assert done["status"] == "succeeded", done
    result = done["result"]
    assert [f["path"] for f in result["created"]] == ["chaos/a.json"]
    invalid = {f["path"]: f["errors"][0]["message"] for f in result["invalid"]}
    assert set(invalid) == {"chaos/vendor.json", "chaos/passwd.json", "chaos/caf\\xe9.json"}
    assert "not a file" in invalid["chaos/vendor.json"]
    assert "symbolic link" in invalid["chaos/passwd.json"]
    assert "UTF-8" in invalid["chaos/caf\\xe9.json"]
    assert "root:" not in json.dumps(done)


def test_the_cache_folder_is_the_hubs_alone(hub, alice, tmp_path):
    repo = Repository.create(tmp_path / "local", "chaos")
    repo.commit({"chaos/a.json": experiment_json("A")}, "A")
    repo.push()
    made = link(alice, repo.file_url)
    assert sync(hub, alice)["status"] == "succeeded"
    # Another account on the worker's machine reads no private repository's copy.
    cache = tmp_path / "git-cache"
    folder = cache / made["workspace_id"]
    assert (folder / "HEAD").exists()
    assert stat.S_IMODE(cache.stat().st_mode) & 0o077 == 0
    assert stat.S_IMODE(folder.stat().st_mode) & 0o077 == 0


def test_tokens_read_syncs_only_with_their_scope_and_workspace(hub, alice, tmp_path):
    repo = Repository.create(tmp_path / "local", "chaos")
    repo.commit({"chaos/a.json": experiment_json("A")}, "A")
    repo.push()
    link(alice, repo.file_url)
    done = sync(hub, alice)
    assert post_json(alice, "/api/v1/orgs/alice/workspaces",
                     {"name": "other", "visibility": "private"}).status_code == 201
    api = hub.test_client()

    def read(token: str) -> list[int]:
        auth = {"Authorization": f"Bearer {token}"}
        return [api.get(url, headers=auth).status_code for url in (
            f"/api/v1/syncs/{done['id']}", f"{WS}/syncs", f"{WS}/repository")]

    assert read(make_token(alice, ["experiments:read"])) == [200, 200, 200]
    # Without experiments:read, as the workspace's other readers answer.
    assert read(make_token(alice, ["audit:read"])) == [403, 403, 403]
    # Bound to another workspace: this one is not there for it.
    bound = post_json(alice, "/api/v1/tokens", {"name": "other", "scopes": ["experiments:read"],
                                                 "workspace": "alice/other"})
    assert bound.status_code == 201, bound.get_json()
    assert read(bound.get_json()["secret"]) == [404, 404, 404]


def test_a_github_push_sent_as_a_form_is_verified(hub, alice, tmp_path):
    repo = Repository.create(tmp_path / "local", "chaos")
    head = repo.commit({"chaos/a.json": experiment_json("A")}, "A")
    repo.push()
    made = link(alice, repo.file_url)
    # GitHub's default content type: the JSON in a `payload` field, signed as sent.
    body = urlencode({"payload": json.dumps({"ref": "refs/heads/main", "after": head})}).encode()
    signature = "sha256=" + hmac.new(made["webhook_secret"].encode(), body,
                                      hashlib.sha256).hexdigest()
    answer = hub.test_client().post(made["webhook_path"], data=body, headers={
        "X-Hub-Signature-256": signature, "X-GitHub-Event": "push",
        "X-GitHub-Delivery": "form-1", "Content-Type": "application/x-www-form-urlencoded"})
    assert answer.status_code == 202, answer.get_json()
    assert answer.get_json()["status"] == "queued"
    with hub.app_context():
        assert git_sync.run_due() == 1
    assert alice.get(f"/api/v1/syncs/{answer.get_json()['id']}").get_json()["status"] == \
        "succeeded"


def test_a_huge_commit_message_and_author_are_kept_short(hub, alice, tmp_path):
    repo = Repository.create(tmp_path / "local", "chaos")
    message = "Add A \u202e\U0001f4a5 " + "x" * 100_000
    repo.commit({"chaos/a.json": experiment_json("A")}, message,
                author=("\u00c5sa " + "n" * 5000, "asa@example.com"))
    repo.push()
    link(alice, repo.file_url)
    done = sync(hub, alice)
    assert done["status"] == "succeeded", done
    # Every answer about the sync carried the whole message and name before.
    assert done["commit"]["message"].startswith("Add A \u202e\U0001f4a5 x")
    assert len(done["commit"]["message"]) <= 2000 and len(done["commit"]["author"]) <= 600
    assert len(json.dumps(alice.get(f"{WS}/syncs").get_json())) < 10_000


def _processes_naming(text: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            line = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError):
            continue
        if text in line:
            found.append(line)
    return found


def test_a_fetch_past_its_time_limit_leaves_no_process_behind(hub, alice):
    # An ssh server that takes the connection and never says a word.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    port = listener.getsockname()[1]
    held = []
    thread = threading.Thread(target=lambda: held.append(listener.accept()), daemon=True)
    thread.start()
    try:
        link(alice, f"ssh://git@127.0.0.1:{port}/team/chaos.git", deploy_key=True)
        hub.config["GIT_TIMEOUT_SECONDS"] = 1
        done = sync(hub, alice)
        assert done["status"] == "failed" and "took longer than 1 s" in done["error"], done
        # git's ssh went with git (it lived on, connected, for as long as ssh cared before).
        assert _processes_naming(f"-p {port}") == []
    finally:
        listener.close()
        for connection, _ in held:
            connection.close()


def test_a_fetch_larger_than_the_limit_stops(hub, alice, tmp_path):
    repo = Repository.create(tmp_path / "local", "chaos")
    repo.commit({"chaos/a.json": experiment_json("A"), "assets/blob.bin": os.urandom(600_000)},
                "A and a large file")
    repo.push()
    link(alice, repo.file_url)
    hub.config["GIT_FETCH_MAX_BYTES"] = 300_000
    done = sync(hub, alice)
    assert done["status"] == "failed", done
    assert "larger than 300000 bytes" in done["error"] and "GIT_FETCH_MAX_BYTES" in done["error"]
    assert not list((tmp_path / "git-cache").rglob("*.pack"))
    hub.config["GIT_FETCH_MAX_BYTES"] = 2_000_000
    assert sync(hub, alice)["status"] == "succeeded"


def test_urls_whose_host_or_user_would_read_as_an_option_are_refused():
    for url in ("ssh://-oProxyCommand=touch%20x/team/chaos.git",
                "ssh://-oProxyCommand=x@git.example.com/chaos.git",
                "-oProxyCommand=x@git.example.com:team/chaos.git",
                "git@-oProxyCommand=x:team/chaos.git", "git@git.example.com:-u/chaos.git",
                "https://-h.example.com/x.git"):
        assert git_mirror.url_problem(url, True), url
    assert git_mirror.url_problem("ssh://git@git-1.example.com/team/chaos.git", True) is None
    assert git_mirror.url_problem("git@git-1.example.com:team/chaos.git", True) is None


def test_a_redelivered_push_syncs_again_after_its_sync_failed(hub, alice, tmp_path):
    repo = Repository.create(tmp_path / "local", "chaos")
    head = repo.commit({"chaos/a.json": experiment_json("A")}, "A")
    repo.push()
    made = link(alice, repo.file_url)
    body = json.dumps({"ref": "refs/heads/main", "after": head}).encode()
    headers = {"X-GitHub-Event": "push", "X-GitHub-Delivery": "d-1",
               "Content-Type": "application/json", "X-Hub-Signature-256": "sha256=" + hmac.new(
                   made["webhook_secret"].encode(), body, hashlib.sha256).hexdigest()}
    hook = hub.test_client()
    moved = repo.bare.rename(repo.bare.with_name("away.git"))  # the host is down
    first = hook.post(made["webhook_path"], data=body, headers=headers).get_json()
    with hub.app_context():
        assert git_sync.run_due() == 1
    assert alice.get(f"/api/v1/syncs/{first['id']}").get_json()["status"] == "failed"
    moved.rename(repo.bare)
    # GitHub's Redeliver sends the same delivery id: a failed sync is tried again.
    again = hook.post(made["webhook_path"], data=body, headers=headers)
    assert again.status_code == 202 and again.get_json()["status"] == "queued"
    assert again.get_json()["id"] != first["id"]
    assert hook.post(made["webhook_path"], data=body,
                     headers=headers).get_json()["id"] == again.get_json()["id"]
    with hub.app_context():
        assert git_sync.run_due() == 1
    assert alice.get(f"/api/v1/syncs/{again.get_json()['id']}").get_json()["status"] == \
        "succeeded"


def test_file_urls_need_a_setting_of_their_own(hub, alice, tmp_path):
    repo = Repository.create(tmp_path / "local", "chaos")
    repo.commit({"chaos/a.json": experiment_json("A")}, "A")
    repo.push()
    made = link(alice, repo.file_url)
    assert sync(hub, alice)["status"] == "succeeded"
    # A hub that allows private targets (its webhooks reach in-house hosts) gives no one the
    # worker's own disk: another workspace's cached repository, say.
    hub.config["GIT_ALLOW_FILE_URLS"] = False
    cached = (tmp_path / "git-cache" / made["workspace_id"]).as_uri()
    refused = alice.put(f"{WS}/repository", json={"url": cached, "paths": ["**"]},
                        headers={"X-CSRF-Token": csrf(alice)})
    assert refused.status_code == 422, refused.get_json()
    assert [d["pointer"] for d in refused.get_json()["details"]] == ["/url"]
    # One linked before fetches no more.
    repo.commit({"chaos/a.json": experiment_json("A2")}, "A2")
    repo.push()
    done = sync(hub, alice)
    assert done["status"] == "failed" and "file" in done["error"], done


def test_files_that_expand_nest_or_hold_what_json_cannot_are_reported(hub, alice, tmp_path):
    laughs = "a: &a [" + ", ".join(["x"] * 10) + "]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 10) + "]\n"
        for i in range(8))
    dated = yaml.safe_dump(runnable("Dated")) + "tags: [2024-01-31]\n"
    repo = Repository.create(tmp_path / "local", "chaos")
    repo.commit({"chaos/laughs.yaml": laughs, "chaos/deep.json": "[" * 5000 + "]" * 5000,
                 "chaos/nul.json": experiment_json("Has \u0000 NUL"),
                 "chaos/nan.json": experiment_json("A").replace('"title"', '"x": NaN, "title"'),
                 "chaos/dated.yaml": dated, "chaos/ok.json": experiment_json("OK")}, "Odd files")
    repo.push()
    link(alice, repo.file_url)
    done = sync(hub, alice)
    # One such file failed the whole sync (or kept the worker busy) before.
    assert done["status"] == "succeeded", done
    result = done["result"]
    assert sorted(f["path"] for f in result["created"]) == ["chaos/dated.yaml", "chaos/ok.json"]
    invalid = {f["path"]: f["errors"][0]["message"] for f in result["invalid"]}
    assert set(invalid) == {"chaos/laughs.yaml", "chaos/deep.json", "chaos/nul.json",
                            "chaos/nan.json"}, invalid
    assert "aliases" in invalid["chaos/laughs.yaml"]


def test_runs_asked_of_a_waiting_sync_start_as_the_one_who_asked(hub, tmp_path):
    from chaoshub.dashboard import service as dashboard
    from tests.test_invitations import claim_for

    olga, mike = (signed_up_client(hub, name) for name in ("olga", "mike"))
    with hub.app_context():
        dashboard.create_org(claim_for("olga"), "team")
        dashboard.create_workspace(claim_for("olga"), "team", "alpha", "private")
        dashboard.add_member(claim_for("olga"), "team", "mike", "member")
    place = "/api/v1/orgs/team/workspaces/alpha"
    repo = Repository.create(tmp_path / "local", "chaos")
    head = repo.commit({"chaos/a.json": experiment_json("A")}, "A")
    repo.push()
    made = olga.put(f"{place}/repository", json={"url": repo.file_url, "paths": ["chaos/*.json"]},
                    headers={"X-CSRF-Token": csrf(olga)}).get_json()
    # Mike asks for a sync, no runs; before a worker takes it, a push webhook asks to run what
    # changed: the runs are the webhook's (as the link's maker), never started in Mike's name.
    asked = post_json(mike, f"{place}/sync", None).get_json()
    body = json.dumps({"ref": "refs/heads/main", "after": head}).encode()
    hooked = hub.test_client().post(made["webhook_path"] + "?run=changed", data=body, headers={
        "X-GitHub-Event": "push", "X-GitHub-Delivery": "p-1", "Content-Type": "application/json",
        "X-Hub-Signature-256": "sha256=" + hmac.new(made["webhook_secret"].encode(), body,
                                                    hashlib.sha256).hexdigest()})
    assert hooked.get_json()["id"] == asked["id"]
    with hub.app_context():
        assert git_sync.run_due() == 1
    done = mike.get(f"/api/v1/syncs/{asked['id']}").get_json()
    assert done["status"] == "succeeded" and len(done["result"]["runs"]) == 1, done
    assert done["requested_by_name"] == "olga"
    with hub.app_context(), transaction("experiment") as session:
        assert [r.created_by_name for r in session.scalars(select(Run))] == ["olga"]
