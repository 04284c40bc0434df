"""The API of schedules: an experiment's schedules, one schedule, and what its firings did."""

from __future__ import annotations

from typing import Annotated, Literal

from flask import Blueprint, Response, jsonify
from pydantic import BaseModel, Field

from chaoshub.core.openapi import Body, Query, answers, body, docs, query
from chaoshub.core.paging import PageQuery
from chaoshub.core.web import credentials_first, current_claim
from chaoshub.experiment import bodies, service
from chaoshub.experiment.runs import Dry, RollbackStrategy
from chaoshub.experiment.schedules import (
    FiringPage,
    Missed,
    Overlap,
    ScheduleFields,
    SchedulePage,
    ScheduleView,
    Upcoming,
)

schedules_api = Blueprint("experiment_schedules", __name__, url_prefix="/api/v1")
schedules_api.url_value_preprocessor(credentials_first)

Version = Annotated[int, Field(ge=1, le=2**31 - 1)]
TIME_ZONE = "An IANA time zone (Europe/Paris, Asia/Kolkata, UTC): cron and times read in it."
VERSION = 'The version to run, or "latest" (the default): the latest when it fires.'


class ScheduleChange(Body):
    """What to change of a schedule; a field left out stays as it is (null clears the
    environment, dry mode and rollback strategy)."""

    kind: Literal["once", "cron"] | None = Field(
        None, description='"cron": recurring; "once": at `at`.')
    cron: str | None = Field(None, max_length=200,
                             description="Five fields: minute hour day-of-month month "
                                         "day-of-week, read in `time_zone`.")
    at: str | None = Field(None, max_length=64,
                           description="When a one-off schedule fires: ISO 8601, with its "
                                       "offset or in `time_zone`; to come.")
    time_zone: str | None = Field(None, max_length=64, description=TIME_ZONE)
    enabled: bool | None = None
    version: Version | Literal["latest"] | None = Field(None, description=VERSION)
    environment: str | None = Field(None, max_length=63,
                                    description="The workspace's environment to run in.")
    dry: Dry | None = Field(None, description="Skip these activities (chaos run --dry).")
    rollback_strategy: RollbackStrategy | None = None
    missed: Missed | None = Field(None, description='A firing missed while the hub was '
                                                    'down: "skip" it, or "run_once" on '
                                                    'recovery.')
    overlap: Overlap | None = Field(None, description='When the previous run still goes: '
                                                      '"skip", "queue" after it, or "abort" '
                                                      'it and start.')


class NewSchedule(ScheduleChange):
    """A schedule: a cron expression (or a one-off time), its time zone, the run's options
    and its policies."""


class UpcomingQuery(Query):
    """How many coming firings to list."""

    count: int = Field(50, ge=1, le=200,
                       description="how many coming firings, the soonest first (1 to 200)")


class UpcomingList(BaseModel):
    """The next firings of a workspace's schedules, soonest first."""

    upcoming: list[Upcoming]


def _fields(change: ScheduleChange) -> ScheduleFields:
    given = change.model_dump(exclude_unset=True)
    if "environment" in given and given["environment"] is None:
        given["environment"] = ""  # cleared
    return ScheduleFields(**given)


@schedules_api.get("/experiments/<experiment_id>/schedules")
@docs.validate(query=PageQuery, resp=answers(SchedulePage, 400, 403, 404), tags=["schedules"])
def list_schedules(experiment_id: str):
    """The experiment's schedules and their next five fire times: ?cursor=, ?limit=."""
    asked = query(PageQuery)
    page = service.list_schedules(current_claim(), experiment_id, asked.cursor or None,
                                  asked.limit)
    return jsonify(page.model_dump(mode="json"))


@schedules_api.post("/experiments/<experiment_id>/schedules")
@docs.validate(json=NewSchedule, tags=["schedules"],
               resp=answers(ScheduleView, 400, 401, 403, 404, 409, 415, 422, status=201))
def create_schedule(experiment_id: str):
    """Schedule runs of the experiment (those who may run it); they act as you when they
    fire. 201 with the schedule and its next five fire times."""
    claim = bodies.writer_claim(service.RUNS_EXECUTE_SCOPE)
    view = service.create_schedule(claim, experiment_id, _fields(body(NewSchedule)))
    response = jsonify(view.model_dump(mode="json"))
    response.status_code = 201
    response.headers["Location"] = f"/api/v1/schedules/{view.id}"
    return response


@schedules_api.get("/schedules/<schedule_id>")
@docs.validate(resp=answers(ScheduleView, 403, 404), tags=["schedules"])
def get_schedule(schedule_id: str):
    """One schedule and its next five fire times."""
    return jsonify(service.get_schedule(current_claim(), schedule_id).model_dump(mode="json"))


@schedules_api.patch("/schedules/<schedule_id>")
@docs.validate(json=ScheduleChange, tags=["schedules"],
               resp=answers(ScheduleView, 400, 401, 403, 404, 409, 415, 422))
def update_schedule(schedule_id: str):
    """Change a schedule, or enable or disable it (a disabled schedule owes no firing)."""
    claim = bodies.writer_claim(service.RUNS_EXECUTE_SCOPE)
    view = service.update_schedule(claim, schedule_id, _fields(body(ScheduleChange)))
    return jsonify(view.model_dump(mode="json"))


@schedules_api.delete("/schedules/<schedule_id>")
@docs.validate(resp=answers(None, 401, 403, 404, status=204), tags=["schedules"])
def delete_schedule(schedule_id: str):
    """Delete a schedule and the history of its firings."""
    service.delete_schedule(bodies.writer_claim(service.RUNS_EXECUTE_SCOPE), schedule_id)
    return Response(status=204)


@schedules_api.get("/schedules/<schedule_id>/firings")
@docs.validate(query=PageQuery, resp=answers(FiringPage, 400, 403, 404), tags=["schedules"])
def list_firings(schedule_id: str):
    """What each firing did, newest first: the run it started, or why it was skipped."""
    asked = query(PageQuery)
    page = service.list_schedule_firings(current_claim(), schedule_id, asked.cursor or None,
                                         asked.limit)
    return jsonify(page.model_dump(mode="json"))


@schedules_api.get("/orgs/<org>/workspaces/<workspace>/schedules/upcoming")
@docs.validate(query=UpcomingQuery, resp=answers(UpcomingList, 400, 403, 404),
               tags=["schedules"])
def upcoming(org: str, workspace: str):
    """The next firings of the workspace's enabled schedules, soonest first (UTC)."""
    asked = query(UpcomingQuery)
    found = service.upcoming_runs(current_claim(), org, workspace, asked.count)
    return jsonify({"upcoming": [u.model_dump(mode="json") for u in found]})
