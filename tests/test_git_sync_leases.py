"""Syncs against workers that stop or stall: a sync's lease renewed while it works, a worker
that lost it writing nothing, syncs taken too often failed, and the runs a sync asked for
started once each, even when its worker stopped before starting them."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from chaoshub.core.db import transaction
from chaoshub.core.models import utcnow
from chaoshub.experiment import git_mirror, git_sync
from chaoshub.experiment.models import Experiment, GitSync
from tests.conftest import post_json, signed_up_client
from tests.git_server import Repository
from tests.test_git_sync import WS, experiment_json, link


@pytest.fixture
def hub(app, tmp_path):
    # The repositories are local (file://).
    app.config.update(ALLOW_PRIVATE_TARGETS=True, GIT_ALLOW_FILE_URLS=True,
                      GIT_CACHE_DIR=str(tmp_path / "git-cache"))
    return app


@pytest.fixture
def alice(hub):
    return signed_up_client(hub, "alice")


def linked(alice, tmp_path, files: dict[str, str]) -> Repository:
    repo = Repository.create(tmp_path / "local", "chaos")
    repo.commit(files, "Add experiments")
    repo.push()
    link(alice, repo.file_url)
    return repo


def ask(alice, run: str = "") -> str:
    asked = post_json(alice, f"{WS}/sync" + (f"?run={run}" if run else ""), None)
    assert asked.status_code == 202, asked.get_json()
    return asked.get_json()["id"]


def row_of(hub, sync_id: str) -> GitSync:
    with hub.app_context(), transaction("experiment") as session:
        row = session.get(GitSync, sync_id)
        session.expunge(row)
    return row


def lease_ends(hub, sync_id: str) -> None:
    """The worker's lease runs out (as when it stopped, or stalled past it)."""
    with hub.app_context(), transaction("experiment") as session:
        session.execute(update(GitSync).where(GitSync.id == sync_id).values(
            lease_until=utcnow() - timedelta(seconds=1)))


def synced_titles(hub) -> list[str]:
    with hub.app_context(), transaction("experiment") as session:
        return sorted(session.scalars(select(Experiment.title).where(
            Experiment.source_path.is_not(None))))


def test_a_long_sync_renews_its_lease_and_keeps_it(hub, alice, tmp_path, monkeypatch):
    linked(alice, tmp_path, {"chaos/a.json": experiment_json("A")})
    hub.config["GIT_SYNC_LEASE_SECONDS"] = 1
    sync_id = ask(alice)
    seen = {}
    tree = git_mirror.tree

    def slow_tree(*args, **kwargs):
        # The sync works past its first lease: the lease moves on, and no other worker takes
        # the sync meanwhile.
        first = row_of(hub, sync_id).lease_until
        deadline = time.monotonic() + 30
        while row_of(hub, sync_id).lease_until <= first and time.monotonic() < deadline:
            time.sleep(0.05)
        seen["renewed"] = row_of(hub, sync_id).lease_until > first
        seen["taken"] = git_sync._claim_next("another")
        return tree(*args, **kwargs)

    monkeypatch.setattr(git_mirror, "tree", slow_tree)
    with hub.app_context():
        assert git_sync.run_due() == 1
    assert seen == {"renewed": True, "taken": None}
    done = row_of(hub, sync_id)
    assert done.status == "succeeded" and done.lease_until is None
    assert synced_titles(hub) == ["A"]


def test_a_worker_that_lost_its_lease_writes_nothing(hub, alice, tmp_path):
    linked(alice, tmp_path, {"chaos/a.json": experiment_json("A")})
    sync_id = ask(alice)
    with hub.app_context():
        assert git_sync._claim_next("first") == sync_id
    lease_ends(hub, sync_id)
    with hub.app_context():
        assert git_sync._claim_next("second") == sync_id
        # The first worker comes back: the sync is no longer its, it writes nothing.
        assert git_sync.perform(sync_id, "first") == "lost"
    row = row_of(hub, sync_id)
    assert (row.status, row.worker, row.to_commit, row.result) == ("running", "second", None,
                                                                    None)
    assert synced_titles(hub) == []
    with hub.app_context():
        assert git_sync.perform(sync_id, "second") == "succeeded"
    assert row_of(hub, sync_id).status == "succeeded"
    assert synced_titles(hub) == ["A"]
    with hub.app_context():
        # Nor may it fail a sync that is another's (or ended).
        assert git_sync.perform(sync_id, "first") == "lost"
    assert row_of(hub, sync_id).status == "succeeded"


