"""What answers show of a workspace's syncs with its repository: a sync, its result and a
page of its history."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from chaoshub.core.db import transaction
from chaoshub.core.schemas import Frozen
from chaoshub.experiment.models import GitSync

SERVICE = "experiment"
Status = Literal["queued", "running", "succeeded", "failed"]


class SyncedFile(Frozen):
    """An experiment file a sync created, changed, removed or restored."""

    path: str
    experiment_id: str
    title: str
    version: int
    reason: str | None = None  # why a version was made: its file, or a dependency, changed


class InvalidFile(Frozen):
    """A file that did not parse or validate, and why (each problem's JSON Pointer)."""

    path: str
    errors: list[dict[str, str]]


class SyncRun(Frozen):
    """A run a sync started (`run_id`), or one it was refused (`refused` says why)."""

    experiment_id: str
    title: str
    path: str
    reason: str
    run_id: str | None = None
    refused: str | None = None


class SyncResult(Frozen):
    """What a sync found and did."""

    files_seen: int = 0
    created: list[SyncedFile] = []
    updated: list[SyncedFile] = []
    unchanged: list[str] = []
    removed: list[SyncedFile] = []
    restored: list[SyncedFile] = []
    invalid: list[InvalidFile] = []
    runs: list[SyncRun] = []


class CommitView(Frozen):
    """The commit a sync reached."""

    sha: str
    author: str
    message: str
    committed_at: datetime


class SyncView(Frozen):
    """A sync as answers show it."""

    id: str
    workspace_id: str
    status: Status
    trigger: str
    run_changed: bool
    requested_by_name: str
    from_commit: str | None = None
    to_commit: str | None = None
    commit: CommitView | None = None
    result: SyncResult | None = None
    error: str = ""
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None


class SyncPage(Frozen):
    """A page of a workspace's syncs, newest first, and the next page's cursor."""

    syncs: list[SyncView]
    next_cursor: str | None


class HookAnswer(Frozen):
    """What a push webhook is answered: the sync it queued (or found), or why none."""

    status: str
    id: str | None = None
    reason: str = ""



def sync_view(row: GitSync) -> SyncView:
    """What answers show of a sync."""
    commit = None
    info = (row.result or {}).get("commit") if isinstance(row.result, dict) else None
    if isinstance(info, dict):
        commit = CommitView(**info)
    result = None
    if isinstance(row.result, dict):
        result = SyncResult(**{k: v for k, v in row.result.items() if k != "commit"})
    return SyncView(id=row.id, workspace_id=row.workspace_id, status=row.status,
                    trigger=row.trigger, run_changed=row.run_changed,
                    requested_by_name=row.requested_by_name, from_commit=row.from_commit,
                    to_commit=row.to_commit, commit=commit, result=result, error=row.error,
                    created_at=row.created_at, started_at=row.started_at,
                    finished_at=row.finished_at)


def view_of(sync_id: str) -> SyncView:
    """The sync as answers show it."""
    with transaction(SERVICE) as session:
        return sync_view(session.get(GitSync, sync_id))
