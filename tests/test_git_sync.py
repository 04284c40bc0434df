"""Experiments from git: a workspace linked to real repositories (made with `git init`, served
by `git http-backend` on 127.0.0.1 behind a token check), synced by the worker's round, what
changed run, push webhooks verified and deduplicated, and credentials never shown."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import subprocess
import tempfile

import pytest
import yaml
from sqlalchemy import select

from chaoshub.core.db import transaction
from chaoshub.experiment import git_mirror, git_sync, repository_links
from chaoshub.experiment.models import Experiment, ExperimentVersion, RepositoryLink, Run
from tests.conftest import csrf, post_json, signed_up_client, unavailable
from tests.git_server import Repository, git_http_server, ssh_server
from tests.run_data import runnable, wait_for

WS = "/api/v1/orgs/alice/workspaces/Personal"
TOKEN = "glpat-s3cret-token-value-1234"
PATHS = ["chaos/**/*.json", "chaos/**/*.yaml"]
ANN = ("Ann Author", "ann@example.com")


@pytest.fixture
def hub(app, tmp_path):
    # The test's git server listens on loopback.
    # Some use local repositories (file://), a setting of tests only.
    app.config.update(ALLOW_PRIVATE_TARGETS=True, GIT_ALLOW_FILE_URLS=True,
                      GIT_CACHE_DIR=str(tmp_path / "git-cache"))
    return app


@pytest.fixture
def alice(hub):
    return signed_up_client(hub, "alice")


@pytest.fixture
def server(tmp_path):
    with git_http_server(tmp_path / "served", token=TOKEN) as found:
        yield found


def experiment_json(title: str, **extra) -> str:
    return json.dumps(runnable(title, **extra), indent=2)


def depends_on(*globs: str) -> dict:
    return {"extensions": [{"name": "chaoshub", "depends_on": list(globs)}]}


def first_commit(repo: Repository) -> str:
    """Three experiments (one in YAML, one depending on the payments manifests), and files
    that are not experiments."""
    sha = repo.commit({
        "chaos/a.json": experiment_json("A"),
        "chaos/b.yaml": yaml.safe_dump(runnable("B", **depends_on("k8s/payments/**"))),
        "chaos/deep/c.json": experiment_json("C"),
        "k8s/payments/deploy.yaml": "kind: Deployment\n",
        "README.md": "experiments\n",
    }, "Add three experiments", author=ANN)
    repo.push()
    return sha


def link(browser, url: str, **extra) -> dict:
    body = {"url": url, "branch": "main", "paths": PATHS, **extra}
    answer = browser.put(f"{WS}/repository", json=body, headers={"X-CSRF-Token": csrf(browser)})
    assert answer.status_code in (200, 201), answer.get_json()
    return answer.get_json()


def sync(hub, browser, run: str = "") -> dict:
    """Ask for a sync, do the worker's round, and answer the sync as the API shows it."""
    asked = post_json(browser, f"{WS}/sync" + (f"?run={run}" if run else ""), None)
    assert asked.status_code == 202, asked.get_json()
    assert asked.get_json()["status"] == "queued"
    with hub.app_context():
        assert git_sync.run_due() == 1
    return browser.get(f"/api/v1/syncs/{asked.get_json()['id']}").get_json()


def by_path(hub) -> dict[str, Experiment]:
    with hub.app_context(), transaction("experiment") as session:
        rows = list(session.scalars(select(Experiment).where(
            Experiment.source_path.is_not(None))))
        session.expunge_all()
    return {row.source_path: row for row in rows}


def versions_of(hub, experiment_id: str) -> list[ExperimentVersion]:
    with hub.app_context(), transaction("experiment") as session:
        rows = list(session.scalars(select(ExperimentVersion).where(
            ExperimentVersion.experiment_id == experiment_id)
            .order_by(ExperimentVersion.number)))
        session.expunge_all()
    return rows


def hub_runs(hub) -> list[Run]:
    with hub.app_context(), transaction("experiment") as session:
        rows = list(session.scalars(select(Run).where(Run.origin == "hub")))
        session.expunge_all()
    return rows


