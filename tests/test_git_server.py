"""The test git servers (tests/git_server.py) serve real repositories to the real `git` command:
clone, push, tokens, forced pushes, and `git daemon`."""

from __future__ import annotations

import subprocess

import pytest

from tests.git_server import Repository, clone, git, git_daemon, git_env, git_http_server

TOKEN = "gh-token-7Hq2Lx9"
ANN = ("Ann Author", "ann@example.com")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A token-protected server with one repository of two commits."""
    base = tmp_path_factory.mktemp("git")
    with git_http_server(base / "served", token=TOKEN) as server:
        repo = Repository.create(server.root, "experiments")
        repo.commit({"chaos/a.json": '{"title": "a"}\n'}, "Add a", author=ANN)
        repo.commit({"chaos/b.json": '{"title": "b"}\n', "README.md": "hi\n"}, "Add b")
        repo.push()
        yield server, repo


def log(path, home):
    return git("log", "--format=%H %an <%ae> %s", cwd=path, env=git_env(home)).stdout.split("\n")


def test_clone_over_http_with_the_token(served, tmp_path):
    server, repo = served
    clone(server.url_for("experiments", token=TOKEN), tmp_path / "c", tmp_path / "h")
    assert (tmp_path / "c" / "chaos" / "a.json").read_text() == '{"title": "a"}\n'
    lines = log(tmp_path / "c", tmp_path / "h")
    assert lines[0] == f"{repo.served_head()} Test Author <author@example.com> Add b"
    assert lines[1].endswith("Ann Author <ann@example.com> Add a")
    # Any user name with the token as password will do.
    clone(server.url_for("experiments", token=TOKEN, user="ci"), tmp_path / "d", tmp_path / "h")
    assert (tmp_path / "d" / "README.md").read_text() == "hi\n"
    assert {r.user for r in server.requests if r.status == 200} >= {"x-access-token", "ci"}


def test_a_wrong_or_missing_token_is_refused(served, tmp_path):
    server, _ = served
    server.reset_counts()
    wrong = clone(server.url_for("experiments", token="nope"), tmp_path / "c", tmp_path / "h",
                  check=False)
    assert wrong.returncode != 0
    assert "Authentication failed" in wrong.stderr or "401" in wrong.stderr
    assert not (tmp_path / "c" / "chaos").exists()
    assert server.auth_failures >= 1
    assert all(r.status == 401 for r in server.requests)
    none = clone(server.url_for("experiments"), tmp_path / "e", tmp_path / "h", check=False)
    assert none.returncode != 0
    assert server.challenged >= 1


def test_the_401_asks_for_basic_credentials(served):
    import requests

    server, _ = served
    answer = requests.get(f"{server.url_for('experiments')}/info/refs?service=git-upload-pack",
                          timeout=10)
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"].startswith("Basic")
    ok = requests.get(f"{server.url_for('experiments')}/info/refs?service=git-upload-pack",
                      auth=("x-access-token", TOKEN), timeout=10)
    assert ok.status_code == 200
    assert ok.headers["Content-Type"] == "application/x-git-upload-pack-advertisement"
    missing = requests.get(f"{server.url}/nothing.git/info/refs?service=git-upload-pack",
                           auth=("x-access-token", TOKEN), timeout=10)
    assert missing.status_code == 404


def test_push_over_http_then_fetch_after_a_forced_push(tmp_path):
    with git_http_server(tmp_path / "served", token=TOKEN) as server:
        repo = Repository.create(server.root, "pushed")
        first = repo.commit({"x.json": "1"}, "one")
        repo.push()
        url = server.url_for("pushed", token=TOKEN)
        home = tmp_path / "h"
        env = git_env(home)
        clone(url, tmp_path / "c", home)

        # A push over HTTP (receive-pack through http-backend) lands in the served repository.
        (tmp_path / "c" / "y.json").write_text("2")
        git("add", "y.json", cwd=tmp_path / "c", env=env)
        git("commit", "-q", "-m", "two", cwd=tmp_path / "c", env=env)
        git("push", "-q", "origin", "main", cwd=tmp_path / "c", env=env)
        pushed = git("rev-parse", "HEAD", cwd=tmp_path / "c", env=env).stdout.strip()
        assert repo.served_head() == pushed

        # History rewritten upstream: the clone's fetch sees a forced update.
        git("pull", "-q", "origin", "main", cwd=repo.work, env=env)
        rewritten = repo.rewrite(1, {"z.json": "3"}, "rewritten", author=ANN)
        assert repo.served_head() == rewritten
        fetched = git("fetch", "origin", cwd=tmp_path / "c", env=env)
        assert "(forced update)" in fetched.stderr
        remote = git("rev-parse", "origin/main", cwd=tmp_path / "c", env=env).stdout.strip()
        assert remote == rewritten
        def is_ancestor(sha):
            return git("merge-base", "--is-ancestor", sha, remote, cwd=tmp_path / "c",
                       env=env, check=False).returncode == 0

        assert is_ancestor(first)
        assert not is_ancestor(pushed)  # the dropped commit is no longer in the branch


def test_a_server_without_token_and_without_pushes(tmp_path):
    with git_http_server(tmp_path / "served", receive_pack=False) as server:
        repo = Repository.create(server.root, "ro")
        repo.commit({"a.json": "{}"}, "a")
        repo.push()
        home = tmp_path / "h"
        clone(server.url_for("ro"), tmp_path / "c", home)
        env = git_env(home)
        git("commit", "-q", "--allow-empty", "-m", "b", cwd=tmp_path / "c", env=env)
        refused = git("push", "origin", "main", cwd=tmp_path / "c", env=env, check=False)
        assert refused.returncode != 0
        assert repo.served_head() != git("rev-parse", "HEAD", cwd=tmp_path / "c",
                                         env=env).stdout.strip()


def test_removing_files_and_the_file_url(tmp_path):
    repo = Repository.create(tmp_path / "served", "local")
    repo.commit({"a.json": "{}", "b.json": "{}"}, "both")
    repo.commit({"a.json": None}, "drop a")
    repo.push()
    clone(repo.file_url, tmp_path / "c", tmp_path / "h")
    assert not (tmp_path / "c" / "a.json").exists()
    assert (tmp_path / "c" / "b.json").exists()


def test_git_daemon_serves_clones_and_fetches(tmp_path):
    with git_daemon(tmp_path / "served") as daemon:
        repo = Repository.create(daemon.root, "d")
        repo.commit({"a.json": "{}"}, "a")
        repo.push()
        home = tmp_path / "h"
        clone(daemon.url_for("d"), tmp_path / "c", home)
        assert (tmp_path / "c" / "a.json").exists()
        second = repo.commit({"b.json": "{}"}, "b")
        repo.push()
        git("pull", "-q", cwd=tmp_path / "c", env=git_env(home))
        assert git("rev-parse", "HEAD", cwd=tmp_path / "c",
                   env=git_env(home)).stdout.strip() == second
    # Stopped: nothing listens any more.
    gone = subprocess.run(["git", "ls-remote", daemon.url_for("d")], env=git_env(home),
                          capture_output=True, timeout=30)
    assert gone.returncode != 0


def test_a_large_push_streams_through(tmp_path):
    # Over git's 1 MiB post buffer the push's body comes chunked, and the answer is as large.
    import os

    blob = os.urandom(3 * 1024 * 1024)
    with git_http_server(tmp_path / "served", token=TOKEN) as server:
        repo = Repository.create(server.root, "big")
        repo.commit({"a.json": "{}"}, "a")
        repo.push()
        home = tmp_path / "h"
        env = git_env(home)
        clone(server.url_for("big", token=TOKEN), tmp_path / "c", home)
        (tmp_path / "c" / "blob.bin").write_bytes(blob)
        git("add", "blob.bin", cwd=tmp_path / "c", env=env)
        git("commit", "-q", "-m", "blob", cwd=tmp_path / "c", env=env)
        git("push", "-q", "origin", "main", cwd=tmp_path / "c", env=env)
        assert any(r.chunked and r.path.endswith("/git-receive-pack") for r in server.requests)
        clone(server.url_for("big", token=TOKEN), tmp_path / "d", home)
        assert (tmp_path / "d" / "blob.bin").read_bytes() == blob
