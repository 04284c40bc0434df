"""Experiments from git: a first sync and an incremental sync of a repository of 500
experiment files and 200 commits, with the git processes each started.

Usage: .venv/bin/python bench/git_sync.py [--files 500] [--commits 200]
On a fresh SQLite hub, a local (file://) repository. Goals: a first sync under 10 s, an
incremental sync of 20 changed files under 2 s, git processes independent of the files read.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from chaoshub import create_app
from chaoshub.auth import service as auth
from chaoshub.core import migrate
from chaoshub.experiment import git_mirror, git_sync

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.run_data import runnable  # noqa: E402

PASSWORD = "a long enough passphrase"
WS = "/api/v1/orgs/bench/workspaces/Personal"


def git(work: Path, *args: str, stdin: bytes | None = None) -> None:
    env = {"PATH": os.environ["PATH"], "HOME": str(work.parent), "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_AUTHOR_NAME": "Bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
           "GIT_COMMITTER_NAME": "Bench", "GIT_COMMITTER_EMAIL": "bench@example.com"}
    subprocess.run(["git", *args], cwd=work, env=env, check=True, input=stdin,
                   capture_output=True)


def document(title: str, edit: int = 0) -> str:
    return json.dumps(runnable(title, description=f"edit {edit}"), indent=2)


def make_repository(root: Path, files: int, commits: int) -> Path:
    """`files` experiments added over `commits` commits (with a few edits of earlier ones)."""
    work = root / "work"
    work.mkdir(parents=True)
    git(work, "init", "-q", "-b", "main")
    per = max(1, files // commits)
    made = 0
    for number in range(commits):
        batch = range(made, min(files, made + per)) if made < files else []
        for index in batch:
            path = work / "chaos" / f"team-{index % 10}" / f"exp-{index}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(document(f"Experiment {index}"))
        made += len(batch)
        if not batch:  # past the files: edit an earlier one
            index = number % files
            (work / "chaos" / f"team-{index % 10}" / f"exp-{index}.json").write_text(
                document(f"Experiment {index}", number))
        (work / "notes.txt").write_text(f"commit {number}\n")
        git(work, "add", "-A")
        git(work, "commit", "-q", "-m", f"Commit {number}")
    for index in range(made, files):  # what the commits did not add
        path = work / "chaos" / f"team-{index % 10}" / f"exp-{index}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(document(f"Experiment {index}"))
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "The rest")
    return work


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--commits", type=int, default=200)
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="chaoshub-bench-git-"))
    work = make_repository(folder / "repo", args.files, args.commits)
    settings = {"CHAOSHUB_INSTANCE_PATH": str(folder / "hub"), "REDIS_URL": "",
                "CACHE_PREFIX": f"chaoshub-bench-{os.getpid()}", "LOG_LEVEL": "WARNING",
                "PASSWORD_HASHING": "fast", "GIT_ALLOW_FILE_URLS": "true",
                "GIT_CACHE_DIR": str(folder / "cache")}
    app = create_app(settings)
    migrate.upgrade(app)
    with app.app_context():
        auth.create_local_account("bench", PASSWORD)
        secret = auth.create_token_for("bench", "bench", ["full"]).secret
    client = app.test_client()
    headers = {"Authorization": f"Bearer {secret}"}
    linked = client.put(f"{WS}/repository", headers=headers, json={
        "url": (work / ".git").resolve().as_uri(), "branch": "main",
        "paths": ["chaos/**/*.json"]})
    assert linked.status_code in (200, 201), linked.get_json()

    started = []
    run = git_mirror._run

    def counted(command, *rest, **kwargs):
        started.append(command[1])
        return run(command, *rest, **kwargs)

    git_mirror._run = counted

    def timed_sync(label: str, goal: float) -> None:
        started.clear()
        asked = client.post(f"{WS}/sync", headers=headers)
        assert asked.status_code == 202, asked.get_json()
        begun = time.perf_counter()
        with app.app_context():
            git_sync.run_due()
        seconds = time.perf_counter() - begun
        done = client.get(f"/api/v1/syncs/{asked.get_json()['id']}", headers=headers).get_json()
        assert done["status"] == "succeeded", done
        result = done["result"]
        print(f"{label}: {seconds:.2f} s (goal < {goal:g} s), {len(started)} git processes, "
              f"{len(result['created'])} created, {len(result['updated'])} updated")

    timed_sync(f"first sync of {args.files} files, {args.commits} commits", 10)
    for index in range(20):
        (work / "chaos" / f"team-{index % 10}" / f"exp-{index}.json").write_text(
            document(f"Experiment {index}", 10_000))
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "Change 20 experiments")
    timed_sync("incremental sync of 20 changed files", 2)


if __name__ == "__main__":
    main()