def test_a_workspace_syncs_its_repository_and_runs_what_changed(hub, alice, server):
    repo = Repository.create(server.root, "chaos")
    first = first_commit(repo)
    made = link(alice, server.url_for("chaos"), token=TOKEN)
    assert made["created"] and made["credential"] == "token"
    assert made["webhook_secret"] and TOKEN not in json.dumps(made)
    shown = alice.get(f"{WS}/repository").get_json()
    assert shown["url"] == server.url_for("chaos") and "webhook_secret" not in shown
    assert TOKEN not in json.dumps(shown)

    # The first sync imports the three experiments, each at the commit that made it.
    done = sync(hub, alice)
    assert done["status"] == "succeeded", done
    assert done["from_commit"] is None and done["to_commit"] == first
    result = done["result"]
    assert sorted(f["path"] for f in result["created"]) == \
        ["chaos/a.json", "chaos/b.yaml", "chaos/deep/c.json"]
    assert result["files_seen"] == 3 and result["invalid"] == [] and result["runs"] == []
    assert done["commit"]["author"] == "Ann Author <ann@example.com>"
    found = by_path(hub)
    assert {p: e.title for p, e in found.items()} == {
        "chaos/a.json": "A", "chaos/b.yaml": "B", "chaos/deep/c.json": "C"}
    version = versions_of(hub, found["chaos/a.json"].id)[0]
    assert (version.commit_sha, version.commit_author, version.message) == \
        (first, "Ann Author <ann@example.com>", "Add three experiments")
    # The API says where it comes from, and refuses to change it on the hub.
    a_id = found["chaos/a.json"].id
    view = alice.get(f"/api/v1/experiments/{a_id}").get_json()
    assert view["source"] == {"repository": server.url_for("chaos"), "path": "chaos/a.json",
                              "commit": first, "removed_upstream": False}
    edit = alice.put(f"/api/v1/experiments/{a_id}", json=runnable("A edited"),
                     headers={"X-CSRF-Token": csrf(alice)})
    assert edit.status_code == 409 and "chaos/a.json" in edit.get_json()["message"]
    gone = alice.delete(f"/api/v1/experiments/{a_id}", headers={"X-CSRF-Token": csrf(alice)})
    assert gone.status_code == 409
    assert len(versions_of(hub, a_id)) == 1

    # One commit changes A, another the manifests B depends on: exactly two new versions (B's
    # of the same document, recording the commit that changed its dependency) and two runs.
    changed = repo.commit({"chaos/a.json": experiment_json("A, now stricter")},
                          "Tighten A", author=("Bob", "bob@example.com"))
    scaled = repo.commit({"k8s/payments/deploy.yaml": "kind: Deployment\nreplicas: 3\n"},
                         "Scale payments", author=("Cy Ops", "cy@example.com"))
    repo.commit({"README.md": "experiments, and more\n"}, "Words")
    repo.push()
    done = sync(hub, alice, run="changed")
    assert done["status"] == "succeeded", done
    assert (done["from_commit"], done["to_commit"]) == (first, repo.head())
    result = done["result"]
    b_id = found["chaos/b.yaml"].id
    dependency = "dependency k8s/payments/** changed: k8s/payments/deploy.yaml"
    assert {f["path"]: (f["experiment_id"], f["version"], f["reason"])
            for f in result["updated"]} == {
        "chaos/a.json": (a_id, 2, "file changed: chaos/a.json"),
        "chaos/b.yaml": (b_id, 2, dependency)}
    assert result["created"] == [] and result["removed"] == []
    new_versions = sorted((v for e in by_path(hub).values() for v in versions_of(hub, e.id)
                           if v.number > 1), key=lambda v: v.experiment_id != a_id)
    assert [(v.experiment_id, v.number, v.commit_sha, v.commit_author, v.message)
            for v in new_versions] == [
        (a_id, 2, changed, "Bob <bob@example.com>", "Tighten A"),
        (b_id, 2, scaled, "Cy Ops <cy@example.com>",
         "Dependency k8s/payments/** changed (k8s/payments/deploy.yaml): Scale payments")]
    # B's new version is its document unchanged: the diff says so, the version says why.
    b_versions = versions_of(hub, b_id)
    assert b_versions[1].document == b_versions[0].document
    assert b_versions[1].content_hash == b_versions[0].content_hash
    diffed = alice.get(f"/api/v1/experiments/{b_id}/diff?from=1&to=2").get_json()
    assert diffed["identical"] is True
    reasons = {r["path"]: r["reason"] for r in result["runs"]}
    assert reasons == {"chaos/a.json": "file changed: chaos/a.json", "chaos/b.yaml": dependency}
    assert all(r["run_id"] and r["refused"] is None for r in result["runs"])
    runs = hub_runs(hub)
    assert sorted((r.experiment_id, r.version, r.status) for r in runs) == sorted(
        [(a_id, 2, "queued"), (b_id, 2, "queued")])
    assert {r.id for r in runs} == {r["run_id"] for r in result["runs"]}
    assert by_path(hub)["chaos/b.yaml"].version == 2
    feed = alice.get("/api/v1/orgs/alice/activity").get_json()
    assert "experiment.dependency_changed" in {e["kind"] for e in feed["entries"]}

    # The history lists both syncs, newest first; the feed and audit log tell of them.
    history = alice.get(f"{WS}/syncs").get_json()["syncs"]
    assert [s["to_commit"] for s in history] == [repo.head(), first]
    feed = json.dumps(alice.get("/api/v1/orgs/alice/activity").get_json())
    assert "repository.synced" in feed and TOKEN not in feed
    audit = alice.get("/api/v1/orgs/alice/audit").get_json()["entries"]
    assert {"repository.linked", "repository.synced"} <= {e["event"] for e in audit}
    assert TOKEN not in json.dumps(audit)


