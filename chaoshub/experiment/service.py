"""The experiment service's public interface: experiments, checked and kept per workspace."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select

from chaoshub.core import claims
from chaoshub.core.cache import cache
from chaoshub.core.claims import UserClaim
from chaoshub.core.db import transaction
from chaoshub.core.errors import Forbidden, NotFound, Unauthorized, ValidationFailed
from chaoshub.core.transport import ServiceInterface
from chaoshub.dashboard import service as dashboard
from chaoshub.experiment.models import Experiment
from chaoshub.experiment.schemas import ExperimentView
from chaoshub.experiment.validation import problems

SERVICE = "experiment"
interface = ServiceInterface(SERVICE)

READ_SCOPE = "experiments:read"
WRITE_SCOPE = "experiments:write"


@interface.public
def create_experiment(
    claim: str, org: str, workspace: str, document: dict[str, Any]
) -> ExperimentView:
    """Check `document` and keep it in the workspace, if the claim may write there."""
    user = _with_scope(claim, WRITE_SCOPE)
    if user.anonymous:
        raise Unauthorized("sign in or send an API token to add experiments")
    where = dashboard.authorize(claim, org, workspace, "write")
    found = problems(document)
    if found:
        raise ValidationFailed("the experiment is not valid", found)
    with transaction(SERVICE) as session:
        experiment = Experiment(
            workspace_id=where.id,
            org_id=where.org_id,
            title=document["title"],
            description=document["description"],
            tags=list(document.get("tags") or []),
            document=document,
            created_by=user.sub,
        )
        session.add(experiment)
        session.flush()
        return _view(experiment)


@interface.public
def get_experiment(claim: str, experiment_id: str) -> ExperimentView:
    """The experiment, if the claim may read its workspace; NotFound otherwise."""
    _with_scope(claim, READ_SCOPE)
    stored = cache().remember(cache().key(SERVICE, "experiment", experiment_id),
                              lambda: _load(experiment_id))
    if stored is None:
        raise NotFound("no such experiment")
    view = ExperimentView(**stored)
    try:
        dashboard.authorize_workspace(claim, view.workspace_id, "read")
    except (NotFound, Forbidden) as exc:
        raise NotFound("no such experiment") from exc
    return view


def _with_scope(claim: str, scope: str) -> UserClaim:
    user = claims.verify(claim)
    if not user.anonymous and not user.allows(scope):
        raise Forbidden(f"the credential lacks the {scope} scope")
    return user


def _load(experiment_id: str) -> dict | None:
    with transaction(SERVICE) as session:
        experiment = session.get(Experiment, experiment_id)
        return _view(experiment).model_dump(mode="json") if experiment else None


def _view(experiment: Experiment) -> ExperimentView:
    return ExperimentView(
        id=experiment.id,
        title=experiment.title,
        description=experiment.description,
        tags=experiment.tags,
        workspace_id=experiment.workspace_id,
        org_id=experiment.org_id,
        created_by=experiment.created_by,
        created_at=experiment.created_at,
        updated_at=experiment.updated_at,
        document=experiment.document,
    )


@interface.public
def delete_workspace_contents(claim: str, workspace_ids: list[str]) -> int:
    """Delete the experiments of workspaces being deleted; returns how many went."""
    if _with_scope(claim, WRITE_SCOPE).anonymous:
        raise Unauthorized("sign in to delete workspaces")
    # Dashboard calls this before it deletes its own rows, so it can still vouch for each one.
    for workspace_id in workspace_ids:
        dashboard.authorize_workspace(claim, workspace_id, "change_settings")
    with transaction(SERVICE) as session:
        ids = list(session.scalars(
            select(Experiment.id).where(Experiment.workspace_id.in_(workspace_ids))))
        if ids:
            session.execute(delete(Experiment).where(Experiment.id.in_(ids)))
    cache().forget(*(cache().key(SERVICE, "experiment", i) for i in ids))
    return len(ids)
