"""The runs overview page: how the runs of someone's workspaces are doing."""

from __future__ import annotations

from urllib.parse import quote

from flask import Blueprint, make_response, redirect, render_template, request

from chaoshub.core.errors import Unauthorized
from chaoshub.core.web import current_claim
from chaoshub.experiment import service
from chaoshub.experiment.presenters import OUTCOME_LABELS, STATUS_LABELS
from chaoshub.experiment.trend_views import trends_context

overview_pages = Blueprint("overview_pages", __name__)


# Under "/-/": no org can be named "-", so the path never hides an org's page.
@overview_pages.get("/-/runs")
def runs_overview():
    """Recent runs, runs in progress, what deviated this week and what has not run for a month."""
    try:
        found = service.runs_overview(current_claim())
    except Unauthorized:
        return redirect("/signin?next=" + quote(request.path), code=302)
    return make_response(render_template(
        "experiment/overview.html", overview=found, outcomes=OUTCOME_LABELS,
        run_statuses=STATUS_LABELS,
        **trends_context(lambda: service.my_trends(current_claim()))))
