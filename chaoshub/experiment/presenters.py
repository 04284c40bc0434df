"""How the experiment service's answers look on the wire, shared by its route modules: the
paths of experiment pages and the JSON shapes of experiments and executions."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from chaoshub.core.web import external_url
from chaoshub.experiment.runs import RunResult, RunView
from chaoshub.experiment.schemas import ExecutionView, ExperimentView, SavedExperiment

# How an execution's outcome reads on pages.
OUTCOME_LABELS = {
    "passed": "Passed",
    "deviated": "Deviated",
    "baseline-not-met": "Steady state not met before the method",
    "probe-error": "A probe failed",
    "aborted": "Aborted",
    "interrupted": "Interrupted",
}
# How run statuses and origins read on pages.
STATUS_LABELS = {
    "queued": "Queued", "running": "Running", "finished": "Finished", "aborted": "Aborted",
    "interrupted": "Interrupted", "refused": "Refused",
}
ORIGIN_LABELS = {"hub": "on the hub", "client": "from a Chaos Toolkit client"}


def experiment_path(org: str, workspace: str, experiment_id: str) -> str:
    """The path of an experiment's page (and of its raw document, for the CLI)."""
    return f"/{quote(org, safe='')}/{quote(workspace, safe='')}/experiment/{experiment_id}"


def serialize(experiment: ExperimentView, with_document: bool = True) -> dict:
    """An experiment as the API shows it: its fields, and its document under `experiment`."""
    data = experiment.model_dump(mode="json", exclude={"document"})
    if with_document:
        data["experiment"] = experiment.document
    return data


def saved_body(saved: SavedExperiment) -> dict:
    """An experiment after a write, saying whether the write made a new version."""
    return {**serialize(saved.experiment), "changed": saved.changed,
            "content_hash": saved.content_hash}


def execution_body(execution: ExecutionView, with_activities: bool = True) -> dict:
    """An execution as the API shows it."""
    exclude = None if with_activities else {"activities"}
    return execution.model_dump(mode="json", exclude=exclude)


def run_path(run: RunView) -> str:
    """The path of a run's page."""
    return f"{experiment_path(run.org, run.workspace, run.experiment_id)}/run/{run.id}"


def run_body(run: RunView) -> dict[str, Any]:
    """A run as the API shows it; each event flat, as the client sent it, with the id of the
    request it came in with."""
    data = run.model_dump(mode="json", exclude={"events"})
    data["events"] = [{"seq": e.seq, "type": e.type,
                       "timestamp": e.timestamp.isoformat() if e.timestamp else None, **e.data,
                       "request_id": e.request_id}
                      for e in run.events]
    data["execution_url"] = (external_url(
        f"{experiment_path(run.org, run.workspace, run.experiment_id)}"
        f"/execution/{run.execution_id}") if run.execution_id else None)
    return data


def result_body(result: RunResult) -> dict[str, Any]:
    """A run as a caller waiting for its end sees it: the run, whether it has ended, and its
    execution's status and outcome with the links to its JUnit XML and report."""
    data = run_body(result.run)
    data["ended"] = result.ended
    execution = result.execution
    data["execution"] = None if execution is None else {
        "id": execution.id, "status": execution.status, "deviated": execution.deviated,
        "outcome": execution.outcome,
        "url": external_url(f"/api/v1/executions/{execution.id}"),
        "page_url": data["execution_url"],
        "junit_url": external_url(f"/api/v1/executions/{execution.id}/junit"),
        "report_url": external_url(f"/api/v1/executions/{execution.id}/report"),
    }
    return data
