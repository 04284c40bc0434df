"""The experiment database: rows in, plain dicts out (what the cache keeps)."""

from __future__ import annotations

import hashlib
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import delete, func, insert, or_, select
from sqlalchemy.orm import Session

from chaoshub.core import paging
from chaoshub.core.db import transaction
from chaoshub.core.errors import Conflict, NotFound
from chaoshub.core.models import new_ordered_id, utcnow
from chaoshub.experiment import journals, versions
from chaoshub.experiment.models import (
    Execution,
    ExecutionActivity,
    ExecutionJournal,
    Experiment,
    ExperimentContribution,
    ExperimentTag,
    ExperimentVersion,
)
from chaoshub.experiment.schemas import (
    ActivityView,
    ExecutionView,
    ExperimentSource,
    ExperimentView,
    VersionView,
)

SERVICE = "experiment"
TAG_MAX = 200


def experiment_view(row: Experiment) -> ExperimentView:
    """The plain view of an experiment row."""
    return ExperimentView(
        id=row.id, title=row.title, description=row.description, tags=row.tags,
        workspace_id=row.workspace_id, org_id=row.org_id, created_by=row.created_by,
        created_at=row.created_at, updated_at=row.updated_at, document=row.document,
        version=row.version, source=source_of(row),
    )


def source_of(row: Experiment) -> ExperimentSource | None:
    """Where a synced experiment comes from, while its workspace's repository link stands."""
    if not row.source_link_id or not row.source_path:
        return None
    return ExperimentSource(repository=row.source_repository or "", path=row.source_path,
                            commit=row.source_commit,
                            removed_upstream=bool(row.removed_upstream))


def load_experiment(experiment_id: str) -> dict | None:
    """An experiment as cached JSON, or None; with its document's content hash, which every
    repeat publish compares with."""
    with transaction(SERVICE) as session:
        row = session.get(Experiment, experiment_id)
        if row is None:
            return None
        return {**experiment_view(row).model_dump(mode="json"),
                "content_hash": versions.content_hash(row.document)}


def describe(row: Experiment, document: dict[str, Any]) -> None:
    """Copy the indexed fields of `document` onto its experiment row."""
    row.title = journals.text(document["title"], 100_000)
    row.description = journals.text(document["description"], 100_000)
    row.tags = list(document.get("tags") or [])
    row.document = document


def set_index(session: Session, row: Experiment) -> None:
    """Replace the tag and contribution rows of an experiment with those of its document."""
    session.execute(delete(ExperimentTag).where(ExperimentTag.experiment_id == row.id))
    for tag in dict.fromkeys(journals.text(t, TAG_MAX) for t in row.tags):
        if tag:
            session.add(ExperimentTag(experiment_id=row.id, tag=tag))
    session.execute(delete(ExperimentContribution)
                    .where(ExperimentContribution.experiment_id == row.id))
    for name, level in contributions(row.document).items():
        session.add(ExperimentContribution(experiment_id=row.id, name=name, level=level))


def contributions(document: dict[str, Any]) -> dict[str, str]:
    """The document's contributions by lower-cased name (the schema checked the levels)."""
    found = document.get("contributions")
    if not isinstance(found, dict):
        return {}
    named = {journals.text(name, TAG_MAX).lower(): level for name, level in found.items()
             if isinstance(name, str) and isinstance(level, str)}
    return {name: level for name, level in named.items() if name}


def add_version(session: Session, row: Experiment, document: dict[str, Any], author: str,
                author_name: str, message: str, number: int) -> ExperimentVersion:
    """Record `document` as version `number` of the experiment."""
    version = ExperimentVersion(
        experiment_id=row.id, number=number, content_hash=versions.content_hash(document),
        document=document, author=author, author_name=journals.text(author_name, 500),
        message=journals.text(message, 2000), created_at=utcnow(),
    )
    session.add(version)
    return version


