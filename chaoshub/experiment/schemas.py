"""The plain data the experiment service hands to routes and other services."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class ExperimentView(BaseModel):
    """A stored experiment, its latest document, and where it lives."""

    model_config = ConfigDict(frozen=True)

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


class SavedExperiment(BaseModel):
    """The experiment after a write, and whether that write made a new version."""

    model_config = ConfigDict(frozen=True)

    experiment: ExperimentView
    created: bool
    changed: bool
    content_hash: str
    org: str = ""  # the names of its org and workspace, as they are now
    workspace: str = ""


class ExperimentPage(BaseModel):
    """One page of a workspace's experiments, and the cursor of the next one."""

    model_config = ConfigDict(frozen=True)

    experiments: list[ExperimentView]
    next_cursor: str | None = None


class VersionView(BaseModel):
    """One immutable version of an experiment's document."""

    model_config = ConfigDict(frozen=True)

    experiment_id: str
    number: int
    content_hash: str
    author: str
    author_name: str
    message: str
    created_at: datetime
    document: dict[str, Any] | None = None


class ActivityView(BaseModel):
    """One activity of an execution, as indexed."""

    model_config = ConfigDict(frozen=True)

    phase: str
    name: str
    type: str
    status: str | None
    duration: float | None
    tolerance_met: bool | None = None


class ExecutionView(BaseModel):
    """The index of an execution; `activities` is empty for those who may only see its status."""

    model_config = ConfigDict(frozen=True)

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


class PublishedExecution(BaseModel):
    """An execution after a publish, and whether the publish created it (False: a repeat)."""

    model_config = ConfigDict(frozen=True)

    execution: ExecutionView
    created: bool


class ExperimentAt(BaseModel):
    """An experiment with the names of the org and workspace it lives in, as they are now."""

    model_config = ConfigDict(frozen=True)

    experiment: ExperimentView
    org: str
    workspace: str
    visibility: str