def test_a_sync_taken_too_often_without_ending_fails(hub, alice, tmp_path):
    linked(alice, tmp_path, {"chaos/a.json": experiment_json("A")})
    sync_id = ask(alice)
    with hub.app_context():
        for attempt in range(git_sync.MAX_ATTEMPTS):
            # Each worker stops before ending it.
            assert git_sync._claim_next(f"worker-{attempt}") == sync_id
            lease_ends(hub, sync_id)
        assert git_sync._claim_next("one-more") is None
    row = row_of(hub, sync_id)
    assert (row.status, row.attempts, row.lease_until) == ("failed", git_sync.MAX_ATTEMPTS,
                                                           None)
    assert f"taken {git_sync.MAX_ATTEMPTS} times and never ended" in row.error
    shown = alice.get(f"/api/v1/syncs/{sync_id}").get_json()
    assert shown["status"] == "failed" and shown["error"] == row.error
    # The workspace syncs again.
    with hub.app_context():
        assert git_sync.run_due() == 0
    done_id = ask(alice)
    with hub.app_context():
        assert git_sync.run_due() == 1
    assert row_of(hub, done_id).status == "succeeded"


def test_a_sync_whose_failure_cannot_be_announced_still_fails(hub, alice, tmp_path,
                                                             monkeypatch):
    from chaoshub.experiment.writes import ExperimentWrite

    linked(alice, tmp_path, {"chaos/a.json": experiment_json("A")})
    sync_id = ask(alice)

    def unreachable(*args, **kwargs):
        raise git_mirror.GitError("git fetch failed: the host is away")

    def broken_feed(*args, **kwargs):
        raise RuntimeError("the feed's outbox is away")

    monkeypatch.setattr(git_mirror, "fetch", unreachable)
    monkeypatch.setattr(ExperimentWrite, "feed", broken_feed)
    with hub.app_context():
        assert git_sync.run_due() == 1
    row = row_of(hub, sync_id)
    assert (row.status, row.error, row.lease_until) == (
        "failed", "git fetch failed: the host is away", None)


class WorkerStopped(BaseException):
    """The worker's process ends here (no handler of the sync's runs)."""


def test_runs_a_stopped_worker_did_not_start_are_started_by_the_next(hub, alice, tmp_path,
                                                                     monkeypatch):
    from chaoshub.experiment import hub_runs
    from chaoshub.experiment.models import Run

    linked(alice, tmp_path, {"chaos/a.json": experiment_json("A"),
                             "chaos/b.json": experiment_json("B")})
    sync_id = ask(alice, run="changed")
    add_queued, calls = hub_runs.add_queued, []

    def stops_at_the_second(*args, **kwargs):
        calls.append(args[0])
        if len(calls) == 2:
            raise WorkerStopped()
        return add_queued(*args, **kwargs)

    monkeypatch.setattr(hub_runs, "add_queued", stops_at_the_second)
    with hub.app_context(), pytest.raises(WorkerStopped):
        git_sync.run_due()
    monkeypatch.setattr(hub_runs, "add_queued", add_queued)
    stopped = row_of(hub, sync_id)
    # Its changes are written, with the runs they ask for: one started, one still to start.
    assert stopped.status == "running" and stopped.to_commit is not None
    planned = stopped.result["runs"]
    assert sorted(r["title"] for r in planned) == ["A", "B"]
    assert [bool(r["run_id"]) for r in planned] == [True, False]
    assert synced_titles(hub) == ["A", "B"]

    lease_ends(hub, sync_id)
    with hub.app_context():
        assert git_sync.run_due() == 1
    done = alice.get(f"/api/v1/syncs/{sync_id}").get_json()
    assert done["status"] == "succeeded", done
    with hub.app_context(), transaction("experiment") as session:
        runs = {r.id: r.experiment_id for r in session.scalars(select(Run))}
        titles = {e.id: e.title for e in session.scalars(select(Experiment))}
    # Exactly the planned runs, each once.
    assert sorted(titles[e] for e in runs.values()) == ["A", "B"]
    assert {r["run_id"] for r in done["result"]["runs"]} == set(runs)
    assert all(r["refused"] is None for r in done["result"]["runs"])
    with hub.app_context():
        assert git_sync.run_due() == 0


