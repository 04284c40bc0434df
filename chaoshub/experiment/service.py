"""The experiment service's public interface: experiments, their versions, and executions.

Every function verifies the claim first, then decides from the caller's grant in the workspace
the experiment lives in (grants.py: asked of dashboard once per request), on every read and
every write.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from chaoshub.auth import service as auth
from chaoshub.core import claims, events, paging
from chaoshub.core.cache import cache
from chaoshub.core.claims import UserClaim
from chaoshub.core.db import transaction
from chaoshub.core.errors import (
    Conflict,
    Forbidden,
    NotFound,
    Unauthorized,
    ValidationFailed,
)
from chaoshub.core.models import utcnow
from chaoshub.core.transport import ServiceInterface
from chaoshub.dashboard import service as dashboard
from chaoshub.experiment import (
    active_runs,
    compare,
    diff,
    environments,
    git_sync_requests,
    git_sync_views,
    grants,
    hub_runs,
    job_runs,
    journals,
    last_runs,
    listing,
    moves,
    notifications,
    overview,
    queue,
    reports,
    repository_links,
    run_checks,
    run_waits,
    runs,
    schedules,
    store,
    trend_store,
    trends,
    versions,
    webhooks,
    worker,
    workers,
)
from chaoshub.experiment import search as experiment_search
from chaoshub.experiment.models import Execution, ExecutionJournal, Experiment, ExperimentVersion
from chaoshub.experiment.schemas import (
    ExecutionComparison,
    ExecutionPage,
    ExecutionView,
    ExperimentAt,
    ExperimentPage,
    ExperimentView,
    PublishedExecution,
    SavedExperiment,
    VersionPage,
    VersionView,
)
from chaoshub.experiment.validation import problems
from chaoshub.experiment.writes import ExperimentWrite, record_activity, write

SERVICE = "experiment"
interface = ServiceInterface(SERVICE)
log = logging.getLogger(__name__)

READ_SCOPE = "experiments:read"
WRITE_SCOPE = "experiments:write"
EXECUTIONS_READ_SCOPE = "executions:read"
EXECUTIONS_WRITE_SCOPE = "executions:write"
RUNS_EXECUTE_SCOPE = "runs:execute"
RUNS = "experiment runs"
LATEST_EXECUTIONS = 50
EXECUTIONS = "experiment executions"  # the listing's name, signed into its cursors
VERSIONS = "experiment versions"
PAGE_MAX = 100
# Dashboard's events after which a workspace's experiments must go.
WORKSPACE_EVENTS = ("org.deleted", "workspace.deleted")
# Every event of dashboard's that experiment handles: those, and an org's kill switch engaged.
DASHBOARD_EVENTS = (*WORKSPACE_EVENTS, dashboard.KILL_SWITCH_ENGAGED,
                    dashboard.KILL_SWITCH_RELEASED)
# What authorize_write checks: writing experiments, or running them (publishing executions).
WriteAction = Literal["write", "run"]
# What list_experiments takes as `last_run`: the hub's outcomes, worst first, and "none".
LAST_RUN_FILTERS = listing.LAST_RUN_FILTERS


# Experiments -------------------------------------------------------------------------------


@interface.public
def create_experiment(
    claim: str, org: str, workspace: str, document: dict[str, Any], message: str = ""
) -> ExperimentView:
    """Check `document` and keep it in the workspace as version 1, if the claim may write."""
    user = _writer(claim, WRITE_SCOPE)
    where = grants.require(grants.by_name(claim, org, workspace), "write")
    document = _checked(document)
    with write(user) as work:
        view = _create(work, user, where.id, where.org_id, document, message).experiment
        work.feed(view.org_id, "experiment.created",
                  f"{user.name} created the experiment {view.title}", view.workspace_id,
                  subject=f"experiment:{view.id}")
    return view


@interface.public
def publish_experiment(
    claim: str, org: str, workspace: str, document: dict[str, Any]
) -> SavedExperiment:
    """What the legacy CLI's publish does: a new experiment, or a new version of the one the
    document's `chaoshub` extension names in this workspace. NotFound where the claim may not
    write."""
    user = _writer(claim, WRITE_SCOPE)
    try:
        where = grants.require(grants.by_name(claim, org, workspace), "write")
    except Forbidden as exc:
        raise NotFound("no such workspace") from exc
    named = versions.hub_extension(document)
    if isinstance(document, dict):
        document = versions.normalized(document, as_run=True)
    experiment_id = named.get("experiment") if named else None
    here = False
    if isinstance(experiment_id, str):
        stored = cache().remember(_experiment_key(experiment_id),
                                  lambda: store.load_experiment(experiment_id))
        here = stored is not None and stored["workspace_id"] == where.id
        if here and isinstance(document, dict):
            digest = versions.content_hash(document)
            # Entries cached before they carried the hash work it out.
            if digest == (stored.get("content_hash")
                          or versions.content_hash(stored["document"])):
                # What every `chaos run` after the first sends: the latest version as it is,
                # valid when it was stored. Nothing to check, write or lock.
                return SavedExperiment(experiment=ExperimentView(**stored), created=False,
                                       changed=False, content_hash=digest,
                                       org=where.org_name, workspace=where.name)
    if here:
        _not_synced(ExperimentView(**stored))
    document = _checked(document)
    with write(user) as work:
        if here:
            saved = _update(work, user, experiment_id, document, "published from the chaos CLI")
        else:
            saved = _create(work, user, where.id, where.org_id, document,
                            "published from the chaos CLI")
        if saved.changed:
            view = saved.experiment
            kind = "experiment.created" if saved.created else "experiment.changed"
            summary = (f"{user.name} created the experiment {view.title}" if saved.created else
                       f"{user.name} changed the experiment {view.title} "
                       f"(version {view.version})")
            work.feed(view.org_id, kind, summary, view.workspace_id,
                      subject=f"experiment:{view.id}")
            if not saved.created:
                _announce_change(work, user, view)
    return saved.model_copy(update={"org": where.org_name, "workspace": where.name})


@interface.public
def update_experiment(
    claim: str, experiment_id: str, document: dict[str, Any], message: str = ""
) -> SavedExperiment:
    """Replace the document: a new version when it changed, the same one when identical."""
    user = _writer(claim, WRITE_SCOPE)
    _not_synced(_experiment(claim, experiment_id, "write")[0])
    document = _checked(document)
    with write(user) as work:
        saved = _update(work, user, experiment_id, document, message)
        if saved.changed:
            view = saved.experiment
            work.feed(view.org_id, "experiment.changed",
                      f"{user.name} changed the experiment {view.title} "
                      f"(version {view.version})", view.workspace_id,
                      subject=f"experiment:{view.id}")
            _announce_change(work, user, view)
    return saved


def _announce_change(work: ExperimentWrite, user: UserClaim, view: ExperimentView) -> None:
    # In the write's transaction: the notification is owed exactly when the version is made.
    notifications.announce(work.session, view.workspace_id, "experiment.changed", {
        "experiment": {"id": view.id, "title": view.title, "version": view.version,
                       "workspace_id": view.workspace_id},
        "changed_by": user.name})


@interface.public
def delete_experiment(claim: str, experiment_id: str) -> int:
    """Delete an experiment with its versions and executions; returns how many executions
    went."""
    user = _writer(claim, WRITE_SCOPE)
    _not_synced(_experiment(claim, experiment_id, "write")[0], "delete")
    with write(user) as work:
        count = len(work.session.scalars(select(Execution.id).where(
            Execution.experiment_id == experiment_id)).all())
        store.delete_experiments(work.session, [experiment_id])
        work.forget(*_cache_keys(experiment_id))
    return count


@interface.public
def move_experiment(claim: str, experiment_id: str, org: str, workspace: str) -> ExperimentAt:
    """Move the experiment, its versions, executions and runs to the workspace `org`/`workspace`,
    if the claim may write experiments both where it is and where it goes."""
    user = _writer(claim, WRITE_SCOPE)
    view, source = _experiment(claim, experiment_id, "write")
    _not_synced(view, "move")
    named = {"org": org, "workspace": workspace}
    missing = [name for name, value in named.items() if not isinstance(value, str) or not value]
    if missing:
        raise ValidationFailed("name the org and workspace to move the experiment to", [
            {"pointer": f"/{name}", "message": "a name is needed"} for name in missing])
    destination = grants.require(grants.by_name(claim, org, workspace), "write")
    if destination.id != source.id:
        with write(user) as work:
            view = store.experiment_view(moves.move_rows(
                work.session, experiment_id, source.id, destination.id, destination.org_id))
            work.forget(*_cache_keys(experiment_id))
            for org_id, workspace_id, summary in moves.feed_entries(user.name, view.title,
                                                                     source, destination):
                # Linked where it went only: the way out names no place it could lead to.
                here = workspace_id == destination.id
                work.feed(org_id, moves.KIND, summary, workspace_id, "members",
                          subject=f"experiment:{experiment_id}" if here else None)
    return ExperimentAt(experiment=view, org=destination.org_name, workspace=destination.name,
                        visibility=destination.visibility)


@interface.public
def get_experiment(claim: str, experiment_id: str) -> ExperimentView:
    """The experiment, if the claim may read its workspace; NotFound otherwise."""
    _with_scope(claim, READ_SCOPE)
    return _experiment(claim, experiment_id, "read")[0]


@interface.public
def get_workspace_experiment(
    claim: str, org: str, workspace: str, experiment_id: str
) -> ExperimentAt:
    """The experiment if it lives in the workspace named `org`/`workspace` and the claim may
    read it there; NotFound otherwise."""
    _with_scope(claim, READ_SCOPE)
    return _located(claim, org, workspace, experiment_id)


@interface.public
def list_experiments(
    claim: str, org: str, workspace: str, tag: str | None = None, search: str | None = None,
    cursor: str | None = None, limit: int = 20, last_run: str | None = None,
    author: str | None = None, sort: str = "updated", contribution: str | None = None,
) -> ExperimentPage:
    """A page of the workspace's experiments, most recently updated first, or with
    `sort="last_run"` most recently run first (those never run last, by update).

    Filters: `tag`; `search`, the start of the title or of a word of the title or the
    description; `contribution`, a quality the experiment tells about at some level other than
    "none" (its `contributions`); `last_run`, the outcome of the last run or
    "none" for never run; `author`, the username of whoever created the experiment (not of
    its latest version: an experiment's author stays who made it, however many edit it).
    Filtering by author needs a signed-in caller, who may look usernames up.
    """
    user = _with_scope(claim, READ_SCOPE)
    listing.check(sort, last_run, tag, search, author, contribution)
    where = _readable_workspace(claim, org, workspace)
    # Last runs are executions: a token without executions:read sees none, as when listing them.
    runs_shown = user.anonymous or user.allows(EXECUTIONS_READ_SCOPE)
    if where.executions == "none":  # status only is enough to see outcomes
        runs_shown = False
    if not runs_shown and (last_run or sort == "last_run"):
        raise Forbidden("the runs of this workspace are not shown to you: list its "
                        "experiments without last_run")
    asked = listing.Listing(where.id, sort, tag or None, search or None, last_run or None,
                            author or None, contribution or None)
    after = listing.decode_cursor(cursor, asked) if cursor else None
    author_id = None
    if asked.author:
        try:
            author_id = auth.find_account(claim, asked.author).id
        except NotFound:
            return ExperimentPage(experiments=[])  # nobody by that name made any
    limit = max(1, min(int(limit), PAGE_MAX))
    with transaction(SERVICE) as session:
        rows, next_cursor = listing.page(session, asked, author_id, after, limit)
        page = [listing.listed(row, runs_shown) for row in rows]
    return ExperimentPage(experiments=page, next_cursor=next_cursor)


# Versions ----------------------------------------------------------------------------------


@interface.public
def list_versions(claim: str, experiment_id: str) -> list[VersionView]:
    """Every version of the experiment, newest first, without their documents."""
    _with_scope(claim, READ_SCOPE)
    _experiment(claim, experiment_id, "read")
    with transaction(SERVICE) as session:
        rows = session.scalars(select(ExperimentVersion).where(
            ExperimentVersion.experiment_id == experiment_id).order_by(
            ExperimentVersion.number.desc()))
        return [store.version_view(r, with_document=False) for r in rows]


@interface.public
def page_versions(claim: str, experiment_id: str, cursor: str | None,
                  limit: int | str | None) -> VersionPage:
    """A page of the experiment's versions, newest first, without their documents."""
    _with_scope(claim, READ_SCOPE)
    _experiment(claim, experiment_id, "read")
    limit = paging.page_size(limit)
    query = select(ExperimentVersion).where(ExperimentVersion.experiment_id == experiment_id)
    if cursor:
        # A version's number is unique in its experiment: the number alone is the position.
        position = paging.decode(cursor, VERSIONS, [experiment_id])
        if len(position) != 1 or type(position[0]) is not int:
            raise paging.bad_cursor()
        query = query.where(ExperimentVersion.number < position[0])
    with transaction(SERVICE) as session:
        rows = list(session.scalars(query.order_by(ExperimentVersion.number.desc())
                                    .limit(limit + 1)))
        views = [store.version_view(r, with_document=False) for r in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        next_cursor = paging.encode(VERSIONS, [experiment_id], [views[-1].number])
    return VersionPage(versions=views, next_cursor=next_cursor)


@interface.public
def get_version(claim: str, experiment_id: str, number: int) -> VersionView:
    """One version of the experiment, with its document."""
    _with_scope(claim, READ_SCOPE)
    _experiment(claim, experiment_id, "read")
    return store.version_view(_version(experiment_id, number), with_document=True)


@interface.public
def diff_versions(
    claim: str, experiment_id: str, from_version: int, to_version: int
) -> dict[str, Any]:
    """The structural diff between two versions of the experiment."""
    _with_scope(claim, READ_SCOPE)
    _experiment(claim, experiment_id, "read")
    old = _version(experiment_id, from_version)
    new = _version(experiment_id, to_version)
    return {"from": from_version, "to": to_version, **diff.diff(old.document, new.document)}


# Executions --------------------------------------------------------------------------------


@interface.public
def publish_execution(
    claim: str, experiment_id: str, journal: dict[str, Any],
    idempotency_key: str | None = None, org: str | None = None,
    workspace: str | None = None,
) -> PublishedExecution:
    """Keep a journal as an execution of the experiment, once: a repeat (same content or same
    idempotency key) returns the first. With `org`/`workspace`, the experiment must live there."""
    return _publish_execution(claim, experiment_id, journal, idempotency_key, org, workspace)


def _publish_execution(claim: str, experiment_id: str, journal: dict[str, Any],
                       idempotency_key: str | None = None, org: str | None = None,
                       workspace: str | None = None, pinned: int | None = None
                       ) -> PublishedExecution:
    """`publish_execution`, for a run of version `pinned` when given (versions may share a
    document: the run's own is the one it ran)."""
    user = _writer(claim, EXECUTIONS_WRITE_SCOPE)
    at = (org or "", workspace or "") if org is not None or workspace is not None else None
    view, _ = _experiment(claim, experiment_id, "run", at=at)
    found = journals.problems(journal)
    if found:
        raise ValidationFailed("the journal is not valid", found)
    digest = versions.content_hash(journal)
    key = store.idempotency_key(idempotency_key)
    columns = store.execution_columns(experiment_id, view.workspace_id, journal, digest, key,
                                      user.sub, user.name)
    try:
        with write(user) as work:
            session = work.session
            # Locked where it was authorized (a move cannot slip in before the insert), and its
            # last run kept, in one statement.
            latest = last_runs.record(session, experiment_id, view.workspace_id, columns["id"],
                                      columns["created_at"], columns["outcome"])
            if latest is None:
                store.experiment_in(session, experiment_id, view.workspace_id)  # says why
                raise NotFound("no such experiment")
            columns["version"] = store.version_of_run(
                session, experiment_id, latest,
                view.document if view.version == latest else None, journal, pinned)
            # No look for an earlier copy first: the unique keys refuse a repeat (rare: a
            # retry), and the new journal (every other publish) saves the query.
            published = PublishedExecution(execution=store.add_execution(session, columns,
                                                                         journal),
                                           created=True)
            work.forget(_executions_key(experiment_id))
            outcome = published.execution.outcome
            work.feed(view.org_id, "execution.published",
                      f"{user.name} published a run of {view.title}: {outcome}",
                      view.workspace_id, "executions",
                      f"A run of {view.title} was published: {outcome}",
                      subject=f"execution:{experiment_id}:{columns['id']}")
    except IntegrityError:
        # A repeat (the same content or idempotency key), perhaps racing in from a retry: the
        # first one is the answer.
        with transaction(SERVICE) as session:
            earlier = store.find_execution(session, experiment_id, digest, key)
            if earlier is None:
                raise
            published = PublishedExecution(execution=store.execution_view(earlier),
                                           created=False)
    return published


@interface.public
def list_executions(claim: str, experiment_id: str) -> list[ExecutionView]:
    """The latest executions of the experiment, newest first (status only for outsiders who
    may see no more)."""
    _with_scope(claim, EXECUTIONS_READ_SCOPE)
    _, where = _experiment(claim, experiment_id, "read")
    detailed = grants.executions_shown(where)
    listed = cache().remember(_executions_key(experiment_id),
                              lambda: store.latest_executions(experiment_id, LATEST_EXECUTIONS))
    views = [ExecutionView(**e) for e in listed]
    return views if detailed else [_status_only(v) for v in views]


@interface.public
def page_executions(claim: str, experiment_id: str, cursor: str | None,
                    limit: int | str | None) -> ExecutionPage:
    """A page of the experiment's executions, newest first, and the next page's cursor."""
    _with_scope(claim, EXECUTIONS_READ_SCOPE)
    _, where = _experiment(claim, experiment_id, "read")
    limit = paging.page_size(limit)
    after = paging.timed(paging.decode(cursor, EXECUTIONS, [experiment_id])) if cursor else None
    views = [ExecutionView(**e) for e in store.executions_after(experiment_id, after, limit + 1)]
    next_cursor = None
    if len(views) > limit:
        views, last = views[:limit], views[limit - 1]
        next_cursor = paging.encode(EXECUTIONS, [experiment_id],
                                    [last.created_at.isoformat(), last.id])
    if not grants.executions_shown(where):
        views = [_status_only(v) for v in views]
    return ExecutionPage(executions=views, next_cursor=next_cursor)


@interface.public
def get_execution(claim: str, execution_id: str) -> ExecutionView:
    """One execution's index with its activities, if the claim may read its experiment."""
    _with_scope(claim, EXECUTIONS_READ_SCOPE)
    loaded = store.load_execution(execution_id)
    if loaded is None:
        raise NotFound("no such execution")
    row, activities = loaded
    _, where = _experiment(claim, row.experiment_id, "read", missing="no such execution")
    if grants.executions_shown(where):
        return store.execution_view(row, activities)
    return store.execution_view(row, detailed=False)


@interface.public
def get_journal(claim: str, execution_id: str) -> dict[str, Any]:
    """The journal of an execution as it was published."""
    view = get_execution(claim, execution_id)
    if not view.detailed:
        raise NotFound("no such journal")
    journal = _stored_journal(execution_id)
    if journal is None:  # the execution is there: retention removed its journal
        raise NotFound("its journal is no longer kept (RETENTION_JOURNAL_DAYS)")
    return journal


@interface.public
def get_execution_report(claim: str, execution_id: str) -> reports.ExecutionReport:
    """An execution as its report shows it: its index, and its steady states, method and
    rollbacks from its journal (its status only, for outsiders who may see no more)."""
    execution = get_execution(claim, execution_id)
    view, where = _experiment(claim, execution.experiment_id, "read",
                              missing="no such execution")
    report = reports.ExecutionReport(experiment_title=view.title, org=where.org_name,
                                     workspace=where.name, execution=execution)
    if not execution.detailed:
        return report
    journal = _stored_journal(execution_id)
    if journal is None:  # retention removed it: the execution's summary still shows
        return report.model_copy(update={"journal_kept": False})
    return report.model_copy(update={"sections": reports.sections(journal),
                                     "interruption": reports.interruption(journal)})


@interface.public
def get_execution_junit(claim: str, execution_id: str, hub_url: str = "") -> str:
    """The execution as a JUnit XML document, its page's address under `hub_url` among the
    suite's properties; NotFound where its journal would be (outsiders who may see its status
    only, a journal that retention removed)."""
    report = get_execution_report(claim, execution_id)
    if not report.execution.detailed:
        raise NotFound("no such report: only this execution's status is shown to you")
    if not report.journal_kept:
        raise NotFound("its journal is no longer kept (RETENTION_JOURNAL_DAYS)")
    url = f"{hub_url}{reports.execution_path(report)}" if hub_url else ""
    return reports.junit_xml(report, url)


@interface.public
def compare_executions(
    claim: str, experiment_id: str, execution_a: str, execution_b: str
) -> ExecutionComparison:
    """What changed from execution `a` to execution `b` of the experiment: probes that flipped,
    activities whose status changed, that got slower or faster, or ran in only one."""
    _with_scope(claim, EXECUTIONS_READ_SCOPE)
    _, where = _experiment(claim, experiment_id, "read")
    detailed = grants.executions_shown(where)
    views = []
    for execution_id in (execution_a, execution_b):
        loaded = store.load_execution(execution_id)
        # Another experiment's execution is as unknown here as one that does not exist.
        if loaded is None or loaded[0].experiment_id != experiment_id:
            raise NotFound("no such execution of this experiment")
        row, activities = loaded
        views.append(store.execution_view(row, activities) if detailed
                     else store.execution_view(row, detailed=False))
    return compare.compare(*views)


def handle_dashboard_event(session: Session, event: events.Event) -> None:
    """Apply one of DASHBOARD_EVENTS in the session of its delivery."""
    # No claim to check: the event, fetched from dashboard as this service, is the authority.
    if event.type == dashboard.KILL_SWITCH_ENGAGED:
        hub_runs.abort_in_workspaces(session, list(event.payload["workspace_ids"]),
                                     f"the org's kill switch: {event.payload['reason']}")
        _announce_kill_switch(session, event, "killswitch.engaged")
    elif event.type == dashboard.KILL_SWITCH_RELEASED:
        _announce_kill_switch(session, event, "killswitch.released")
    else:
        delete_workspace_contents(session, event)


def _announce_kill_switch(session: Session, event: events.Event, type: str) -> None:
    # To every workspace of the org: each workspace's webhooks say whether they hear of it.
    for workspace_id in event.payload.get("workspace_ids") or []:
        notifications.announce(session, workspace_id, type, {
            "org_id": event.subject.id, "workspace_id": workspace_id,
            "reason": event.payload.get("reason") or "", "by": event.payload.get("by") or "",
            "at": event.occurred_at})


def delete_workspace_contents(session: Session, event: events.Event) -> None:
    """Delete the experiments (with their versions, executions and runs) of the workspaces a
    WORKSPACE_EVENTS event of dashboard's says are gone, in the session of its delivery."""
    # No claim to check: the event, fetched from dashboard as this service, is the authority.
    if event.type == "org.deleted":
        workspace_ids = list(event.payload["workspace_ids"])
    else:
        workspace_ids = [event.subject.id]
    with ExperimentWrite.joining(session) as work:
        ids = list(session.scalars(
            select(Experiment.id).where(Experiment.workspace_id.in_(workspace_ids))))
        store.delete_experiments(session, ids)
        environments.delete_workspaces(session, workspace_ids)
        webhooks.delete_workspaces(session, workspace_ids)
        repository_links.delete_workspaces(session, workspace_ids)
        for experiment_id in ids:
            work.forget(*_cache_keys(experiment_id))


@interface.public
def authorize_write(
    claim: str, action: WriteAction, org: str | None = None, workspace: str | None = None,
    experiment_id: str | None = None, run_id: str | None = None,
) -> None:
    """Raise what a write ("write" an experiment, or "run": publish executions) at the place
    a URL names would raise for this claim, so that a route parses no body for a caller who
    may not write there."""
    _writer(claim, WRITE_SCOPE if action == "write" else EXECUTIONS_WRITE_SCOPE)
    if run_id is not None:
        _reported(claim, run_id)
    elif experiment_id is not None:
        _experiment(claim, experiment_id, action,
                    at=None if org is None else (org, workspace or ""))
    elif org is not None:
        grants.require(grants.by_name(claim, org, workspace or ""), action)


# Internals ---------------------------------------------------------------------------------


def _with_scope(claim: str, scope: str) -> UserClaim:
    user = claims.verify(claim)
    if not user.anonymous and not user.allows(scope):
        raise Forbidden(f"the credential lacks the {scope} scope")
    return user


def _not_synced(view: ExperimentView, what: str = "change") -> None:
    """Conflict for a write to an experiment synced from git: it changes in its repository
    (one whose file was removed there may be deleted on the hub)."""
    if view.source is not None and not (what == "delete" and view.source.removed_upstream):
        raise Conflict(f"this experiment is synced from {view.source.repository} "
                       f"({view.source.path}): {what} it there, and sync")


def _writer(claim: str, scope: str) -> UserClaim:
    user = _with_scope(claim, scope)
    if user.anonymous:
        raise Unauthorized("sign in or send an API token to change experiments")
    return user


def _checked(document: Any) -> dict[str, Any]:
    found = problems(document)
    if found:
        raise ValidationFailed("the experiment is not valid", found)
    return versions.normalized(document)


def _experiment_key(experiment_id: str) -> str:
    return cache().key(SERVICE, "experiment", experiment_id)


def _executions_key(experiment_id: str) -> str:
    return cache().key(SERVICE, "executions", experiment_id)


def _cache_keys(experiment_id: str) -> tuple[str, str]:
    return _experiment_key(experiment_id), _executions_key(experiment_id)


def _experiment(claim: str, experiment_id: str, action: str,
                missing: str = "no such experiment", at: tuple[str, str] | None = None):
    """The experiment and its workspace, if the claim may `action` there.

    NotFound when it does not exist or the caller may not see it; Forbidden when they may see
    it but not `action`. With `at` (an org's and a workspace's names, from a URL) the
    experiment must also live there.
    """
    where = _readable_workspace(claim, *at) if at is not None else None
    view = cache().derived(("experiment", experiment_id), lambda: _stored_view(experiment_id))
    if view is None:
        raise NotFound(missing)
    if where is not None:
        # Read is granted on the workspace in the URL: the experiment only has to be there.
        if view.workspace_id != where.id:
            raise NotFound(missing)
    else:
        try:
            where = grants.by_id(claim, view.workspace_id)
        except (NotFound, Forbidden) as exc:
            raise NotFound(missing) from exc
    return view, grants.require(where, action)


def _stored_view(experiment_id: str) -> ExperimentView | None:
    # Decoded and built once per process while no cached entry changes: `chaos run` reads the
    # same experiment again and again.
    stored = cache().remember(_experiment_key(experiment_id),
                              lambda: store.load_experiment(experiment_id))
    return None if stored is None else ExperimentView(**stored)


def _readable_workspace(claim: str, org: str, workspace: str):
    try:
        return grants.by_name(claim, org, workspace)
    except Forbidden as exc:
        raise NotFound("no such workspace") from exc


def _located(claim: str, org: str, workspace: str, experiment_id: str) -> ExperimentAt:
    view, where = _experiment(claim, experiment_id, "read",
                              "no such experiment in this workspace", at=(org, workspace))
    return ExperimentAt(experiment=view, org=where.org_name, workspace=where.name,
                        visibility=where.visibility)


def _status_only(view: ExecutionView) -> ExecutionView:
    return view.model_copy(update={"node": "", "published_by": "", "published_by_name": "",
                                   "activities": [], "detailed": False})


def _stored_journal(execution_id: str) -> dict[str, Any] | None:
    with transaction(SERVICE) as session:
        stored = session.get(ExecutionJournal, execution_id)
        return None if stored is None else stored.journal


def _version(experiment_id: str, number: int) -> ExperimentVersion:
    if not 1 <= number <= 2**31 - 1:  # past an INTEGER column's range no version can be
        raise NotFound(f"no version {number} of this experiment")
    with transaction(SERVICE) as session:
        row = session.scalar(select(ExperimentVersion).where(
            ExperimentVersion.experiment_id == experiment_id,
            ExperimentVersion.number == number))
        if row is None:
            raise NotFound(f"no version {number} of this experiment")
        session.expunge(row)
        return row


def _create(work: ExperimentWrite, user: UserClaim, workspace_id: str, org_id: str,
            document: dict[str, Any], message: str) -> SavedExperiment:
    now, session = utcnow(), work.session
    row = Experiment(workspace_id=workspace_id, org_id=org_id, created_by=user.sub,
                     created_at=now, updated_at=now, version=1)
    store.describe(row, document)
    session.add(row)
    session.flush()
    store.set_index(session, row)
    version = store.add_version(session, row, document, user.sub, user.name,
                                message or "created", 1)
    view = store.experiment_view(row)
    return SavedExperiment(experiment=view, created=True, changed=True,
                           content_hash=version.content_hash)


def _update(work: ExperimentWrite, user: UserClaim, experiment_id: str,
            document: dict[str, Any], message: str) -> SavedExperiment:
    digest, session = versions.content_hash(document), work.session
    # Locked so that two writers never both make version n+1.
    row = session.scalar(select(Experiment).where(Experiment.id == experiment_id)
                         .with_for_update())
    if row is None:
        raise NotFound("no such experiment")
    if store.latest_hash(session, row.id, row.version) == digest:
        return SavedExperiment(experiment=store.experiment_view(row), created=False,
                               changed=False, content_hash=digest)
    row.version += 1
    row.updated_at = utcnow()
    store.describe(row, document)
    store.set_index(session, row)
    store.add_version(session, row, document, user.sub, user.name, message, row.version)
    view = store.experiment_view(row)
    work.forget(*_cache_keys(experiment_id))
    return SavedExperiment(experiment=view, created=False, changed=True, content_hash=digest)



# Runs reported by Chaos Toolkit clients ----------------------------------------------------


@interface.public
def create_run(
    claim: str, org: str, workspace: str, document: dict[str, Any],
    experiment_id: str | None = None, node: str = "", idempotency_key: str | None = None,
) -> runs.RunView:
    """Open a run of `document` in the workspace: published as the legacy CLI does, or linked
    to the experiment `experiment_id` (or its `chaoshub` extension) names there. Opened again
    with the same `idempotency_key` (a retry), it is the run opened the first time."""
    user = _writer(claim, EXECUTIONS_WRITE_SCOPE)
    try:
        where = grants.require(grants.by_name(claim, org, workspace), "run")
    except Forbidden as exc:
        raise NotFound("no such workspace") from exc
    # The shapes of document, experiment_id and node are the API model's to check (RunOpening),
    # and the transport's for a remote call (these type hints).
    linked = _run_experiment(claim, user, where, document, experiment_id)
    run_id = runs.add_run(linked, where.id, user.sub, user.name, node,
                          store.idempotency_key(idempotency_key))
    return runs.run_view(runs.load_run(run_id), where.org_name, where.name, [])


@interface.public
def record_run_events(claim: str, run_id: str, events: list[Any]) -> runs.EventsRecorded:
    """Keep a batch of a run's events; a `seq` sent before is skipped, so resending is safe."""
    row, _ = _reported(claim, run_id)
    found = runs.event_problems(events)
    if found:
        raise ValidationFailed("the events are not valid", found)
    return runs.record_events(row.id, job_runs.masked(row, events))


@interface.public
def finish_run(claim: str, run_id: str, journal: dict[str, Any]) -> runs.FinishedRun:
    """Publish the run's journal as its execution (as `publish_execution` does) and close the
    run; a repeat returns the same execution."""
    row, where = _reported(claim, run_id)
    runs.refuse_late_journal(row)  # before it becomes an execution (mark_finished checks again)
    # Keyed by the run: a journal resent with other bytes (a new serialisation) is the same one.
    published = _publish_execution(claim, row.experiment_id, job_runs.masked(row, journal),
                                   idempotency_key=f"run:{row.id}", pinned=row.version)
    finished = runs.mark_finished(row.id, published.execution.id, published.execution.outcome)
    if row.desired != "run":
        # Asked to stop (an abort, the org's kill switch): it ended aborted, whatever it says.
        hub_runs.settle(row.id, "aborted")
        finished = runs.load_run(row.id)
    return runs.FinishedRun(run=runs.run_view(finished, where.org_name, where.name, []),
                            execution=published.execution, created=published.created)


@interface.public
def get_run(claim: str, run_id: str) -> runs.RunView:
    """A run with its events so far (its status only, for outsiders who may see no more)."""
    _with_scope(claim, EXECUTIONS_READ_SCOPE)
    row, where = _run(claim, run_id, "read")
    detailed = grants.executions_shown(where, "no such run")
    events = runs.load_events(row.id) if detailed else []
    return runs.run_view(row, where.org_name, where.name, events, detailed)


@interface.public
def get_run_state(claim: str, run_id: str) -> runs.RunState:
    """What the hub wants of a run: read by the client that runs it."""
    user = claims.verify(claim)
    # The client that runs the experiment holds a token to write executions, maybe no more.
    if not user.anonymous and not (user.allows(EXECUTIONS_READ_SCOPE)
                                   or user.allows(EXECUTIONS_WRITE_SCOPE)):
        raise Forbidden(f"the credential lacks the {EXECUTIONS_READ_SCOPE} scope")
    row, _ = _run(claim, run_id, "read")
    return runs.RunState(desired=row.desired)


def _run(claim: str, run_id: str, action: str):
    """The run and its workspace, if the claim may `action` on its experiment; NotFound
    otherwise (the run's existence stays as secret as its experiment's)."""
    row = runs.load_run(run_id)
    if row is None:
        raise NotFound("no such run")
    _, where = _experiment(claim, row.experiment_id, "read", missing="no such run")
    return row, grants.require(where, action)


def _reported(claim: str, run_id: str):
    """The run and its workspace, if the claim may report its events and journal: a run on the
    hub only by the claim made for it (its worker's, its Job's token), never by a member's."""
    user = _writer(claim, EXECUTIONS_WRITE_SCOPE)
    row, where = _run(claim, run_id, "run")
    if user.run != row.id and (user.run is not None or row.origin == "hub"):
        raise Forbidden("a run on the hub is reported by its worker alone; abort it to stop it")
    return row, where


def _run_experiment(claim: str, user: UserClaim, where, document: dict[str, Any],
                    experiment_id: str | None) -> str:
    """The id of the experiment a new run belongs to: the one named (by `experiment_id` or the
    document's `chaoshub` extension) or with the same content in the workspace, else a new one.
    The document is published as the legacy CLI does when the credential may write
    experiments."""
    org, workspace = where.org_name, where.name
    if experiment_id is not None:
        _located(claim, org, workspace, experiment_id)
        document = versions.with_hub_extension(
            document, {"name": versions.HUB_EXTENSION, "experiment": experiment_id})
    named = (versions.hub_extension(document) or {}).get("experiment")
    if isinstance(named, str):
        try:
            named = _located(claim, org, workspace, named).experiment.id
        except NotFound:
            named = None
    else:
        named = None
    if named is None:
        # Running the same file again reports to the experiment it made the first time.
        digest = versions.content_hash(versions.normalized(document, as_run=True))
        named = runs.experiment_with_content(where.id, digest)
        if named is not None:
            return named
    if user.allows(WRITE_SCOPE):
        return publish_experiment(claim, org, workspace, document).experiment.id
    if named is not None:
        return named
    raise Forbidden(f"publishing a new experiment needs the {WRITE_SCOPE} scope; send "
                    "experiment_id to run one the workspace already has")


# Runs on the hub -------------------------------------------------------------------------


@interface.public
def list_workers(claim: str) -> list[workers.WorkerView]:
    """The live workers and the Chaos Toolkit extensions each has (to signed-in people)."""
    if claims.verify(claim).anonymous:
        raise Unauthorized("sign in first")
    return workers.live()


def serve_runs(app, burst: bool = False, parent: int | None = None) -> None:
    """Run the experiments queued on the hub until stopped (`chaoshub worker`, or the worker
    `chaoshub run` starts beside its server, `parent`)."""
    worker.serve(app, burst, parent)


@interface.public
def start_run(claim: str, experiment_id: str, version: int | None = None,
              dry: runs.Dry | None = None,
              rollback_strategy: runs.RollbackStrategy | None = None,
              configuration: dict[str, runs.ConfigurationValue] | None = None,
              environment: str | None = None) -> runs.RunView:
    """Queue a run of the experiment (its latest version, or `version`) for the hub's workers,
    in one of the workspace's environments when `environment` names one."""
    user = _with_scope(claim, RUNS_EXECUTE_SCOPE)
    if user.anonymous:
        raise Unauthorized("sign in to run experiments")
    view, where = _experiment(claim, experiment_id, "run")
    # The run keeps which environment, never its values: the worker reads them when it starts.
    chosen = environments.for_run(where, environment) if environment is not None else None
    number = view.version if version is None else version
    run_checks.check_start(where, view.id, number, _version(experiment_id, number).document,
                           dry)
    options = {"dry": dry, "rollback_strategy": rollback_strategy,
               "configuration": configuration or {},
               "max_seconds": where.run_policy.max_duration_seconds}
    if chosen is not None:
        options.update(environment_id=chosen.id, environment=chosen.name)
    run_id = hub_runs.queue_run(view.id, view.workspace_id, number, options, user.sub,
                                user.name)
    queue.enqueue(run_id)
    _record_run_activity(user, view, "run.started",
                         f"{user.name} started a run of {view.title} (version {number})",
                         f"A run of {view.title} was started", run_id)
    return runs.run_view(runs.load_run(run_id), where.org_name, where.name, [])


@interface.public
def abort_run(claim: str, run_id: str, rollbacks: bool = True) -> runs.RunView:
    """Ask a queued or running run to stop, its rollbacks played unless `rollbacks` is False."""
    user = _with_scope(claim, RUNS_EXECUTE_SCOPE)
    row, where = _run(claim, run_id, "run")
    if row.status not in hub_runs.ACTIVE:
        raise Conflict(f"the run has ended ({row.status}): there is nothing to abort")
    hub_runs.request_abort(row.id, rollbacks, f"aborted by {user.name}")
    view, _ = _experiment(claim, row.experiment_id, "read", missing="no such run")
    _record_run_activity(user, view, "run.aborted",
                         f"{user.name} aborted a run of {view.title}"
                         + ("" if rollbacks else " without its rollbacks"),
                         f"A run of {view.title} was aborted", row.id)
    return runs.run_view(runs.load_run(row.id), where.org_name, where.name, [])


@interface.public
def page_runs(claim: str, experiment_id: str, cursor: str | None = None,
              limit: int | str | None = None) -> runs.RunPage:
    """A page of the experiment's runs (on the hub and from clients), newest first."""
    _with_scope(claim, EXECUTIONS_READ_SCOPE)
    _, where = _experiment(claim, experiment_id, "read")
    detailed = grants.executions_shown(where, "no such experiment")
    rows, next_cursor = hub_runs.runs_page(experiment_id, cursor, RUNS, limit)
    return runs.RunPage(
        runs=[runs.run_view(r, where.org_name, where.name, [], detailed) for r in rows],
        next_cursor=next_cursor)


@interface.public
def watch_run(claim: str, run_id: str) -> runs.RunView:
    """A run without its events, if the claim may read it (`detailed` False for outsiders who
    may see its status only): what a viewer of its live events is checked against."""
    _with_scope(claim, EXECUTIONS_READ_SCOPE)
    row, where = _run(claim, run_id, "read")
    detailed = grants.executions_shown(where, "no such run")
    return runs.run_view(row, where.org_name, where.name, [], detailed)


def wait_for_run(claim: str, run_id: str, seconds: float) -> runs.RunResult:
    """The run once it has ended, or as it is after `seconds`, with its events (for those who
    may see them) and its execution's status and outcome. The claim is checked before the wait
    (a long wait outlives it); what is answered after is the same run."""
    _with_scope(claim, EXECUTIONS_READ_SCOPE)
    row, where = _run(claim, run_id, "read")
    detailed = grants.executions_shown(where, "no such run")
    if seconds > 0:
        user = claims.verify(claim)
        row = run_waits.until_ended(row.id, seconds, None if user.anonymous else user.sub)
        if row is None:
            raise NotFound("no such run")  # deleted with its experiment while we waited
    execution = None
    if row.execution_id and (loaded := store.load_execution(row.execution_id)) is not None:
        execution = store.execution_view(loaded[0], detailed=False)
    view = runs.run_view(row, where.org_name, where.name,
                         runs.load_events(row.id) if detailed else [], detailed)
    return runs.RunResult(run=view, ended=row.status in hub_runs.ENDED, execution=execution)


@interface.public
def runs_in_progress(claim: str, org: str, workspace: str) -> list[active_runs.ActiveRun]:
    """The workspace's queued and running runs, newest first; none for those who may not see
    its runs."""
    user = _with_scope(claim, READ_SCOPE)
    where = _readable_workspace(claim, org, workspace)
    if where.executions == "none" or not (user.anonymous
                                          or user.allows(EXECUTIONS_READ_SCOPE)):
        return []
    detailed = where.executions == "full"
    return [active_runs.ActiveRun(
        run=runs.run_view(row, where.org_name, where.name, [], detailed), title=title)
        for row, title in active_runs.in_workspace(where.id)]


@interface.public
def runs_overview(claim: str) -> overview.Overview:
    """How the runs of the workspaces the user holds a role in are doing (signed in only)."""
    user = _with_scope(claim, EXECUTIONS_READ_SCOPE)
    if user.anonymous:
        raise Unauthorized("sign in to see how your runs are doing")
    return overview.gather(_own_places(claim))


def _own_places(claim: str) -> list[overview.Place]:
    places = []
    for org in dashboard.list_orgs(claim):
        for ws in org.workspaces:
            grant = grants.by_id(claim, ws.id)
            # Their own workspaces, where they see every run in full.
            if grant.role is not None and grant.executions == "full":
                places.append(overview.Place(id=ws.id, org=org.name, workspace=ws.name))
    return places[:overview.WORKSPACES]


# Trends ------------------------------------------------------------------------------------


@interface.public
def workspace_trends(claim: str, org: str, workspace: str) -> trends.Trends:
    """The workspace's runs by day and outcome, pass rates, flips, stale experiments and
    resilience score over the last 30 days; NotFound for those who may not see its runs."""
    _with_scope(claim, EXECUTIONS_READ_SCOPE)
    where = _readable_workspace(claim, org, workspace)
    grants.executions_shown(where, "this workspace's runs are not shown to you")
    return trend_store.figures(
        [overview.Place(id=where.id, org=where.org_name, workspace=where.name)], utcnow())


@interface.public
def org_trends(claim: str, org: str) -> trends.Trends:
    """The trends of the org's workspaces whose runs the caller may see (no other's)."""
    _with_scope(claim, EXECUTIONS_READ_SCOPE)
    found = grants.org_of(claim, org)
    sights = dashboard.workspace_sights(claim, [w.id for w in found.workspaces])
    places = [overview.Place(id=s.id, org=s.org_name, workspace=s.name)
              for s in sights if s.executions != "none"]
    return trend_store.figures(places, utcnow())


@interface.public
def my_trends(claim: str) -> trends.Trends:
    """The trends of the workspaces the user holds a role in (signed in only)."""
    user = _with_scope(claim, EXECUTIONS_READ_SCOPE)
    if user.anonymous:
        raise Unauthorized("sign in to see how your runs are doing")
    return trend_store.figures(_own_places(claim), utcnow())


# Schedules -------------------------------------------------------------------------------------


@interface.public
def list_schedules(claim: str, experiment_id: str, cursor: str | None = None,
                   limit: int | str | None = None) -> schedules.SchedulePage:
    """A page of the experiment's schedules with their next fire times, for its readers."""
    _with_scope(claim, READ_SCOPE)
    _experiment(claim, experiment_id, "read")
    return schedules.page(experiment_id, cursor, limit)


@interface.public
def create_schedule(claim: str, experiment_id: str, fields: schedules.ScheduleFields
                    ) -> schedules.ScheduleView:
    """Add a schedule to the experiment, if the claim may run it there; it acts as its
    creator."""
    user = _scheduler(claim)
    view, where = _experiment(claim, experiment_id, "run")
    now = utcnow()
    columns = schedules.checked(fields, None, now, where, view)
    with write(user) as work:
        store.experiment_in(work.session, view.id, view.workspace_id)
        row = schedules.create(work, user, view, columns, now)
        _tell_schedule(work, user, view, "schedule.created", "added a schedule to", row)
        return schedules.view_of(row, now)


@interface.public
def get_schedule(claim: str, schedule_id: str) -> schedules.ScheduleView:
    """One schedule, for the readers of its experiment."""
    _with_scope(claim, READ_SCOPE)
    _experiment(claim, schedules.experiment_of(schedule_id), "read",
                missing="no such schedule")
    with transaction(SERVICE) as session:
        return schedules.view_of(schedules.load(session, schedule_id), utcnow())


@interface.public
def update_schedule(claim: str, schedule_id: str, fields: schedules.ScheduleFields
                    ) -> schedules.ScheduleView:
    """Change a schedule (enable or disable it too), if the claim may run its experiment."""
    user = _scheduler(claim)
    view, where = _experiment(claim, schedules.experiment_of(schedule_id), "run",
                              missing="no such schedule")
    now = utcnow()
    with transaction(SERVICE) as session:
        before = schedules.load(session, schedule_id)
        session.expunge(before)
    columns = schedules.checked(fields, before, now, where, view)
    with write(user) as work:
        row = schedules.load(work.session, schedule_id, lock=True)
        was_enabled = row.enabled
        schedules.change(row, columns, now)
        if row.enabled and not was_enabled:
            # Whoever enables it again answers for its firings, which run as them from now on
            # (one paused because its owner lost the right to run here resumes so).
            row.created_by, row.created_by_name = user.sub, user.name[:500]
        work.session.flush()
        _tell_schedule(work, user, view, "schedule.changed", "changed a schedule of", row)
        return schedules.view_of(row, now)


@interface.public
def delete_schedule(claim: str, schedule_id: str) -> None:
    """Delete a schedule and its history, if the claim may run its experiment."""
    user = _scheduler(claim)
    view, _ = _experiment(claim, schedules.experiment_of(schedule_id), "run",
                          missing="no such schedule")
    with write(user) as work:
        row = schedules.load(work.session, schedule_id, lock=True)
        _tell_schedule(work, user, view, "schedule.deleted", "deleted a schedule of", row)
        work.session.delete(row)


@interface.public
def list_schedule_firings(claim: str, schedule_id: str, cursor: str | None = None,
                          limit: int | str | None = None) -> schedules.FiringPage:
    """A page of what the schedule's firings did, newest first, for those who see its
    experiment's runs."""
    _with_scope(claim, EXECUTIONS_READ_SCOPE)
    _, where = _experiment(claim, schedules.experiment_of(schedule_id), "read",
                           missing="no such schedule")
    grants.executions_shown(where, "no such schedule")
    return schedules.firings(schedule_id, cursor, limit)


@interface.public
def upcoming_runs(claim: str, org: str, workspace: str, count: int = 50
                  ) -> list[schedules.Upcoming]:
    """The next firings of the workspace's enabled schedules, soonest first."""
    _with_scope(claim, READ_SCOPE)
    where = _readable_workspace(claim, org, workspace)
    return schedules.upcoming(where.id, max(1, min(int(count), 200)), utcnow())


def _scheduler(claim: str) -> UserClaim:
    user = _with_scope(claim, RUNS_EXECUTE_SCOPE)
    if user.anonymous:
        raise Unauthorized("sign in to schedule runs")
    return user


def _tell_schedule(work: ExperimentWrite, user: UserClaim, view: ExperimentView, kind: str,
                   what: str, row) -> None:
    """Put a schedule's change in the org's feed (for its members) and audit log."""
    work.feed(view.org_id, kind, f"{user.name} {what} {view.title}", view.workspace_id,
              "members", audited=schedules.describe(row), subject=f"experiment:{view.id}")


# Search ----------------------------------------------------------------------------------------


@interface.public
def search(claim: str, q: str, limit: int = 10) -> experiment_search.ExperimentResults:
    """Experiments whose title (or a word of it) or a tag starts with `q`, and runs whose id
    or experiment's title does, newest first, as far as the claim may see them."""
    return experiment_search.find(claim, claims.verify(claim), q, limit)


def _record_run_activity(user: UserClaim, view: ExperimentView, kind: str, summary: str,
                         outsider_summary: str, run_id: str) -> None:
    # The run was queued or asked to stop in hub_runs' own transaction: only its feed and
    # audit entries are left, and a feed that refuses them does not undo it.
    record_activity(user.sub, view.org_id, kind, summary, view.workspace_id, "executions",
                    outsider_summary,
                    {"run_id": run_id, "experiment_id": view.id, "workspace_id": view.workspace_id},
                    f"run:{view.id}:{run_id}")


# Experiments from git ----------------------------------------------------------------------


@interface.public
def get_repository(claim: str, org: str, workspace: str) -> repository_links.RepositoryView:
    """The repository linked to the workspace (never its credential or webhook secret)."""
    return repository_links.get_repository(claim, org, workspace)


@interface.public
def may_manage_repository(claim: str, org: str, workspace: str) -> bool:
    """True when the caller may link, change and unlink the workspace's repository."""
    return repository_links.may_manage(claim, org, workspace)


@interface.public
def put_repository(claim: str, org: str, workspace: str, url: str, branch: str,
                   paths: list[str], token: str | None = None, deploy_key: bool | None = None,
                   rotate_deploy_key: bool = False, rotate_webhook_secret: bool = False,
                   forget_host_key: bool = False) -> repository_links.SavedRepository:
    """Link the workspace to a repository or change its link (see repository_links)."""
    return repository_links.put_repository(claim, org, workspace, url, branch, paths, token,
                                           deploy_key, rotate_deploy_key,
                                           rotate_webhook_secret, forget_host_key)


@interface.public
def forget_host_keys(claim: str, org: str, workspace: str) -> repository_links.RepositoryView:
    """Forget the ssh host keys pinned on the workspace's link: the next sync trusts anew."""
    return repository_links.forget_host_keys(claim, org, workspace)


@interface.public
def delete_repository(claim: str, org: str, workspace: str) -> None:
    """Unlink the workspace's repository; its experiments stay, editable on the hub again."""
    repository_links.delete_repository(claim, org, workspace)


@interface.public
def request_sync(claim: str, org: str, workspace: str, run_changed: bool = False
                 ) -> git_sync_views.SyncView:
    """Queue a sync of the workspace with its repository (a worker does it)."""
    return git_sync_requests.request_sync(claim, org, workspace, run_changed)


@interface.public
def get_sync(claim: str, sync_id: str) -> git_sync_views.SyncView:
    """One sync and its result."""
    return git_sync_requests.get_sync(claim, sync_id)


@interface.public
def list_syncs(claim: str, org: str, workspace: str, cursor: str | None = None,
               limit: int | str | None = None) -> git_sync_views.SyncPage:
    """A page of the workspace's syncs, newest first."""
    return git_sync_requests.list_syncs(claim, org, workspace, cursor, limit)
