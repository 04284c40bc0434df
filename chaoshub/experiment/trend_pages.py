"""The org's trends tab (the workspace page and the runs overview show trends too: see
trend_views.py)."""

from __future__ import annotations

from urllib.parse import quote

from flask import Blueprint, make_response, redirect, render_template, request

from chaoshub.core.errors import Unauthorized
from chaoshub.core.web import current_claim
from chaoshub.experiment import grants, service
from chaoshub.experiment.trend_views import trends_context

trend_pages = Blueprint("trend_pages", __name__)


# Under "/-/": no workspace can be named "-" (a name starts with a letter or digit).
@trend_pages.get("/<org>/-/trends")
def org_trends(org: str):
    """The org's trends: those of its workspaces whose runs the reader may see, as one."""
    claim = current_claim()
    try:
        view = grants.org_of(claim, org)
    except Unauthorized:
        return redirect("/signin?next=" + quote(request.path), code=302)
    if org.lower() != view.name.lower():  # a former name of the org: to its current one
        return redirect(f"/{quote(view.name, safe='')}/-/trends", code=301)
    return make_response(render_template(
        "experiment/org_trends.html", org=view, tab="trends",
        **trends_context(lambda: service.org_trends(claim, view.name))))