def latest_hash(session: Session, experiment_id: str, number: int) -> str | None:
    """The content hash of one version."""
    return session.scalar(select(ExperimentVersion.content_hash).where(
        ExperimentVersion.experiment_id == experiment_id, ExperimentVersion.number == number))


def version_view(row: ExperimentVersion, with_document: bool) -> VersionView:
    """The plain view of a version row."""
    return VersionView(
        experiment_id=row.experiment_id, number=row.number, content_hash=row.content_hash,
        author=row.author, author_name=row.author_name, message=row.message,
        created_at=row.created_at, document=row.document if with_document else None,
        commit_sha=row.commit_sha, commit_author=row.commit_author,
    )


def delete_experiments(session: Session, ids: list[str]) -> None:
    """Delete experiments with their versions, tags and executions."""
    if not ids:
        return
    executions = select(Execution.id).where(Execution.experiment_id.in_(ids))
    session.execute(delete(ExecutionActivity).where(
        ExecutionActivity.execution_id.in_(executions)))
    session.execute(delete(ExecutionJournal).where(
        ExecutionJournal.execution_id.in_(executions)))
    session.execute(delete(Execution).where(Execution.experiment_id.in_(ids)))
    session.execute(delete(ExperimentVersion).where(ExperimentVersion.experiment_id.in_(ids)))
    session.execute(delete(ExperimentTag).where(ExperimentTag.experiment_id.in_(ids)))
    session.execute(delete(ExperimentContribution)
                    .where(ExperimentContribution.experiment_id.in_(ids)))
    session.execute(delete(Experiment).where(Experiment.id.in_(ids)))


def experiment_in(session: Session, experiment_id: str, workspace_id: str) -> Experiment:
    """The experiment's row, locked until the transaction ends, if it still lives in
    `workspace_id`: a write racing with a move sees one workspace or the other, never both."""
    row = session.scalar(select(Experiment).where(Experiment.id == experiment_id)
                         .with_for_update())
    if row is None:
        raise NotFound("no such experiment")
    if row.workspace_id != workspace_id:
        raise Conflict("the experiment has just moved elsewhere; reload it and try again")
    return row


# Executions --------------------------------------------------------------------------------


def idempotency_key(key: str | None) -> str | None:
    """A key fit for its column: long keys are kept as their hash."""
    if not key:
        return None
    return key if len(key) <= 100 else "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def find_execution(session: Session, experiment_id: str, content_hash: str,
                   key: str | None) -> Execution | None:
    """An execution of this experiment published before with the same content or key."""
    same = Execution.content_hash == content_hash
    if key:
        same = or_(same, Execution.idempotency_key == key)
    return session.scalars(select(Execution).where(
        Execution.experiment_id == experiment_id, same).order_by(Execution.created_at)).first()


def version_of_run(session: Session, experiment_id: str, latest: int,
                   latest_document: dict[str, Any] | None, journal: dict[str, Any],
                   pinned: int | None = None) -> int:
    """The version a journal ran: `pinned` (a hub run's version) when it has the journal's
    document, else the latest one with its experiment's content hash (versions may share a
    document), else the latest (`latest`, whose document the caller may know already: no
    query when it is that one)."""
    ran = journal.get("experiment")
    if isinstance(ran, dict):
        digest = versions.content_hash(versions.normalized(ran, as_run=True))
        if pinned is not None and pinned != latest and digest == latest_hash(
                session, experiment_id, pinned):
            return pinned
        if latest_document is not None and digest == versions.content_hash(latest_document):
            return latest
        number = session.scalar(select(func.max(ExperimentVersion.number)).where(
            ExperimentVersion.experiment_id == experiment_id,
            ExperimentVersion.content_hash == digest))
        if number is not None:
            return number
    return latest


