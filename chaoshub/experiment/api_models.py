"""The shapes of the experiment API's requests and answers, as its OpenAPI document shows them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, StringConstraints

from chaoshub.core.openapi import Query, shown_as
from chaoshub.core.paging import PageQuery
from chaoshub.dashboard.service import SearchResults as NamesFound
from chaoshub.experiment.run_waits import MAX_SECONDS as MAX_WAIT_SECONDS
from chaoshub.experiment.runs import RunView
from chaoshub.experiment.schemas import (
    ExecutionComparison,
    ExecutionView,
    ExperimentView,
    ListedExperiment,
    VersionView,
)
from chaoshub.experiment.search import FoundExperiment, FoundRun


class ExperimentDocument(BaseModel):
    """A Chaos Toolkit experiment, as JSON or YAML; the hub checks it whole (422 with paths)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    title: str
    description: str
    tags: list[str] = []
    steady_state_hypothesis: dict[str, Any] | None = Field(
        None, alias="steady-state-hypothesis")
    method: list[dict[str, Any]]
    rollbacks: list[dict[str, Any]] = []


class Journal(RootModel[dict[str, Any]]):
    """A Chaos Toolkit journal, as `chaos run` writes it."""


Experiment = shown_as(ExperimentView, "Experiment", drop=("document",),
                      experiment=(dict[str, Any], ...))


class ExperimentOrDocument(RootModel[Experiment | ExperimentDocument]):  # type: ignore[valid-type]
    """The experiment; its document alone when downloaded (?format=, or an Accept of YAML)."""


ExperimentSummary = shown_as(ListedExperiment, "ExperimentSummary", drop=("document",))
SavedExperiment = shown_as(Experiment, "SavedExperiment", changed=(bool, ...),
                           content_hash=(str, ...))
VersionSummary = shown_as(VersionView, "VersionSummary", drop=("document",))
ExecutionSummary = shown_as(ExecutionView, "ExecutionSummary", drop=("activities",))
Comparison = shown_as(ExecutionComparison, "Comparison", drop=("a", "b"),
                      a=(ExecutionSummary, ...), b=(ExecutionSummary, ...))


class ExperimentList(BaseModel):
    """A page of experiments and the cursor of the next one."""

    experiments: list[ExperimentSummary]  # type: ignore[valid-type]
    next_cursor: str | None


class VersionList(BaseModel):
    """A page of an experiment's versions, newest first, and the cursor of the next one."""

    versions: list[VersionSummary]  # type: ignore[valid-type]
    next_cursor: str | None


class ExecutionList(BaseModel):
    """A page of an experiment's executions, newest first, and the cursor of the next one."""

    executions: list[ExecutionSummary]  # type: ignore[valid-type]
    next_cursor: str | None


class SectionDiff(BaseModel):
    """What changed in one section's activities."""

    added: list[str]
    removed: list[str]
    changed: list[dict[str, Any]]
    reordered: bool


class VersionDiff(RootModel[dict[str, Any]]):
    """Per section (hypothesis, method, rollbacks) a SectionDiff, then other changed fields."""


class ListQuery(PageQuery):
    """Paging and filters of a workspace's experiments."""

    tag: str | None = Field(None, description="only the experiments with this tag")
    search: str | None = Field(None, description=(
        "the start of the title, or of a word of the title or the description"))
    contribution: str | None = Field(None, description=(
        "a quality the experiments tell about (their contributions), at a level other than none"))
    last_run: str | None = Field(None, description=(
        "the outcome of the last run: passed, deviated, baseline-not-met, probe-error, "
        "interrupted, aborted; or none for experiments never run"))
    author: str | None = Field(None, description="the username of the experiment's creator")
    sort: str | None = Field(None, description=(
        "updated (the default): most recently updated first; last_run: most recently run "
        "first, those never run last"))


class DownloadQuery(Query):
    """Ask for the document itself, as a file."""

    format: Literal["json", "yaml", "yml"] | None = Field(None, description=(
        "the experiment's document alone, as a file in this format"))


class WriteQuery(Query):
    """The message of the version a write makes."""

    message: str = Field("", description="what changed, kept with the version it makes")


class DiffQuery(Query):
    """The two versions to compare."""

    model_config = ConfigDict(populate_by_name=True)

    from_: int = Field(alias="from", ge=1, description="the number of the earlier version")
    to: int = Field(ge=1, description="the number of the later version")


class SearchQuery(Query):
    """What to look for: the start of names, titles, tags or run ids."""

    q: str = Field("", description=(
        "the start of what to find, in any case: a username, an org's or workspace's name, an "
        "experiment's title (or a word of it) or tag, a run's id or its experiment's title"))
    limit: int = Field(10, ge=1, description="at most this many of each kind (up to 50)")


SearchResults = shown_as(
    NamesFound, "SearchResults",
    experiments=(list[FoundExperiment], Field(..., description="newest first")),
    runs=(list[FoundRun], Field(..., description="newest first")))
SearchResults.__doc__ = ("What a search found, by kind: people (for signed-in callers), orgs, "
                         "workspaces, experiments and runs, as far as the caller may see them.")


class CompareQuery(Query):
    """The two executions to compare."""

    a: str = Field(min_length=1, description="the id of the earlier execution")
    b: str = Field(min_length=1, description="the id of the later execution")


# Runs ------------------------------------------------------------------------------------


class RunOpening(BaseModel):
    """What the control sends when `chaos run` starts (checked after the credential's scope)."""

    # Fields it does not know are let through: a newer control may send more to an older hub.
    org: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
    workspace: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
    experiment: dict[str, Any]
    experiment_id: str | None = None
    node: str = ""


class RunOpened(BaseModel):
    """A run the hub now follows."""

    id: str
    experiment_id: str
    execution_url: str


class RunEvent(BaseModel):
    """One event of a run: its increasing `seq`, its type, and what the control saw."""

    model_config = ConfigDict(extra="allow")

    seq: int
    type: str
    timestamp: str | None = None
    request_id: str | None = Field(
        None, description="The id of the request the event came in with (a hub run's: the "
        "request that queued it); set by the hub, ignored when sent")


class RunEvents(RootModel[list[RunEvent] | RunEvent]):
    """One event, or a list of them."""


Run = shown_as(RunView, "Run", drop=("events",), events=(list[RunEvent], []),
               execution_url=(str | None, None))
FinishedRun = shown_as(Run, "FinishedRun", execution=(ExecutionSummary, ...))


class WaitQuery(Query):
    """How long to wait for the run to end before answering."""

    wait: int = Field(0, ge=0, le=MAX_WAIT_SECONDS, description=(
        "Seconds (0 to 600) to wait for the run to end before answering: 200 (201 for a run "
        "just started) once it has ended, 202 with the run as it is when the time is up. "
        "RUN_WAIT_MAX_SECONDS may cap it below 600; 0 (the default) answers at once."))


class RunExecution(BaseModel):
    """The execution an ended run became: its status and outcome, and where to read more."""

    id: str
    status: str = Field(description="As chaostoolkit says: completed, failed, aborted or "
                                    "interrupted.")
    deviated: bool
    outcome: str = Field(description="The hub's reading: passed, deviated, baseline-not-met, "
                                     "probe-error, aborted or interrupted.")
    url: str = Field(description="The execution in the API.")
    page_url: str
    junit_url: str = Field(description="Its JUnit XML, for CI test reports.")
    report_url: str = Field(description="Its self-contained HTML report.")


WaitedRun = shown_as(Run, "WaitedRun", ended=(bool, ...),
                     execution=(RunExecution | None, None))
