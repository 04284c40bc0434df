"""A workspace's experiments page by page: filters, the two orders, and keyset cursors.

A cursor holds the sort keys of the last row shown, with the order and a fingerprint of the
filters it was made for, signed by core.paging: a cursor of another listing, other filters or
none the hub made is a 400 that says to start again from the first page.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Select, func, or_, select
from sqlalchemy.orm import Session

from chaoshub.core import paging
from chaoshub.core.errors import BadRequest
from chaoshub.experiment import journals, store
from chaoshub.experiment.models import Experiment, ExperimentContribution, ExperimentTag
from chaoshub.experiment.schemas import ListedExperiment

SORTS = ("updated", "last_run")
NEVER_RUN = "none"
LAST_RUN_FILTERS = (*journals.OUTCOMES, NEVER_RUN)
TEXT_MAX = 500  # characters of a tag, a title prefix or a username worth searching for
CURSOR_VERSION = 1
# Which part of an order a position is in: by update time, among the experiments that ran,
# among those that never ran.
UPDATED, RAN, NEVER = "u", "r", "n"
PHASES = {"updated": (UPDATED,), "last_run": (RAN, NEVER)}
LISTING = "experiment listing"  # signed into its cursors, as it always was


@dataclass(frozen=True)
class Listing:
    """What one listing asks for: its workspace, its order and its filters."""

    workspace_id: str
    sort: str = "updated"
    tag: str | None = None
    search: str | None = None
    last_run: str | None = None
    author: str | None = None  # a username, as asked for
    contribution: str | None = None  # a quality the experiments tell about

    def fingerprint(self) -> str:
        """A digest of the workspace and filters, which the cursors of this listing carry."""
        asked = [self.workspace_id, self.tag, self.search, self.last_run,
                 self.author.lower() if self.author else None]
        if self.contribution:  # cursors of listings without it stay what they were
            asked.append(self.contribution.lower())
        return hashlib.sha256(json.dumps(asked).encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Position:
    """Where a page ended: the phase of the order and the sort keys of its last row."""

    phase: str
    at: datetime
    experiment_id: str


def check(sort: object, last_run: object, tag: object, search: object, author: object,
          contribution: object = None) -> None:
    """BadRequest unless the order and filters are ones a listing knows."""
    if sort not in SORTS:
        raise BadRequest(f"sort must be one of {', '.join(SORTS)}",
                         [{"pointer": "/sort", "message": f"one of {', '.join(SORTS)}"}])
    if last_run is not None and last_run not in LAST_RUN_FILTERS:
        raise BadRequest(f"last_run must be one of {', '.join(LAST_RUN_FILTERS)}",
                         [{"pointer": "/last_run",
                           "message": f"one of {', '.join(LAST_RUN_FILTERS)}"}])
    for name, value in (("tag", tag), ("search", search), ("author", author),
                        ("contribution", contribution)):
        if value is not None and (not isinstance(value, str) or len(value) > TEXT_MAX):
            raise BadRequest(f"{name} must be text of at most {TEXT_MAX} characters",
                             [{"pointer": f"/{name}", "message": "too long"}])


# Pages --------------------------------------------------------------------------------------


def page(session: Session, listing: Listing, author_id: str | None, after: Position | None,
         limit: int) -> tuple[list[Experiment], str | None]:
    """Up to `limit` experiments after `after`, and the cursor of the next page (None: last)."""
    wanted = limit + 1  # one more than shown says whether there is a next page
    query = _filtered(listing, author_id)
    if listing.sort == "updated":
        rows = _rows(session, query, Experiment.updated_at, after, wanted)
    else:
        rows = []
        if listing.last_run != NEVER_RUN and (after is None or after.phase == RAN):
            rows = _rows(session, query.where(Experiment.last_run_at.is_not(None)),
                         Experiment.last_run_at, after, wanted)
        if len(rows) < wanted and listing.last_run in (None, NEVER_RUN):
            # Those never run come last, most recently updated first.
            rows += _rows(session, query.where(Experiment.last_run_at.is_(None)),
                          Experiment.updated_at, after if after and after.phase == NEVER else None,
                          wanted - len(rows))
    if len(rows) <= limit:
        return rows, None
    return rows[:limit], encode_cursor(listing, position(listing, rows[limit - 1]))


def listed(row: Experiment, with_runs: bool) -> ListedExperiment:
    """The listing's view of a row; its last run only for those who may see the runs."""
    return ListedExperiment(
        **store.experiment_view(row).model_dump(),
        last_run_at=row.last_run_at if with_runs else None,
        last_run_outcome=row.last_run_outcome if with_runs else None,
        last_execution_id=row.last_execution_id if with_runs else None,
    )


