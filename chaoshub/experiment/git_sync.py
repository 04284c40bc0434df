"""Syncs of a workspace with its linked repository: asked for by a person or a push webhook
(`git_sync_requests`), done by a worker (a thread of each worker process, never a web
request), one at a time per workspace.

A sync fetches the branch, finds the experiment files (the link's globs) added, changed or
removed since the last synced commit (every file, on the first sync or when that commit is
gone), and in one transaction makes each new file an experiment (its path is its key in the
workspace), each changed one a new version (the commit's sha, author and message on it), and
marks each removed one as removed upstream (its runs stay). A file that does not parse or
validate is listed with its errors; the others still go in. An experiment whose `chaoshub`
extension's `depends_on` globs match a path changed since the last synced commit gets a new
version too, of the same document, recording the commit that last changed that path. With
`run_changed`, it then starts hub runs of exactly the experiments that got a version, as the
person the sync acts for, each checked against the workspace's run policy and kill switch like
any run (refusals are listed).

A sync acts as whoever asked for it; a webhook's as the person who linked the repository.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from datetime import timedelta
from typing import Any

from flask import Flask, current_app
from sqlalchemy import and_, or_, select, update

from chaoshub.auth import service as auth
from chaoshub.core import inputs, process_thread
from chaoshub.core.db import transaction
from chaoshub.core.errors import HubError, first_line
from chaoshub.core.models import new_id, utcnow
from chaoshub.experiment import (
    git_mirror,
    grants,
    hub_runs,
    notifications,
    queue,
    repository_links,
    run_checks,
    store,
    versions,
)
from chaoshub.experiment.git_sync_views import InvalidFile, SyncedFile, SyncResult, SyncRun
from chaoshub.experiment.models import Experiment, GitSync, RepositoryLink
from chaoshub.experiment.secret_box import SecretUnreadable
from chaoshub.experiment.validation import problems
from chaoshub.experiment.writes import ExperimentWrite, record_activity

SERVICE = "experiment"
EXTENSION = "chaoshub.git_sync"
SWEEP_SECONDS = 3600  # how often a worker removes the cache folders of links gone or changed
# A sync's worker holds it GIT_SYNC_LEASE_SECONDS without renewing, and renews it this many
# times in each lease while it works; past the lease, another worker takes the sync again.
RENEWALS_PER_LEASE = 4
# A sync taken this many times without ending (its worker stopped, or failed even to record
# its failure, each time) is failed when its lease runs out again, never taken once more.
MAX_ATTEMPTS = 3
GAVE_UP = (f"the sync was taken {MAX_ATTEMPTS} times and never ended (its worker stopped or "
           "failed each time): see the workers' logs, then sync again")
MAX_FILES = 1000  # experiment files one sync reads at most
MAX_DEPENDS = 50  # globs one experiment's depends_on holds
log = logging.getLogger(__name__)


# Doing ----------------------------------------------------------------------------------------


def run_due(limit: int = 10) -> int:
    """Do the syncs that wait (a worker's round), `limit` at most; how many were done."""
    done = 0
    while done < limit:
        worker = new_id()  # this taking's token: the lease is its while it renews it
        sync_id = _claim_next(worker)
        if sync_id is None:
            break
        perform(sync_id, worker)
        done += 1
    return done


class LeaseLost(Exception):
    """The sync's lease ran out and another worker took it: this one writes nothing more."""


class _Lease:
    """Renews a worker's lease on a sync from a thread of its own while the sync works (git
    commands may each take minutes), and says when it was lost."""

    def __init__(self, sync_id: str, worker: str):
        self.sync_id, self.worker = sync_id, worker
        self.seconds = int(current_app.config["GIT_SYNC_LEASE_SECONDS"])
        self.lost = threading.Event()
        self._stopped = threading.Event()
        self._app = current_app._get_current_object()
        self._thread = threading.Thread(target=self._renew_until_stopped, daemon=True,
                                        name=f"chaoshub-git-sync-lease-{sync_id[:8]}")

    def __enter__(self) -> _Lease:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopped.set()
        self._thread.join()

    def _renew_until_stopped(self) -> None:
        every = max(0.05, self.seconds / RENEWALS_PER_LEASE)
        with self._app.app_context():
            while not self._stopped.wait(every):
                try:
                    if not renew(self.sync_id, self.worker, self.seconds):
                        self.lost.set()
                        return
                except Exception as exc:  # the database away a moment: the next try renews
                    log.warning("sync %s: its lease was not renewed: %s", self.sync_id,
                                first_line(exc))

    def check(self) -> None:
        """Raise LeaseLost when another worker took the sync."""
        if self.lost.is_set():
            raise LeaseLost(self.sync_id)


def renew(sync_id: str, worker: str, seconds: int) -> bool:
    """Extend `worker`'s lease on the running sync; False when it is no longer its."""
    with transaction(SERVICE) as session:
        return bool(session.execute(update(GitSync).where(
            GitSync.id == sync_id, GitSync.status == "running", GitSync.worker == worker)
            .values(lease_until=utcnow() + timedelta(seconds=seconds))).rowcount)


def _holding(session, sync_id: str, worker: str) -> GitSync:
    """The sync's row, locked, when `worker` still holds its lease; LeaseLost when not. (Take
    the link's lock first: a worker's claim takes it before the sync's row.)"""
    row = session.scalar(select(GitSync).where(
        GitSync.id == sync_id, GitSync.status == "running", GitSync.worker == worker)
        .with_for_update())
    if row is None:
        raise LeaseLost(sync_id)
    return row


def _claim_next(worker: str) -> str | None:
    """Take the oldest waiting sync whose workspace has none running (or whose worker's lease
    ran out), for `worker` (a token of this taking)."""
    now = utcnow()
    lease = int(current_app.config["GIT_SYNC_LEASE_SECONDS"])
    with transaction(SERVICE) as session:
        candidates = list(session.execute(select(GitSync.id, GitSync.link_id).where(or_(
            GitSync.status == "queued",
            and_(GitSync.status == "running", GitSync.lease_until < now)))
            .order_by(GitSync.created_at, GitSync.id).limit(20)))
    for sync_id, link_id in candidates:
        with transaction(SERVICE) as session:
            # The link's row is the workspace's lock: one sync at a time.
            if session.scalar(select(RepositoryLink.id).where(RepositoryLink.id == link_id)
                              .with_for_update(skip_locked=True)) is None:
                if session.get(RepositoryLink, link_id) is None:
                    _end(session, sync_id, "failed", "the repository was unlinked")
                continue
            busy = session.scalar(select(GitSync.id).where(
                GitSync.link_id == link_id, GitSync.id != sync_id,
                GitSync.status == "running", GitSync.lease_until >= now).limit(1))
            if busy is not None:
                continue
            worn = session.execute(update(GitSync).where(
                GitSync.id == sync_id, GitSync.status == "running", GitSync.lease_until < now,
                GitSync.attempts >= MAX_ATTEMPTS).values(
                status="failed", error=GAVE_UP, lease_until=None, finished_at=now)).rowcount
            taken = 0 if worn else session.execute(update(GitSync).where(
                GitSync.id == sync_id, or_(GitSync.status == "queued", and_(
                    GitSync.status == "running", GitSync.lease_until < now))).values(
                status="running", started_at=now, worker=worker,
                attempts=GitSync.attempts + 1,
                lease_until=now + timedelta(seconds=lease))).rowcount
            if taken:
                return sync_id
        if worn:
            log.warning("sync %s: failed: %s", sync_id, GAVE_UP)
            _announce_failure(sync_id, GAVE_UP)
    return None


def _end(session, sync_id: str, status: str, error: str = "",
         result: dict[str, Any] | None = None, worker: str | None = None) -> bool:
    """End the sync (with `worker`: only while that worker holds it); False when it did not."""
    values: dict[str, Any] = {"result": result} if result is not None else {}
    where = [GitSync.id == sync_id]
    if worker is not None:
        where += [GitSync.status == "running", GitSync.worker == worker]
    return bool(session.execute(update(GitSync).where(*where).values(
        status=status, error=error[:2000], lease_until=None, finished_at=utcnow(),
        **values)).rowcount)


def perform(sync_id: str, worker: str) -> str:
    """Do one sync taken by `worker` (the token of its taking); its final status ("lost"
    when another worker took it meanwhile: then this one wrote nothing)."""
    with transaction(SERVICE) as session:
        sync = session.get(GitSync, sync_id)
        link = session.get(RepositoryLink, sync.link_id) if sync else None
        session.expunge_all()
    if sync is None:
        return ""
    if link is None:
        return _fail(sync, worker, "the repository was unlinked")
    try:
        access = repository_links.access_of(link)
    except SecretUnreadable:
        return _fail(sync, worker, "the repository's credential no longer opens "
                                   "(RUN_SECRETS_KEY changed?): set it again")
    try:
        with _Lease(sync.id, worker) as lease:
            if sync.to_commit is not None:
                # Its changes were written by a worker that stopped before starting every run
                # they asked for: those runs alone are left to do.
                return _finish(sync, lease)
            return _sync(sync, link, access, lease)
    except LeaseLost:
        log.warning("sync %s: no longer this worker's (its lease ran out): another does it",
                    sync.id)
        return "lost"
    except git_mirror.GitError as exc:
        return _fail(sync, worker, git_mirror.clean(access, str(exc)))
    except HubError as exc:
        return _fail(sync, worker, git_mirror.clean(access, exc.message))
    except Exception:  # a database away, a bug: the sync says it failed, the worker goes on
        log.exception("sync %s: failed", sync.id)
        return _fail(sync, worker, "the sync failed on the hub's side; try again")


def _fail(sync: GitSync, worker: str, error: str) -> str:
    """End the sync as failed with `error` and say so in the feed; when that cannot be
    written, end it alone (a sync left running would be taken again at each lease end)."""
    try:
        with ExperimentWrite.open(SERVICE, sync.requested_by) as work:
            if not _end(work.session, sync.id, "failed", error, worker=worker):
                log.warning("sync %s: no longer this worker's: its failure is not kept",
                            sync.id)
                return "lost"
            _feed_failure(work, sync, error)
    except Exception:
        log.exception("sync %s: its failure and feed entry were not written; ending it alone",
                      sync.id)
        try:
            with transaction(SERVICE) as session:
                if not _end(session, sync.id, "failed", error, worker=worker):
                    return "lost"
        except Exception:  # the database away: taken again at its lease end, MAX_ATTEMPTS
            log.exception("sync %s: its failure was not written", sync.id)
            return "failed"
    log.warning("sync %s: failed: %s", sync.id, error)
    return "failed"


def _feed_failure(work: ExperimentWrite, sync: GitSync, error: str) -> None:
    work.feed(sync.org_id, "repository.sync_failed",
              f"A sync of {sync.requested_by_name or 'the repository'} failed: {error}",
              sync.workspace_id, "members",
              audited={"sync_id": sync.id, "error": error, "trigger": sync.trigger})


def _announce_failure(sync_id: str, error: str) -> None:
    """The feed entry of a sync failed already, when it can be written (a log line if not)."""
    try:
        with transaction(SERVICE) as session:
            sync = session.get(GitSync, sync_id)
            session.expunge(sync)
        with ExperimentWrite.open(SERVICE, sync.requested_by) as work:
            _feed_failure(work, sync, error)
    except Exception:
        log.exception("sync %s: the feed entry of its failure was not written", sync_id)


class _File:
    """An experiment file read at the synced commit."""

    def __init__(self, path: str, document: dict[str, Any], depends_on: list[str],
                 commit: git_mirror.CommitInfo):
        self.path, self.document, self.depends_on, self.commit = (path, document, depends_on,
                                                                  commit)


def _sync(sync: GitSync, link: RepositoryLink, access: git_mirror.Access, lease: _Lease
          ) -> str:
    _actor_grant(sync, "write")
    refused = link.url.lower().startswith("file:") and repository_links.url_problem(link.url)
    if refused:
        # Linked under other settings (hosts' addresses are checked again at each fetch).
        raise HubError(f"the repository's URL is refused now: {refused}")
    folder = repository_links.prepared_cache(link)
    head = git_mirror.fetch(folder, access, link.branch)
    if not access.host_keys:
        # The first ssh fetch: the key it met is the one every worker trusts from now on.
        repository_links.pin_host_keys(link, access.seen_host_keys)
    old = link.last_synced_commit
    entries = {entry.path: entry for entry in git_mirror.tree(folder, access, head)}
    everything = list(entries)
    wanted = [p for p in everything if git_mirror.matches(p, link.paths)]
    if len(wanted) > MAX_FILES:
        raise HubError(f"the paths match {len(wanted)} files: a sync reads {MAX_FILES} at most")
    full = old is None or not git_mirror.has_commit(folder, old)
    if full:
        changed = {p: "A" for p in everything}
    else:
        changed = {path: status for status, path in git_mirror.changes(folder, access, old,
                                                                         head)}
    result = {"files_seen": len(wanted), "created": [], "updated": [], "unchanged": [],
              "removed": [], "restored": [], "invalid": [], "runs": []}
    files: list[_File] = []
    max_bytes = current_app.config["EXPERIMENT_MAX_BYTES"]
    to_read = [p for p in wanted if p in changed]
    # Every file's content in one git process, and each one's last commit in another (one per
    # file each, on a repository of many files, took minutes).
    contents = git_mirror.blobs(folder, access, [
        entries[p].sha for p in to_read if _unreadable(entries[p]) is None], max_bytes)
    lease.check()
    read: list[tuple[str, dict[str, Any], list[str]]] = []
    for path in to_read:
        found = _unreadable(entries[path]) or _read(path, contents.get(entries[path].sha),
                                                    max_bytes)
        if isinstance(found, InvalidFile):
            result["invalid"].append(found)
        else:
            read.append((path, *found))
    last = git_mirror.last_commits(folder, access, head, [path for path, _, _ in read])
    lease.check()
    for path, document, depends_on in read:
        commit = last.get(path) or git_mirror.commit_info(folder, access, head, path)
        files.append(_File(path, document, depends_on, commit))
    gone = [p for p, status in changed.items() if status == "D" and git_mirror.matches(
        p, link.paths)]
    head_commit = git_mirror.commit_info(folder, access, head)
    to_run: dict[str, tuple[str, str]] = {}  # experiment id -> (path, reason)
    lease.check()
    with ExperimentWrite.open(SERVICE, sync.requested_by) as work:
        session = work.session
        held = session.scalar(select(RepositoryLink).where(RepositoryLink.id == link.id)
                              .with_for_update())
        _holding(session, sync.id, lease.worker)  # a worker that lost the sync writes nothing
        if held is None or (held.url, held.branch, held.paths) != (link.url, link.branch,
                                                                   link.paths):
            raise HubError("the repository link changed during the sync: sync again")
        for file in files:
            outcome, restored, row = _apply(work, sync, held, file)
            item = SyncedFile(path=file.path, experiment_id=row.id, title=row.title,
                              version=row.version)
            if outcome in ("created", "updated"):
                what = "added" if outcome == "created" else "changed"
                reason = f"file {what}: {file.path}"
                result[outcome].append(item.model_copy(update={"reason": reason}))
                to_run[row.id] = (file.path, reason)
            else:
                result["unchanged"].append(file.path)
            if restored:
                result["restored"].append(item)
        if full:
            # Every synced experiment whose file is not (or no longer) among the files.
            present = set(wanted)
            gone = [p for p in session.scalars(select(Experiment.source_path).where(
                Experiment.workspace_id == held.workspace_id,
                Experiment.source_link_id == held.id,
                Experiment.removed_upstream.is_(False))) if p not in present]
        for path in gone:
            row = session.scalar(select(Experiment).where(
                Experiment.workspace_id == held.workspace_id, Experiment.source_path == path,
                Experiment.source_link_id == held.id).with_for_update())
            if row is not None and not row.removed_upstream:
                row.removed_upstream = True
                row.source_commit = head
                work.forget(*repository_links.experiment_cache_keys(row.id))
                result["removed"].append(SyncedFile(path=path, experiment_id=row.id,
                                                    title=row.title, version=row.version))
        if not full:
            # Only over a known range: a first sync (or one after its commit was lost) sees
            # every path as added, which says nothing about what changed.
            skipped = {f.path for f in result["invalid"]}
            dependants = _dependants(session, held, changed, set(to_run), skipped)
            commits = git_mirror.last_commits(folder, access, head, sorted(
                {hit for _, _, hit in dependants}), since=old)
            for row, glob, hit in dependants:
                reason = f"dependency {glob} changed: {hit}"
                _dependency_version(work, sync, held, row, glob, hit,
                                    commits.get(hit) or head_commit)
                result["updated"].append(SyncedFile(
                    path=row.source_path, experiment_id=row.id, title=row.title,
                    version=row.version, reason=reason))
                to_run[row.id] = (row.source_path, reason)
        held.last_synced_commit, held.last_synced_at = head, utcnow()
        summary = _summary(result)
        work.feed(sync.org_id, "repository.synced",
                  f"{sync.requested_by_name} synced {git_mirror.shown_url(held.url)} "
                  f"({head[:12]}): {summary}", sync.workspace_id, "members",
                  audited={"sync_id": sync.id, "from_commit": old, "to_commit": head,
                           "trigger": sync.trigger, "files_seen": result["files_seen"],
                           "created": [f.path for f in result["created"]],
                           "updated": [f.path for f in result["updated"]],
                           "removed": [f.path for f in result["removed"]],
                           "invalid": [f.path for f in result["invalid"]]})
        commit = {"sha": head_commit.sha, "message": head_commit.message,
                  "author": f"{head_commit.author_name} <{head_commit.author_email}>",
                  "committed_at": head_commit.committed_at.isoformat()}
        if sync.run_changed:
            # Planned with the changes they come from: a worker that stops before starting
            # them leaves them to the next one (which finds nothing changed any more).
            result["runs"] = [SyncRun(experiment_id=experiment_id, path=path, reason=reason,
                                      title=session.get(Experiment, experiment_id).title)
                              for experiment_id, (path, reason) in to_run.items()]
        session.execute(update(GitSync).where(GitSync.id == sync.id).values(
            from_commit=old, to_commit=head, result=_stored(result, commit)))
    git_mirror.keep(folder, access, head)
    log.info("sync %s: %s..%s: %s", sync.id, (old or "")[:12], head[:12], summary)
    return _finish(sync, lease)


def _finish(sync: GitSync, lease: _Lease) -> str:
    """Start the runs the sync planned that are not started (or refused) yet, each once, and
    end it."""
    with transaction(SERVICE) as session:
        planned = (_holding(session, sync.id, lease.worker).result or {}).get("runs") or []
    for index, entry in enumerate(planned):
        if not entry.get("run_id") and not entry.get("refused"):
            lease.check()
            _start_run(sync, lease, index, SyncRun(**entry))
    with transaction(SERVICE) as session:
        if not _end(session, sync.id, "succeeded", worker=lease.worker):
            raise LeaseLost(sync.id)
    return "succeeded"


def _stored(result: dict[str, Any], commit: dict[str, Any]) -> dict[str, Any]:
    return {**SyncResult(**result).model_dump(mode="json"), "commit": commit}


def _unreadable(entry: git_mirror.Entry) -> InvalidFile | None:
    """Why a path the globs match is no experiment file to read, if it is not."""
    message = {"link": "a symbolic link, not a file: the hub reads no file it points to",
               "submodule": "a submodule (a commit of another repository), not a file"
               }.get(entry.kind)
    if message is None and not entry.utf8:
        message = "a file whose name is not UTF-8: rename it"
    if message is None:
        return None
    return InvalidFile(path=entry.path, errors=[{"pointer": "", "message": message}])


def _read(path: str, raw: bytes | int | None, max_bytes: int
          ) -> tuple[dict[str, Any], list[str]] | InvalidFile:
    """A file's document and depends_on globs, or what is wrong with it (`raw`: its content,
    or its size when larger than `max_bytes`)."""
    if raw is None:
        raise HubError(f"git did not read {path} from the repository's copy: sync again")
    if isinstance(raw, int):
        return InvalidFile(path=path, errors=[{"pointer": "", "message":
                                               f"larger than {max_bytes} bytes"}])
    try:
        text = raw.decode("utf-8")
        # An upload's checks: no YAML aliases (they expand), no nesting past the limit, no NUL
        # or NaN (PostgreSQL takes neither), YAML dates as strings.
        if path.lower().endswith(".json"):
            document = inputs.parse_json(text)
        else:
            document = inputs.parse_yaml(text)
    except (UnicodeDecodeError, HubError) as exc:
        said = exc.message if isinstance(exc, HubError) else str(exc)
        message = said.splitlines()[0][:300] if said else type(exc).__name__
        return InvalidFile(path=path, errors=[{"pointer": "", "message":
                                               f"not valid JSON or YAML: {message}"}])
    found = problems(document)
    if found:
        return InvalidFile(path=path, errors=found[:50])
    extension = versions.hub_extension(document) or {}
    depends_on = extension.get("depends_on", [])
    if not isinstance(depends_on, list) or len(depends_on) > MAX_DEPENDS or any(
            git_mirror.glob_problem(g) for g in depends_on):
        return InvalidFile(path=path, errors=[{
            "pointer": "/extensions/depends_on",
            "message": f"the chaoshub extension's depends_on: up to {MAX_DEPENDS} path globs"}])
    return versions.normalized(document), list(dict.fromkeys(depends_on))


def _apply(work: ExperimentWrite, sync: GitSync, link: RepositoryLink, file: _File
           ) -> tuple[str, bool, Experiment]:
    """Make the file an experiment, or a new version of its experiment: what it did
    ("created", "updated", "unchanged"), and whether the file came back after its removal."""
    session = work.session
    row = session.scalar(select(Experiment).where(
        Experiment.workspace_id == link.workspace_id, Experiment.source_path == file.path)
        .with_for_update())
    author = f"{file.commit.author_name} <{file.commit.author_email}>"[:500]
    message = file.commit.message or f"synced from {file.path}"
    now = utcnow()
    if row is None:
        row = Experiment(workspace_id=link.workspace_id, org_id=link.org_id,
                         created_by=sync.requested_by, created_at=now, updated_at=now,
                         version=1)
        store.describe(row, file.document)
        _source(row, link, file)
        session.add(row)
        session.flush()
        store.set_index(session, row)
        _version(session, row, file, sync, message, author)
        work.feed(link.org_id, "experiment.created",
                  f"{sync.requested_by_name} created the experiment {row.title} from "
                  f"{file.path}", link.workspace_id, subject=f"experiment:{row.id}")
        return "created", False, row
    restored = row.removed_upstream or row.source_link_id != link.id
    if store.latest_hash(session, row.id, row.version) == versions.content_hash(file.document):
        if restored or row.depends_on != file.depends_on:
            _source(row, link, file, keep_commit=True)
            work.forget(*repository_links.experiment_cache_keys(row.id))
        return "unchanged", restored, row
    row.version += 1
    row.updated_at = now
    store.describe(row, file.document)
    store.set_index(session, row)
    _source(row, link, file)
    _version(session, row, file, sync, message, author)
    work.forget(*repository_links.experiment_cache_keys(row.id))
    work.feed(link.org_id, "experiment.changed",
              f"{sync.requested_by_name} changed the experiment {row.title} from "
              f"{file.path} (version {row.version})", link.workspace_id,
              subject=f"experiment:{row.id}")
    notifications.announce(session, row.workspace_id, "experiment.changed", {
        "experiment": {"id": row.id, "title": row.title, "version": row.version,
                       "workspace_id": row.workspace_id},
        "changed_by": sync.requested_by_name})
    return "updated", restored, row


def _source(row: Experiment, link: RepositoryLink, file: _File,
            keep_commit: bool = False) -> None:
    row.source_link_id, row.source_repository = link.id, link.url
    row.source_path, row.removed_upstream = file.path, False
    row.depends_on = file.depends_on or None
    if not keep_commit or not row.source_commit:
        row.source_commit = file.commit.sha


def _version(session, row: Experiment, file: _File, sync: GitSync, message: str,
             author: str) -> None:
    version = store.add_version(session, row, file.document, sync.requested_by,
                                sync.requested_by_name, message, row.version)
    version.commit_sha, version.commit_author = file.commit.sha, author


def _dependants(session, link: RepositoryLink, changed: dict[str, str], done: set[str],
                skipped: set[str]) -> list[tuple[Experiment, str, str]]:
    """The synced experiments (locked) whose depends_on globs match a changed path, each with
    its first matching glob and path; but those `done` (a version from their file already)
    and those whose file is `skipped` (invalid at this commit)."""
    rows = session.scalars(select(Experiment).where(
        Experiment.workspace_id == link.workspace_id, Experiment.source_link_id == link.id,
        Experiment.removed_upstream.is_(False), Experiment.depends_on.is_not(None))
        .order_by(Experiment.source_path).with_for_update()).all()
    paths = sorted(changed)
    found = []
    for row in rows:
        if row.id in done or row.source_path in skipped or not row.depends_on:
            continue
        for glob in row.depends_on:
            hit = next((p for p in paths if git_mirror.matches(p, [glob])), None)
            if hit is not None:
                found.append((row, glob, hit))
                break
    return found


def _dependency_version(work: ExperimentWrite, sync: GitSync, link: RepositoryLink,
                        row: Experiment, glob: str, hit: str,
                        commit: git_mirror.CommitInfo) -> None:
    """A new version of the experiment with the same document: a path it depends on changed,
    in `commit` (its sha, author and message on the version)."""
    session = work.session
    row.version += 1
    row.updated_at = utcnow()
    message = f"Dependency {glob} changed ({hit})" + (f": {commit.message}"
                                                      if commit.message else "")
    version = store.add_version(session, row, row.document, sync.requested_by,
                                sync.requested_by_name, message, row.version)
    version.commit_sha = commit.sha
    version.commit_author = f"{commit.author_name} <{commit.author_email}>"[:500]
    work.forget(*repository_links.experiment_cache_keys(row.id))
    # Not experiment.changed: its document is the same; the feed says why the version.
    work.feed(link.org_id, "experiment.dependency_changed",
              f"{sync.requested_by_name} recorded version {row.version} of the experiment "
              f"{row.title}: {hit}, a path it depends on ({glob}), changed in "
              f"{commit.sha[:12]}", link.workspace_id, subject=f"experiment:{row.id}")


def _start_run(sync: GitSync, lease: _Lease, index: int, planned: SyncRun) -> None:
    """Start a hub run of the planned entry's experiment, as the sync's person, checked like
    any run; the run and its id on the entry are written together (the entry is started once
    however often it is tried), or the refusal is."""
    with transaction(SERVICE) as session:
        row = session.get(Experiment, planned.experiment_id)
        if row is not None:
            session.expunge(row)
    run_id = new_id()
    try:
        if row is None:
            raise HubError("the experiment was deleted before its run started")
        claim = auth.run_claim(sync.requested_by, list(auth.RUN_REPORTING_SCOPES), run_id)
        grant = grants.require(grants.by_id(claim, row.workspace_id), "run")
        run_checks.check_start(grant, row.id, row.version, row.document, None)
        options = {"dry": None, "rollback_strategy": None, "configuration": {},
                   "max_seconds": grant.run_policy.max_duration_seconds, "sync_id": sync.id}
        with transaction(SERVICE) as session:
            if not _mark_run(session, sync.id, lease.worker, index, {"run_id": run_id}):
                return
            hub_runs.add_queued(session, row.id, row.workspace_id, row.version, options,
                                sync.requested_by, sync.requested_by_name, run_id=run_id)
    except HubError as exc:
        with transaction(SERVICE) as session:
            _mark_run(session, sync.id, lease.worker, index, {"refused": exc.message})
        return
    queue.enqueue(run_id)
    reason = planned.reason
    record_activity(sync.requested_by, row.org_id, "run.started",
                    f"A sync of {sync.requested_by_name} started a run of {row.title} "
                    f"(version {row.version}): {reason}", row.workspace_id, "executions",
                    f"A run of {row.title} was started",
                    {"run_id": run_id, "experiment_id": row.id, "sync_id": sync.id,
                     "reason": reason}, f"run:{row.id}:{run_id}")


def _mark_run(session, sync_id: str, worker: str, index: int, values: dict[str, str]
              ) -> bool:
    """Write `values` on the sync's planned run `index` (the sync's row locked, while
    `worker` holds it); False when that run was started or refused already."""
    row = _holding(session, sync_id, worker)
    runs = list(row.result["runs"])
    if runs[index].get("run_id") or runs[index].get("refused"):
        return False
    runs[index] = {**runs[index], **values}
    row.result = {**row.result, "runs": runs}
    return True


def _actor_grant(sync: GitSync, action: str):
    """The grant of the person the sync acts for, as dashboard says now: they must still
    `action` in the workspace."""
    try:
        claim = auth.run_claim(sync.requested_by, list(auth.RUN_REPORTING_SCOPES),
                               f"sync-{sync.id}")
        return grants.require(grants.by_id(claim, sync.workspace_id), action)
    except HubError as exc:
        raise HubError(f"{sync.requested_by_name or 'its requester'} may no longer change "
                       f"this workspace's experiments ({exc.message})") from exc


def _summary(result: dict[str, Any]) -> str:
    parts = [f"{len(result[k])} {k}" for k in ("created", "updated", "removed", "invalid")
             if result[k]]
    return ", ".join(parts) or "nothing changed"


# The thread -----------------------------------------------------------------------------------


def start(app: Flask) -> None:
    """Start this process's sync thread (a worker's), once per process."""
    if "experiment" in app.config["CHAOSHUB_SERVICES"]:
        process_thread.start_in(app, EXTENSION, "chaoshub-git-sync", _run)


def stop(app: Flask) -> None:
    """Stop this process's sync thread after its round."""
    process_thread.stop_in(app, EXTENSION)


def _run(app_ref: weakref.ref, stopped: threading.Event) -> None:
    failures = 0
    next_sweep = 0.0
    while not stopped.is_set():
        app = app_ref()  # weak: an app that is gone ends its thread
        if app is None:
            return
        every = float(app.config["GIT_SYNC_POLL_SECONDS"])
        with app.app_context():
            try:
                if time.monotonic() >= next_sweep:
                    removed = repository_links.sweep_cache_folders()
                    if removed:
                        log.info("removed %d repository copies of links gone or changed",
                                 removed)
                    next_sweep = time.monotonic() + SWEEP_SECONDS
                run_due()
                failures = 0
            except Exception as exc:  # the database away: the next round tries again
                failures += 1
                log.warning("syncs wait for the next round: %s", first_line(exc))
        del app
        stopped.wait(min(60.0, every * 2 ** failures))