def test_invalid_files_are_reported_and_removed_ones_marked(hub, alice, server):
    repo = Repository.create(server.root, "chaos")
    first_commit(repo)
    link(alice, server.url_for("chaos"), token=TOKEN)
    # Asked twice while it waits: one sync.
    asked = [post_json(alice, f"{WS}/sync", None).get_json()["id"] for _ in range(2)]
    assert asked[0] == asked[1]
    with hub.app_context():
        assert git_sync.run_due() == 1
    repo.commit({"chaos/broken.json": "{not json",
                 "chaos/wrong.yaml": yaml.safe_dump({"title": "No method"}),
                 "chaos/d.json": experiment_json("D"),
                 "chaos/deep/c.json": None}, "Mixed bag")
    repo.push()
    done = sync(hub, alice)
    assert done["status"] == "succeeded", done
    result = done["result"]
    invalid = {f["path"]: f["errors"] for f in result["invalid"]}
    assert set(invalid) == {"chaos/broken.json", "chaos/wrong.yaml"}
    assert "not valid JSON or YAML" in invalid["chaos/broken.json"][0]["message"]
    assert invalid["chaos/wrong.yaml"] and all("pointer" in e for e in invalid["chaos/wrong.yaml"])
    assert [f["path"] for f in result["created"]] == ["chaos/d.json"]
    assert [f["path"] for f in result["removed"]] == ["chaos/deep/c.json"]
    found = by_path(hub)
    assert "chaos/broken.json" not in found and found["chaos/deep/c.json"].removed_upstream
    c_view = alice.get(f"/api/v1/experiments/{found['chaos/deep/c.json'].id}").get_json()
    assert c_view["source"]["removed_upstream"] is True

    # Back upstream: marked no more, the same experiment.
    repo.commit({"chaos/deep/c.json": experiment_json("C")}, "C is back")
    repo.push()
    result = sync(hub, alice)["result"]
    assert [f["path"] for f in result["restored"]] == ["chaos/deep/c.json"]
    assert not by_path(hub)["chaos/deep/c.json"].removed_upstream
    assert by_path(hub)["chaos/deep/c.json"].id == found["chaos/deep/c.json"].id

    # One removed upstream may be deleted on the hub (its file is gone: nowhere else to).
    repo.commit({"chaos/a.json": None}, "No more A")
    repo.push()
    a_id = by_path(hub)["chaos/a.json"].id
    assert sync(hub, alice)["result"]["removed"][0]["experiment_id"] == a_id
    deleted = alice.delete(f"/api/v1/experiments/{a_id}", headers={"X-CSRF-Token": csrf(alice)})
    assert deleted.status_code == 204 and "chaos/a.json" not in by_path(hub)

    # While the org's kill switch is engaged, what changed is synced and its runs refused.
    engaged = post_json(alice, "/api/v1/orgs/alice/kill-switch",
                        {"engaged": True, "reason": "prod is on fire"})
    assert engaged.status_code == 200, engaged.get_json()
    repo.commit({"chaos/d.json": experiment_json("D2")}, "D2")
    repo.push()
    done = sync(hub, alice, run="changed")
    assert done["status"] == "succeeded" and [f["path"] for f in done["result"]["updated"]] \
        == ["chaos/d.json"]
    [refused] = done["result"]["runs"]
    assert refused["run_id"] is None and "prod is on fire" in refused["refused"]
    assert hub_runs(hub) == []


def test_a_forced_push_still_syncs(hub, alice, server):
    repo = Repository.create(server.root, "chaos")
    first_commit(repo)
    link(alice, server.url_for("chaos"), token=TOKEN)
    sync(hub, alice)
    repo.commit({"chaos/a.json": experiment_json("A2")}, "A2")
    repo.push()
    before = sync(hub, alice)["to_commit"]
    # History rewritten: the synced commit is no ancestor of the new head.
    rewritten = repo.rewrite(1, {"chaos/a.json": experiment_json("A rewritten"),
                                 "chaos/b.yaml": None}, "Rewritten history")
    done = sync(hub, alice)
    assert done["status"] == "succeeded", done
    assert (done["from_commit"], done["to_commit"]) == (before, rewritten)
    result = done["result"]
    assert [f["path"] for f in result["updated"]] == ["chaos/a.json"]
    assert [f["path"] for f in result["removed"]] == ["chaos/b.yaml"]
    assert by_path(hub)["chaos/a.json"].title == "A rewritten"