def position(listing: Listing, row: Experiment) -> Position:
    """Where a page ending with `row` ends."""
    if listing.sort == "updated":
        return Position(UPDATED, row.updated_at, row.id)
    if row.last_run_at is not None:
        return Position(RAN, row.last_run_at, row.id)
    return Position(NEVER, row.updated_at, row.id)


def _filtered(listing: Listing, author_id: str | None) -> Select:
    query = select(Experiment).where(Experiment.workspace_id == listing.workspace_id)
    if listing.tag:
        query = query.where(Experiment.id.in_(
            select(ExperimentTag.experiment_id).where(ExperimentTag.tag == listing.tag)))
    if listing.contribution:
        query = query.where(Experiment.id.in_(
            select(ExperimentContribution.experiment_id)
            .where(ExperimentContribution.name == listing.contribution.lower(),
                   ExperimentContribution.level != "none")))
    if listing.search:
        escaped = (listing.search.lower().replace("\\", "\\\\").replace("%", "\\%")
                   .replace("_", "\\_"))
        # The start of the title, or of any word of the title or the description.
        query = query.where(or_(*(
            func.lower(field).like(before + escaped + "%", escape="\\")
            for field in (Experiment.title, Experiment.description)
            for before in ("", "% ", "%\n"))))
    if author_id is not None:
        query = query.where(Experiment.created_by == author_id)
    if listing.last_run == NEVER_RUN:
        query = query.where(Experiment.last_run_at.is_(None))
    elif listing.last_run:
        query = query.where(Experiment.last_run_outcome == listing.last_run)
    return query


def _rows(session: Session, query: Select, key: ColumnElement, after: Position | None,
          limit: int) -> list[Experiment]:
    # Newest first, the id breaking ties: the order the indexes on (workspace, key, id) hold.
    at = (after.at, after.experiment_id) if after is not None else None
    return list(session.scalars(paging.after(query, key, Experiment.id, at).limit(limit)))


# Cursors ------------------------------------------------------------------------------------


def encode_cursor(listing: Listing, at: Position) -> str:
    """The signed cursor of the page after `at`, in this listing only."""
    return paging.sign(LISTING, {"v": CURSOR_VERSION, "s": listing.sort,
                                 "f": listing.fingerprint(),
                                 "p": [at.phase, at.at.isoformat(), at.experiment_id]})


def decode_cursor(cursor: str, listing: Listing) -> Position:
    """The position a cursor of this listing points after; BadRequest for any other cursor."""
    data = paging.verified(cursor, LISTING)
    try:
        phase, at, experiment_id = data["p"]
        made_for = (data["v"], data["s"], data["f"])
    except (ValueError, TypeError, KeyError) as exc:
        raise paging.bad_cursor() from exc
    if made_for != (CURSOR_VERSION, listing.sort, listing.fingerprint()):
        raise paging.other_listing()
    when = journals.timestamp(at)
    if phase not in PHASES[listing.sort] or when is None or not isinstance(experiment_id, str):
        raise paging.bad_cursor()
    return Position(phase, when, experiment_id)
