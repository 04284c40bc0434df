"""The plain data the experiment service hands to routes and other services."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chaoshub.core.schemas import Frozen


class ExperimentSource(Frozen):
    """Where an experiment synced from git comes from: change it there, not on the hub."""

    repository: str
    path: str
    commit: str | None = None
    removed_upstream: bool = False


class ExperimentView(Frozen):
    """A stored experiment, its latest document, and where it lives."""

    id: str
    title: str
    description: str
    tags: list[str]
    workspace_id: str
    org_id: str
    created_by: str
    created_at: datetime
    updated_at: datetime
    document: dict[str, Any]
    version: int = 1
    # Synced from the workspace's repository (read-only on the hub); None: made on the hub.
    source: ExperimentSource | None = None


class SavedExperiment(Frozen):
    """The experiment after a write, and whether that write made a new version."""

    experiment: ExperimentView
    created: bool
    changed: bool
    content_hash: str
    org: str = ""  # the names of its org and workspace, as they are now
    workspace: str = ""


class ListedExperiment(ExperimentView):
    """An experiment as a workspace listing shows it: with its last run, for those who may see
    the workspace's runs (None otherwise, and for experiments never run)."""

    last_run_at: datetime | None = None
    last_run_outcome: str | None = None
    last_execution_id: str | None = None


class ExperimentPage(Frozen):
    """One page of a workspace's experiments, and the cursor of the next one."""

    experiments: list[ListedExperiment]
    next_cursor: str | None = None


class VersionView(Frozen):
    """One immutable version of an experiment's document."""

    experiment_id: str
    number: int
    content_hash: str
    author: str
    author_name: str
    message: str
    created_at: datetime
    document: dict[str, Any] | None = None
    # A version synced from git: its commit and the commit's author ("name <email>").
    commit_sha: str | None = None
    commit_author: str | None = None


class ActivityView(Frozen):
    """One activity of an execution, as indexed."""

    phase: str
    name: str
    type: str
    status: str | None
    duration: float | None
    tolerance_met: bool | None = None


class ExecutionView(Frozen):
    """The index of an execution; `activities` is empty for those who may only see its status."""

    id: str
    experiment_id: str
    workspace_id: str
    version: int
    status: str
    deviated: bool
    outcome: str
    started_at: datetime | None
    ended_at: datetime | None
    duration: float | None
    node: str
    published_by: str
    published_by_name: str
    content_hash: str
    created_at: datetime
    activities: list[ActivityView] = []
    detailed: bool = True


class VersionPage(Frozen):
    """One page of an experiment's versions, without their documents, and the next cursor."""

    versions: list[VersionView]
    next_cursor: str | None = None


class ExecutionPage(Frozen):
    """One page of an experiment's executions, and the cursor of the next one."""

    executions: list[ExecutionView]
    next_cursor: str | None = None


class PublishedExecution(Frozen):
    """An execution after a publish, and whether the publish created it (False: a repeat)."""

    execution: ExecutionView
    created: bool


class ActivityPair(Frozen):
    """One activity matched across two executions (by phase and name, then by order of its
    repeats); `a` or `b` is None when only the other execution ran it."""

    phase: str
    name: str
    occurrence: int = 1  # 2 for the second run of this name in this phase, ...
    type: str
    a: ActivityView | None
    b: ActivityView | None
    duration_change: float | None = None  # b's duration minus a's, in seconds
    duration_ratio: float | None = None  # b's duration over a's


class ExecutionComparison(Frozen):
    """What changed from execution `a` to execution `b` of one experiment; the activity lists
    are empty for those who may only see the executions' status."""

    experiment_id: str
    a: ExecutionView
    b: ExecutionView
    detailed: bool
    duration_change: float | None = None
    activities: list[ActivityPair] = []
    flipped: list[ActivityPair] = []  # steady-state probes: tolerance met in one, not the other
    status_changed: list[ActivityPair] = []
    slower: list[ActivityPair] = []  # most slowed first
    faster: list[ActivityPair] = []  # most sped up first
    only_in_a: list[ActivityPair] = []
    only_in_b: list[ActivityPair] = []


class ExperimentAt(Frozen):
    """An experiment with the names of the org and workspace it lives in, as they are now."""

    experiment: ExperimentView
    org: str
    workspace: str
    visibility: str