def test_a_sync_reads_many_files_with_a_few_git_processes(hub, alice, tmp_path, monkeypatch):
    from tests.git_server import git

    repo = Repository.create(tmp_path / "local", "chaos")
    for batch in range(5):
        repo.commit({f"chaos/t{batch}/e{i}.json": experiment_json(f"E{batch}-{i}")
                     for i in range(6)}, f"Batch {batch}")
    # A branch merged with a merge commit, a commit whose message is Latin-1, and one with no
    # message: each file's version names the commit `git log -1 -- path` names.
    env = repo.env()
    git("checkout", "-q", "-b", "side", cwd=repo.work, env=env)
    repo.commit({"chaos/t1/e1.json": experiment_json("Side")}, "On the side")
    git("checkout", "-q", "main", cwd=repo.work, env=env)
    repo.commit({"chaos/t2/e2.json": experiment_json("Main")}, "On main")
    git("merge", "-q", "--no-ff", "-m", "Merge side", "side", cwd=repo.work, env=env)
    git("-c", "i18n.commitEncoding=ISO-8859-1", "commit", "-q", "--allow-empty", "-m",
        "placeholder", cwd=repo.work, env=env)
    (repo.work / "chaos" / "t3" / "e3.json").write_text(experiment_json("Latin"))
    git("add", "-A", cwd=repo.work, env=env)
    (repo.work / "message").write_bytes("Caf\xe9 cr\xe8me\n".encode("latin-1"))
    git("-c", "i18n.commitEncoding=ISO-8859-1", "commit", "-q", "-F", str(repo.work / "message"),
        cwd=repo.work, env=env)
    repo.push()
    link(alice, repo.file_url)

    started = []
    run = git_mirror._run

    def counted(command, *args, **kwargs):
        started.append(command[1])
        return run(command, *args, **kwargs)

    monkeypatch.setattr(git_mirror, "_run", counted)
    sync_id = ask(alice)
    with hub.app_context():
        assert git_sync.run_due() == 1
    done = alice.get(f"/api/v1/syncs/{sync_id}").get_json()
    assert done["status"] == "succeeded" and len(done["result"]["created"]) == 30, done
    # Once per file each, 90 processes before; now a few, however many files.
    assert len(started) <= 12, started
    with hub.app_context(), transaction("experiment") as session:
        from chaoshub.experiment.models import ExperimentVersion

        kept = {e.source_path: (v.commit_sha, v.message, v.commit_author) for e, v in
                session.execute(select(Experiment, ExperimentVersion).join(
                    ExperimentVersion, ExperimentVersion.experiment_id == Experiment.id))}
    for path, (sha, message, author) in kept.items():
        expected = git("log", "-1", "--format=%H%x00%B%x00%an <%ae>", "--", path,
                       cwd=repo.work, env=env).stdout.split("\0")
        assert (sha, message, author) == (expected[0], expected[1].strip(),
                                          expected[2].strip()), path
    assert kept["chaos/t3/e3.json"][1] == "Café crème"


def test_a_full_resync_runs_only_what_differs_from_the_hubs_versions(hub, alice, tmp_path):
    import shutil

    repo = linked(alice, tmp_path, {
        "chaos/a.json": experiment_json("A"),
        "chaos/b.json": experiment_json("B", extensions=[
            {"name": "chaoshub", "depends_on": ["k8s/**"]}]),
        "chaos/c.json": experiment_json("C"),
        "k8s/deploy.yaml": "replicas: 1\n"})
    repo.commit({"README.md": "experiments\n"}, "Readme")
    repo.push()
    first = ask(alice)
    with hub.app_context():
        assert git_sync.run_due() == 1
    assert row_of(hub, first).status == "succeeded"
    # History rewritten and a new worker's empty cache: the last synced commit is gone, so the
    # sync knows no range. A changes, C is new, B's dependency changes, B's own file does not.
    repo.rewrite(1, {"chaos/a.json": experiment_json("A2"), "chaos/c.json": None,
                     "chaos/d.json": experiment_json("D"), "k8s/deploy.yaml": "replicas: 3\n",
                     "chaos/b.json": experiment_json("B", extensions=[
                         {"name": "chaoshub", "depends_on": ["k8s/**"]}])},
                 "Rewritten")
    shutil.rmtree(hub.config["GIT_CACHE_DIR"])
    again = ask(alice, run="changed")
    with hub.app_context():
        assert git_sync.run_due() == 1
    done = alice.get(f"/api/v1/syncs/{again}").get_json()
    assert done["status"] == "succeeded", done
    result = done["result"]
    assert [f["path"] for f in result["created"]] == ["chaos/d.json"]
    assert [f["path"] for f in result["updated"]] == ["chaos/a.json"]
    assert [f["path"] for f in result["removed"]] == ["chaos/c.json"]
    assert result["unchanged"] == ["chaos/b.json"]
    # Only what differs from the hub's latest versions runs: not B (its dependency's change is
    # unknown without a range), not the removed C.
    assert sorted(r["path"] for r in result["runs"]) == ["chaos/a.json", "chaos/d.json"]