def add_execution(session: Session, columns: dict[str, Any], journal: dict[str, Any]
                  ) -> ExecutionView:
    """Store a journal and its index (`columns`, from `execution_columns`); IntegrityError
    when the experiment has it already (the same content or idempotency key). Its view, from
    the values stored."""
    # Plain INSERTs, the activities in one statement: a journal's twenty-odd rows as ORM
    # objects cost more than the rest of the publish together.
    session.execute(insert(Execution.__table__), [columns])
    session.execute(insert(ExecutionJournal.__table__), [{"execution_id": columns["id"],
                                                          "journal": journal}])
    activities = [{"execution_id": columns["id"], "position": position, **activity}
                  for position, activity in enumerate(journals.activities(journal))]
    if activities:
        # The table's own INSERT: the ORM's would split the rows by which values are None.
        session.execute(insert(ExecutionActivity.__table__), activities)
    # Read back as plain values: ORM objects built only to be read cost a third of a millisecond.
    return execution_view(SimpleNamespace(**columns), [SimpleNamespace(**a) for a in activities])


def execution_columns(experiment_id: str, workspace_id: str, journal: dict[str, Any],
                      content_hash: str, key: str | None, publisher: str,
                      publisher_name: str) -> dict[str, Any]:
    """A new execution's row, but for its `version`, from its journal."""
    return {
        # Time-ordered: an execution's rows (and its journal's and activities') go next to the
        # last ones in the indexes on its id, not onto a random page of each. Its start is
        # the time, the same for every run of a minute: people tell runs apart by its end.
        "id": new_ordered_id(), "experiment_id": experiment_id, "workspace_id": workspace_id,
        "content_hash": content_hash, "idempotency_key": key, "published_by": publisher,
        "published_by_name": journals.text(publisher_name, 500), "created_at": utcnow(),
        **journals.index(journal),
    }


def execution_view(row: Execution | SimpleNamespace,
                   activities: list[ExecutionActivity] | list[SimpleNamespace] | None = None,
                   detailed: bool = True) -> ExecutionView:
    """The plain view of an execution row."""
    return ExecutionView(
        id=row.id, experiment_id=row.experiment_id, workspace_id=row.workspace_id,
        version=row.version, status=row.status, deviated=row.deviated, outcome=row.outcome,
        started_at=row.started_at, ended_at=row.ended_at, duration=row.duration,
        node=row.node if detailed else "", published_by=row.published_by if detailed else "",
        published_by_name=row.published_by_name if detailed else "",
        content_hash=row.content_hash, created_at=row.created_at, detailed=detailed,
        activities=[ActivityView(phase=a.phase, name=a.name, type=a.type, status=a.status,
                                 duration=a.duration, tolerance_met=a.tolerance_met)
                    for a in activities or []] if detailed else [],
    )


def latest_executions(experiment_id: str, limit: int) -> list[dict]:
    """The latest executions of an experiment, newest first, as cached JSON."""
    with transaction(SERVICE) as session:
        rows = session.scalars(select(Execution).where(Execution.experiment_id == experiment_id)
                               .order_by(Execution.created_at.desc(), Execution.id.desc())
                               .limit(limit))
        return [execution_view(r).model_dump(mode="json") for r in rows]


def executions_after(experiment_id: str, after: tuple[datetime, str] | None,
                     limit: int) -> list[dict]:
    """Up to `limit` executions of an experiment past `after`, newest first, as JSON."""
    with transaction(SERVICE) as session:
        query = paging.after(select(Execution).where(Execution.experiment_id == experiment_id),
                             Execution.created_at, Execution.id, after)
        return [execution_view(r).model_dump(mode="json")
                for r in session.scalars(query.limit(limit))]


def load_execution(execution_id: str) -> tuple[Execution, list[ExecutionActivity]] | None:
    """An execution row and its activities, or None."""
    with transaction(SERVICE) as session:
        row = session.get(Execution, execution_id)
        if row is None:
            return None
        activities = list(session.scalars(select(ExecutionActivity).where(
            ExecutionActivity.execution_id == execution_id).order_by(
            ExecutionActivity.position)))
        session.expunge_all()
        return row, activities