def test_webhooks_are_verified_and_a_delivery_syncs_once(hub, alice, server):
    repo = Repository.create(server.root, "chaos")
    head = first_commit(repo)
    made = link(alice, server.url_for("chaos"), token=TOKEN)
    secret, path = made["webhook_secret"], made["webhook_path"]
    hook = hub.test_client()  # the repository's host: no sign-in, no cookie
    body = json.dumps({"ref": "refs/heads/main", "after": head}).encode()

    def deliver(data: bytes, delivery: str, signature: str | None = None, **headers):
        sent = {"X-GitHub-Event": "push", "X-GitHub-Delivery": delivery,
                "Content-Type": "application/json", **headers}
        if signature is not None:
            sent["X-Hub-Signature-256"] = signature
        return hook.post(path + "?run=changed", data=data, headers=sent)

    signed = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    wrong = "sha256=" + hmac.new(b"not the secret", body, hashlib.sha256).hexdigest()
    assert deliver(body, "d-0", wrong).status_code == 401
    assert deliver(body, "d-0").status_code == 401  # unsigned
    assert hook.post(path, data=body, headers={"X-Gitlab-Event": "Push Hook",
                                               "X-Gitlab-Token": "nope"}).status_code == 401
    with hub.app_context():
        assert git_sync.run_due() == 0
    assert alice.get(f"{WS}/syncs").get_json()["syncs"] == []

    # Another branch: ignored.
    other = json.dumps({"ref": "refs/heads/feature", "after": head}).encode()
    ignored = deliver(other, "d-1", "sha256=" + hmac.new(secret.encode(), other,
                                                         hashlib.sha256).hexdigest())
    assert ignored.status_code == 202 and ignored.get_json()["status"] == "ignored"
    # Signed, but nested past what the JSON parser recurses into: ignored, never a 500.
    deep = b"[" * 20_000 + b"]" * 20_000
    nested = deliver(deep, "d-deep", "sha256=" + hmac.new(secret.encode(), deep,
                                                          hashlib.sha256).hexdigest())
    assert nested.status_code == 202 and nested.get_json()["status"] == "ignored"

    # The same delivery twice (and again under another id, the same head): one sync.
    first = deliver(body, "d-2", signed)
    again = deliver(body, "d-2", signed)
    retried = deliver(body, "d-3", signed)
    assert first.status_code == again.status_code == retried.status_code == 202
    assert first.get_json()["id"] == again.get_json()["id"] == retried.get_json()["id"]
    with hub.app_context():
        assert git_sync.run_due() == 1
        assert git_sync.run_due() == 0
    done = alice.get(f"/api/v1/syncs/{first.get_json()['id']}").get_json()
    assert done["status"] == "succeeded" and done["trigger"] == "webhook"
    assert len(done["result"]["created"]) == 3 and len(done["result"]["runs"]) == 3
    assert deliver(body, "d-2", signed).get_json()["id"] == first.get_json()["id"]
    late = deliver(body, "d-4", signed)  # that head is synced already
    assert late.status_code == 202 and late.get_json()["status"] == "ignored"
    assert len(alice.get(f"{WS}/syncs").get_json()["syncs"]) == 1

    # GitLab's token header, for a new push.
    repo.commit({"chaos/a.json": experiment_json("A via GitLab")}, "GitLab push")
    repo.push()
    pushed = json.dumps({"ref": "refs/heads/main", "after": repo.head()}).encode()
    answer = hook.post(path, data=pushed, headers={"X-Gitlab-Event": "Push Hook",
                                                   "X-Gitlab-Token": secret,
                                                   "X-Gitlab-Event-UUID": "g-1"})
    assert answer.status_code == 202 and answer.get_json()["status"] == "queued"
    with hub.app_context():
        assert git_sync.run_due() == 1
    assert by_path(hub)["chaos/a.json"].title == "A via GitLab"


def test_credentials_never_show(hub, alice, server, caplog):
    caplog.set_level(logging.DEBUG)
    repo = Repository.create(server.root, "chaos")
    first_commit(repo)
    answers = []
    made = link(alice, "ssh://git@127.0.0.1:9/team/chaos.git", deploy_key=True)
    answers.append(json.dumps(made))
    assert made["credential"] == "deploy_key"
    assert made["deploy_public_key"].startswith("ssh-ed25519 ")
    with hub.app_context(), transaction("experiment") as session:
        row = session.get(RepositoryLink, made["id"])
        private = repository_links.access_of(row).deploy_key
        assert TOKEN not in (row.credential_sealed or "") and private not in str(row.__dict__)
    assert private.startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    key_body = private.splitlines()[1]
    # The same link, a wrong token: the sync fails, saying so without the token.
    made = link(alice, server.url_for("chaos"), token=TOKEN + "-wrong")
    answers.append(json.dumps(made))
    failed = sync(hub, alice)
    answers.append(json.dumps(failed))
    assert failed["status"] == "failed" and "Authentication failed" in failed["error"]
    # Over ssh the deploy key goes to ssh in a file of its own; a host that is not there fails
    # the sync, saying so without the key.
    made = link(alice, "ssh://git@127.0.0.1:9/team/chaos.git", deploy_key=True)
    answers.append(json.dumps(made))
    failed = sync(hub, alice)
    answers.append(json.dumps(failed))
    assert failed["status"] == "failed" and "git fetch failed" in failed["error"], failed
    answers += [json.dumps(alice.get(f"{WS}/repository").get_json()),
                json.dumps(alice.get(f"{WS}/syncs").get_json()),
                json.dumps(alice.get("/api/v1/orgs/alice/activity").get_json()),
                json.dumps(alice.get("/api/v1/orgs/alice/audit").get_json())]
    everything = "\n".join(answers) + caplog.text
    assert TOKEN not in everything and "-wrong" not in everything
    assert key_body not in everything and "PRIVATE KEY" not in everything
    # A token in a URL is refused outright.
    bad = alice.put(f"{WS}/repository", json={"url": server.url_for("chaos", token=TOKEN),
                                              "paths": PATHS},
                    headers={"X-CSRF-Token": csrf(alice)})
    assert bad.status_code == 422 and TOKEN not in bad.get_data(as_text=True)


