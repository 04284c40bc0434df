"""The plain data the experiment service hands to routes and other services."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chaoshub.core.schemas import Frozen


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


class SavedExperiment(Frozen):
    """The experiment after a write, and whether that write made a new version."""

    experiment: ExperimentView
    created: bool
    changed: bool
    content_hash: str
    org: str = ""  # the names of its org and workspace, as they are now
    workspace: str = ""


class ExperimentPage(Frozen):
    """One page of a workspace's experiments, and the cursor of the next one."""

    experiments: list[ExperimentView]
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


class PublishedExecution(Frozen):
    """An execution after a publish, and whether the publish created it (False: a repeat)."""

    execution: ExecutionView
    created: bool


class ExperimentAt(Frozen):
    """An experiment with the names of the org and workspace it lives in, as they are now."""

    experiment: ExperimentView
    org: str
    workspace: str
    visibility: str
