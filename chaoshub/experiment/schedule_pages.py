"""The pages of schedules: a schedule's history of firings, and a workspace's coming scheduled
runs (the experiment page's schedules section and its forms are pages.py's)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from flask import Blueprint, render_template, request

from chaoshub.core.errors import NotFound
from chaoshub.core.web import current_claim
from chaoshub.dashboard.service import zone_problem
from chaoshub.experiment import grants, service
from chaoshub.experiment.presenters import experiment_path

schedule_pages = Blueprint("experiment_schedule_pages", __name__)

EXPERIMENT = "/<org>/<workspace>/experiment/<experiment_id>/schedules"
UPCOMING_SHOWN = 50


@schedule_pages.get(f"{EXPERIMENT}/<schedule_id>")
def schedule_page(org: str, workspace: str, experiment_id: str, schedule_id: str):
    """A schedule, its next fire times and what its firings did, newest first."""
    claim = current_claim()
    located = service.get_workspace_experiment(claim, org, workspace, experiment_id)
    schedule = service.get_schedule(claim, schedule_id)
    if schedule.experiment_id != experiment_id:
        raise NotFound("no such schedule")
    page = service.list_schedule_firings(claim, schedule_id, request.args.get("cursor") or None,
                                         50)
    return render_template(
        "experiment/schedule.html", located=located, schedule=schedule, firings=page.firings,
        next_cursor=page.next_cursor,
        base=experiment_path(located.org, located.workspace, experiment_id))


@schedule_pages.get("/<org>/<workspace>/-/schedules")
def upcoming_page(org: str, workspace: str):
    """The workspace's coming scheduled runs, in the viewer's time zone (?tz=) or in UTC."""
    claim = current_claim()
    ws = grants.by_name(claim, org, workspace)
    asked = request.args.get("tz", "")
    zone = asked if asked and zone_problem(asked) is None else "UTC"
    tz = ZoneInfo(zone)
    upcoming = service.upcoming_runs(claim, org, workspace, UPCOMING_SHOWN)
    rows = [(u, u.fire_at.astimezone(tz)) for u in upcoming]
    return render_template("experiment/upcoming.html", ws=ws, rows=rows, zone=zone,
                           asked_bad=bool(asked) and zone != asked,
                           now=datetime.now(tz))