def test_who_may_link_and_what_urls(hub, alice):
    bob = signed_up_client(hub, "bob")
    body = {"url": "https://git.example.com/team/chaos.git", "paths": PATHS}
    assert bob.put(f"{WS}/repository", json=body,
                   headers={"X-CSRF-Token": csrf(bob)}).status_code == 404
    assert bob.get(f"{WS}/repository").status_code == 404
    assert post_json(bob, f"{WS}/sync", None).status_code == 404  # not there for him, as above
    assert post_json(alice, f"{WS}/sync", None).status_code == 409  # nothing linked
    hub.config.update(ALLOW_PRIVATE_TARGETS=False, GIT_ALLOW_FILE_URLS=False)
    for url in ("http://git.example.com/x.git", "file:///tmp/x.git", "ext::sh -c id",
                "https://127.0.0.1/x.git", "https://169.254.169.254/x.git", "-u/x"):
        answer = alice.put(f"{WS}/repository", json={**body, "url": url},
                           headers={"X-CSRF-Token": csrf(alice)})
        assert answer.status_code == 422, url
    for bad in ({"branch": "-x"}, {"branch": "a..b"}, {"paths": []}, {"paths": ["/abs"]}):
        answer = alice.put(f"{WS}/repository", json={**body, **bad},
                           headers={"X-CSRF-Token": csrf(alice)})
        assert answer.status_code == 422, bad
    made = alice.put(f"{WS}/repository", json={**body, "url": "git@github.com:team/chaos.git"},
                     headers={"X-CSRF-Token": csrf(alice)})
    assert made.status_code == 201, made.get_json()
    rotated = alice.put(f"{WS}/repository", json={**body, "rotate_webhook_secret": True},
                        headers={"X-CSRF-Token": csrf(alice)})
    assert rotated.status_code == 200
    assert rotated.get_json()["webhook_secret"] not in (None, made.get_json()["webhook_secret"])
    assert alice.delete(f"{WS}/repository",
                        headers={"X-CSRF-Token": csrf(alice)}).status_code == 204
    assert alice.get(f"{WS}/repository").status_code == 404


def test_a_credential_its_url_cannot_use_is_refused(hub, alice):
    body = {"branch": "main", "paths": PATHS}
    for url, credential, field, says in (
            ("https://git.example.com/team/chaos.git", {"deploy_key": True}, "/deploy_key",
             "a deploy key goes with an ssh:// or git@host:path URL"),
            ("http://127.0.0.1/team/chaos.git", {"deploy_key": True}, "/deploy_key",
             "a deploy key goes with an ssh:// or git@host:path URL"),
            ("ssh://git@git.example.com/team/chaos.git", {"token": TOKEN}, "/token",
             "an access token goes with an https:// URL"),
            ("git@git.example.com:team/chaos.git", {"token": TOKEN}, "/token",
             "an access token goes with an https:// URL")):
        refused = alice.put(f"{WS}/repository", json={**body, "url": url, **credential},
                            headers={"X-CSRF-Token": csrf(alice)})
        assert refused.status_code == 422, (url, refused.get_json())
        details = refused.get_json()["details"]
        assert [d["pointer"] for d in details] == [field], details
        assert says in details[0]["message"] and TOKEN not in refused.get_data(as_text=True)
    assert alice.get(f"{WS}/repository").status_code == 404  # nothing half-made
    # A link with a token moved to an ssh URL (the token kept unasked) is refused too; with the
    # credential changed (or dropped: a changed URL drops it by itself) it is not.
    link(alice, "https://git.example.com/team/chaos.git", token=TOKEN)
    moved = alice.put(f"{WS}/repository", json={**body, "token": TOKEN,
                                                "url": "git@git.example.com:team/chaos.git"},
                      headers={"X-CSRF-Token": csrf(alice)})
    assert moved.status_code == 422
    assert link(alice, "git@git.example.com:team/chaos.git")["credential"] == "none"
    assert link(alice, "git@git.example.com:team/chaos.git",
                deploy_key=True)["credential"] == "deploy_key"


def test_globs_span_folders_only_with_two_stars():
    assert git_mirror.matches("chaos/a.json", ["chaos/**/*.json"])
    assert git_mirror.matches("chaos/x/y/a.json", ["chaos/**/*.json"])
    assert not git_mirror.matches("other/chaos/a.json", ["chaos/**/*.json"])
    assert git_mirror.matches("a.yaml", ["*.yaml"])
    assert not git_mirror.matches("x/a.yaml", ["*.yaml"])
    assert git_mirror.matches("k8s/payments/deep/svc.yaml", ["k8s/payments/**"])
    assert git_mirror.matches("exp-1.json", ["exp-[0-9].json"])
    assert git_mirror.shown_url("https://user:pw@host/x.git") == "https://host/x.git"


def test_the_workers_sync_thread_takes_a_sync(hub, alice, server):
    repo = Repository.create(server.root, "chaos")
    first_commit(repo)
    link(alice, server.url_for("chaos"), token=TOKEN)
    hub.config["GIT_SYNC_POLL_SECONDS"] = 0.05
    git_sync.start(hub)
    try:
        asked = post_json(alice, f"{WS}/sync", None).get_json()
        done = wait_for(lambda: (found := alice.get(f"/api/v1/syncs/{asked['id']}").get_json())
                        ["status"] in ("succeeded", "failed") and found, 30, "the sync")
    finally:
        git_sync.stop(hub)
    assert done["status"] == "succeeded" and len(done["result"]["created"]) == 3


