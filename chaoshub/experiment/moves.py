"""Moving an experiment to another workspace: its rows, and what the orgs' feeds say of it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from chaoshub.core.errors import HubError
from chaoshub.core.models import utcnow
from chaoshub.experiment import grants, store
from chaoshub.experiment.models import Execution, Experiment, Run, Schedule

KIND = "experiment.moved"


def move_rows(session: Session, experiment_id: str, source_id: str, destination_id: str,
              destination_org_id: str) -> Experiment:
    """Put the experiment, its executions and its runs in the destination workspace (its
    versions, tags and schedules follow by the experiment's id; those of its schedules that
    name an environment are disabled)."""
    # Locked: a move racing with a publish or another move sees one workspace or the other.
    row = store.experiment_in(session, experiment_id, source_id)
    # Its update time stays: a move changes where the experiment lives, not its document.
    row.workspace_id, row.org_id = destination_id, destination_org_id
    for table in (Execution, Run):
        session.execute(update(table).where(table.experiment_id == experiment_id)
                        .values(workspace_id=destination_id)
                        .execution_options(synchronize_session=False))
    # An environment is named in its workspace: there, the name is another environment (its
    # own targets and secrets) or none. Its schedules stop until someone enables them again.
    for schedule in session.scalars(select(Schedule).where(
            Schedule.experiment_id == experiment_id, Schedule.enabled.is_(True))):
        if (schedule.options or {}).get("environment"):
            schedule.enabled, schedule.next_fire_at = False, None
            schedule.updated_at = utcnow()
    session.flush()
    return row


def feed_entries(actor: str, title: str, source: Any, destination: Any
                 ) -> list[tuple[str, str, str]]:
    """What to add to the feeds, as (org id, workspace id, summary): `source` and
    `destination` are the workspaces as dashboard refers to them."""
    # Each entry names only the workspace it is filed under: someone with a role in that
    # workspace alone must not learn the name of a private one elsewhere, in this org or another.
    elsewhere = "another workspace" if source.org_id == destination.org_id else "another org"
    return [
        (source.org_id, source.id,
         f"{actor} moved the experiment {title} out of {source.name}, to {elsewhere}"),
        (destination.org_id, destination.id,
         f"{actor} moved the experiment {title} into {destination.name}, from {elsewhere}"),
    ]


def destinations(claim: str, experiment_workspace_id: str) -> list[tuple[str, list[str]]]:
    """The workspaces, by org name, the reader may move an experiment of this workspace to;
    empty when they may not move it at all."""
    try:
        grant = grants.by_id(claim, experiment_workspace_id)
    except HubError:
        return []  # the page still shows, without the form
    found: dict[str, list[str]] = {}
    for ws in grant.move_to:  # empty unless the grant allows writing here
        found.setdefault(ws.org_name, []).append(ws.name)
    return list(found.items())