def test_git_connects_to_the_address_that_was_checked(hub, alice, server, monkeypatch):
    repo = Repository.create(server.root, "chaos")
    first_commit(repo)
    port = server.url_for("chaos").split(":")[2].split("/")[0]
    # A name only the hub's check resolves: git reaches it through the pinned address alone.
    real = git_mirror.socket.getaddrinfo

    def resolve(host, *args, **kwargs):
        if host == "git.example.test":
            return real("127.0.0.1", *args, **kwargs)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(git_mirror.socket, "getaddrinfo", resolve)
    link(alice, f"http://git.example.test:{port}/chaos.git", token=TOKEN)
    done = sync(hub, alice)
    assert done["status"] == "succeeded", done
    assert len(done["result"]["created"]) == 3
    # Checked again at each fetch: a loopback address is refused once private targets are.
    hub.config["ALLOW_PRIVATE_TARGETS"] = False
    repo.commit({"chaos/a.json": experiment_json("A2")}, "A2")
    repo.push()
    refused = sync(hub, alice)
    assert refused["status"] == "failed" and "refused address" in refused["error"]


def test_file_urls_need_their_own_setting(hub, alice, tmp_path):
    repo = Repository.create(tmp_path / "local", "chaos")
    first_commit(repo)
    hub.config["GIT_ALLOW_FILE_URLS"] = False
    # Private targets allowed (on-premises git hosts) do not open the hub's own disk.
    body = {"url": repo.file_url, "branch": "main", "paths": PATHS}
    refused = alice.put(f"{WS}/repository", json=body, headers={"X-CSRF-Token": csrf(alice)})
    assert refused.status_code == 422 and "GIT_ALLOW_FILE_URLS" in refused.get_data(
        as_text=True)
    assert alice.get(f"{WS}/repository").status_code == 404
    hub.config["GIT_ALLOW_FILE_URLS"] = True
    link(alice, repo.file_url)
    done = sync(hub, alice)
    assert done["status"] == "succeeded" and len(done["result"]["created"]) == 3
    # Never one of the hub's own copies (another workspace's, this one's), however named.
    with hub.app_context():
        cache = repository_links.cache_folder(done["workspace_id"])
    (tmp_path / "to-cache").symlink_to(cache.parent)
    for url in (cache.as_uri(), (cache.parent / "other-workspace").as_uri(),
                f"file://{tmp_path}/local/../git-cache/{cache.name}",
                (tmp_path / "to-cache" / cache.name).as_uri()):
        answer = alice.put(f"{WS}/repository", json={**body, "url": url},
                           headers={"X-CSRF-Token": csrf(alice)})
        assert answer.status_code == 422, url
        assert "GIT_CACHE_DIR" in answer.get_data(as_text=True)
    # A link made while they were allowed stops syncing once they are not.
    hub.config["GIT_ALLOW_FILE_URLS"] = False
    failed = sync(hub, alice)
    assert failed["status"] == "failed" and "GIT_ALLOW_FILE_URLS" in failed["error"]


def test_a_run_of_a_dependency_version_reports_to_that_version(hub, alice, server):
    repo = Repository.create(server.root, "chaos")
    first_commit(repo)
    link(alice, server.url_for("chaos"), token=TOKEN)
    sync(hub, alice)
    b_id = by_path(hub)["chaos/b.yaml"].id
    repo.commit({"k8s/payments/deploy.yaml": "replicas: 2\n"}, "Two replicas")
    repo.push()
    [started] = sync(hub, alice, run="changed")["result"]["runs"]
    assert started["experiment_id"] == b_id and started["run_id"]
    # Another dependency change while that run waits: version 3, the same document again.
    again = repo.commit({"k8s/payments/svc.yaml": "kind: Service\n"}, "A service")
    repo.push()
    updated = sync(hub, alice)["result"]["updated"]
    assert [(f["path"], f["version"], f["reason"]) for f in updated] == [
        ("chaos/b.yaml", 3, "dependency k8s/payments/** changed: k8s/payments/svc.yaml")]
    assert versions_of(hub, b_id)[2].commit_sha == again
    with hub.app_context():
        from chaoshub.auth import service as auth
        from chaoshub.experiment import hub_runs as runs_store
        row = runs_store.claim(started["run_id"], "test-worker")
        assert row is not None and row.version == 2
        reporter = {"Authorization": "Bearer " + auth.mint_run_token(
            row.created_by, row.id, row.workspace_id, 600)}
    journal = {"status": "completed", "deviated": False, "run": [], "rollbacks": [],
               "experiment": versions_of(hub, b_id)[1].document,
               "start": "2025-01-01T00:00:00", "end": "2025-01-01T00:00:01", "duration": 1,
               "steady_states": {"before": None, "after": None, "during": []}}
    finished = hub.test_client().put(f"/api/v1/runs/{started['run_id']}/journal",
                                     headers=reporter, json=journal)
    assert finished.status_code == 201, finished.get_json()
    # Its execution is of version 2, the run's, though version 3 has the same document.
    assert finished.get_json()["execution"]["version"] == 2
    # The page of changes says the document is the same, and each version why it was made.
    page = alice.get(f"/alice/Personal/experiment/{b_id}/versions/diff?from=2&to=3")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "v2 and v3 have the same document." in text
    assert "Dependency k8s/payments/** changed (k8s/payments/svc.yaml): A service" in text
    assert again[:12] in text


@pytest.fixture
def sshd(tmp_path):
    try:
        with ssh_server(tmp_path / "sshd") as found:
            yield found
    except FileNotFoundError as exc:
        unavailable("sshd", exc)


def fingerprint(public_key: str) -> str:
    """The key's SHA256 fingerprint as `ssh-keygen -lf` prints it."""
    with tempfile.NamedTemporaryFile("w", suffix=".pub") as out:
        out.write(public_key + "\n")
        out.flush()
        printed = subprocess.run(["ssh-keygen", "-lf", out.name], capture_output=True,
                                 text=True, check=True).stdout
    return printed.split()[1]


def test_known_hosts_name_the_port_unless_it_is_22():
    assert git_mirror.known_hosts_line("git.example.com", 22, "ssh-ed25519 AAAA") == \
        "git.example.com ssh-ed25519 AAAA"
    assert git_mirror.known_hosts_line("git.example.com", 2222, "ssh-ed25519 AAAA") == \
        "[git.example.com]:2222 ssh-ed25519 AAAA"


def test_a_deploy_key_fetches_over_ssh(hub, alice, sshd, tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    # git's private homes (where the deploy key's file is written) in a folder of the test's.
    homes = tmp_path / "homes"
    homes.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(homes))
    repo = Repository.create(tmp_path / "ssh-served", "chaos")
    first = first_commit(repo)
    made = link(alice, sshd.url_for(repo), deploy_key=True)
    assert made["credential"] == "deploy_key" and made["url"].startswith("ssh://")
    public = made["deploy_public_key"]
    answers = [json.dumps(made)]
    with hub.app_context(), transaction("experiment") as session:
        private = repository_links.access_of(session.get(RepositoryLink,
                                                         made["id"])).deploy_key
    # Until the public half is on the server, ssh is refused: the sync says so.
    refused = sync(hub, alice)
    answers.append(json.dumps(refused))
    assert refused["status"] == "failed" and "Permission denied" in refused["error"]
    sshd.authorize(public)
    done = sync(hub, alice)
    answers.append(json.dumps(done))
    assert done["status"] == "succeeded", done
    assert done["to_commit"] == first
    assert sorted(f["path"] for f in done["result"]["created"]) == \
        ["chaos/a.json", "chaos/b.yaml", "chaos/deep/c.json"]
    assert "Accepted publickey for " + sshd.user in sshd.log.read_text()
    # The host's key is pinned on the link, shown as `ssh-keygen -lf` shows it.
    pinned = [{"type": "ssh-ed25519", "fingerprint": fingerprint(sshd.host_public_key)}]
    assert alice.get(f"{WS}/repository").get_json()["host_keys"] == pinned
    assert pinned[0]["fingerprint"] in alice.get("/alice/Personal/-/repository").get_data(
        as_text=True)
    # Later syncs fetch what is new, over the same key.
    repo.commit({"chaos/a.json": experiment_json("A over ssh")}, "A over ssh")
    repo.push()
    again = sync(hub, alice)
    answers.append(json.dumps(again))
    assert again["status"] == "succeeded" and \
        [f["path"] for f in again["result"]["updated"]] == ["chaos/a.json"]
    # Another host key at that address and port (the host's key changed, or another host
    # answers there): this worker and a new one (its own empty cache folder) both refuse it,
    # saying what to do; nothing is sent to it.
    accepted = sshd.log.read_text().count("Accepted publickey")
    changed = sshd.new_host_key()
    for worker_cache in ("git-cache", "git-cache-of-a-new-worker"):
        hub.config["GIT_CACHE_DIR"] = str(tmp_path / worker_cache)
        impostor = sync(hub, alice)
        answers.append(json.dumps(impostor))
        assert impostor["status"] == "failed", impostor
        assert "host key" in impostor["error"] and "forget" in impostor["error"], impostor
        assert pinned[0]["fingerprint"] in impostor["error"]
    assert sshd.log.read_text().count("Accepted publickey") == accepted
    assert alice.get(f"{WS}/repository").get_json()["host_keys"] == pinned
    # A maintainer forgets the pinned key (the page's button): the next sync trusts anew.
    forgot = alice.post("/alice/Personal/-/repository/forget-host-key",
                        data={"csrf_token": csrf(alice)})
    assert forgot.status_code == 303
    assert alice.get(f"{WS}/repository").get_json()["host_keys"] == []
    trusted = sync(hub, alice)
    assert trusted["status"] == "succeeded", trusted
    repinned = [{"type": "ssh-ed25519", "fingerprint": fingerprint(changed)}]
    assert alice.get(f"{WS}/repository").get_json()["host_keys"] == repinned
    # So does the API's "forget_host_key", and a changed URL.
    assert link(alice, sshd.url_for(repo), forget_host_key=True)["host_keys"] == []
    assert sync(hub, alice)["status"] == "succeeded"
    assert alice.get(f"{WS}/repository").get_json()["host_keys"] == repinned
    assert link(alice, sshd.url_for(repo) + "/", deploy_key=True)["host_keys"] == []
    # The private half is in no answer, page, log or sync; its file went with git's home.
    answers += [json.dumps(alice.get(f"{WS}/repository").get_json()),
                json.dumps(alice.get(f"{WS}/syncs").get_json()),
                alice.get("/alice/Personal/-/repository").get_data(as_text=True),
                json.dumps(alice.get("/api/v1/orgs/alice/activity").get_json()),
                json.dumps(alice.get("/api/v1/orgs/alice/audit").get_json())]
    everything = "\n".join(answers) + caplog.text + sshd.log.read_text()
    assert private.startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    assert all(line not in everything for line in private.splitlines()[1:-1])
    assert "PRIVATE KEY" not in everything and public in everything
    assert list(homes.iterdir()) == []


def test_a_cache_folder_goes_with_its_link(hub, alice, tmp_path):
    hub.config["GIT_ALLOW_FILE_URLS"] = True
    one = Repository.create(tmp_path / "one" / "served", "chaos")
    old = first_commit(one)
    two = Repository.create(tmp_path / "two" / "served", "chaos")
    two.commit({"chaos/z.json": experiment_json("Z")}, "Z")
    two.push()
    this_worker, other_worker = str(tmp_path / "cache-a"), str(tmp_path / "cache-b")
    workspace_id = link(alice, one.file_url)["workspace_id"]

    def folder(cache_dir: str):
        hub.config["GIT_CACHE_DIR"] = cache_dir
        with hub.app_context():
            return repository_links.cache_folder(workspace_id)

    for worker in (other_worker, this_worker):
        folder(worker)
        assert sync(hub, alice)["status"] == "succeeded"
        assert git_mirror.has_commit(folder(worker), old)
    # Another URL: this worker's copy goes at once; the other worker's, at its next sync there.
    link(alice, two.file_url)
    assert not folder(this_worker).exists()
    folder(other_worker)
    assert sync(hub, alice)["status"] == "succeeded"
    assert not git_mirror.has_commit(folder(other_worker), old)
    # Unlinked: this worker's copy goes at once; the other worker's, at its sweep.
    folder(this_worker)
    assert sync(hub, alice)["status"] == "succeeded"
    assert alice.delete(f"{WS}/repository",
                        headers={"X-CSRF-Token": csrf(alice)}).status_code == 204
    assert not folder(this_worker).exists() and folder(other_worker).exists()
    with hub.app_context():
        assert repository_links.sweep_cache_folders() == 1
    assert not folder(other_worker).exists()
    # Linked again (a new link, the same URL) while the other worker holds the old link's copy:
    # its next sync there starts anew.
    folder(other_worker)
    link(alice, two.file_url)
    assert sync(hub, alice)["status"] == "succeeded"
    left = folder(other_worker) / "left-behind"
    left.write_text("")
    folder(this_worker)
    assert alice.delete(f"{WS}/repository",
                        headers={"X-CSRF-Token": csrf(alice)}).status_code == 204
    workspace_id = link(alice, two.file_url)["workspace_id"]
    folder(other_worker)
    assert sync(hub, alice)["status"] == "succeeded"
    assert not left.exists() and folder(other_worker).exists()
    # Another URL, saved by another process: the sweep removes the copy of the old one.
    folder(this_worker)
    link(alice, one.file_url)
    folder(other_worker)
    with hub.app_context():
        assert repository_links.sweep_cache_folders() == 1
    assert not folder(other_worker).exists()
    # A deleted workspace's copy goes with it (and with the sweep of another worker).
    assert sync(hub, alice)["status"] == "succeeded" and folder(other_worker).exists()
    with hub.app_context():
        assert repository_links.sweep_cache_folders() == 0  # a copy of the link as it is
    folder(this_worker)
    assert sync(hub, alice)["status"] == "succeeded" and folder(this_worker).exists()
    assert alice.delete("/api/v1/orgs/alice/workspaces/Personal",
                        headers={"X-CSRF-Token": csrf(alice)}).status_code == 204
    assert not folder(this_worker).exists() and folder(other_worker).exists()
    with hub.app_context():
        assert repository_links.sweep_cache_folders() == 1
    assert not folder(other_worker).exists()


def test_a_git_error_keeps_the_lines_that_say_what_failed(sshd, tmp_path):
    # What ssh itself prints when a host's key is not the one known: a banner, then the cause.
    known = tmp_path / "known_hosts"
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)],
                   check=True, capture_output=True)
    known.write_text(f"[127.0.0.1]:{sshd.port} {other.with_suffix('.pub').read_text()}")
    said = subprocess.run(["ssh", "-F", "/dev/null", "-o", "BatchMode=yes", "-o",
                           f"UserKnownHostsFile={known}", "-o", "StrictHostKeyChecking=yes",
                           "-p", str(sshd.port), "git@127.0.0.1", "true"],
                          capture_output=True, timeout=30).stderr
    assert b"@@@@@@@@" in said and b"Host key verification failed" in said
    said += (b"fatal: Could not read from remote repository.\n\nPlease make sure you have the "
             b"correct access rights\nand the repository exists.\n")
    access = git_mirror.Access(url="ssh://git@127.0.0.1/x.git", token=TOKEN)
    message = git_mirror.failure(access, "fetch", said, 128)
    assert len(message) <= git_mirror.ERROR_MAX
    assert message.startswith("git fetch failed: ") and "@@@" not in message
    assert "Host key verification failed" in message
    assert "Could not read from remote repository" in message
    # However much comes before, the last lines stay; a secret is never cut into view.
    noise = b"".join(b"remote: counting %d\n" % i for i in range(200))
    message = git_mirror.failure(access, "fetch", noise + b"remote: " + TOKEN.encode() * 40
                                 + b"\nremote: Repository not found.\nfatal: the end\n", 128)
    assert len(message) <= git_mirror.ERROR_MAX and TOKEN[:8] not in message
    assert message.endswith("remote: Repository not found.; fatal: the end"), message
