"""The search page: people, orgs and workspaces (dashboard's search) with experiments and runs
(this service's), each part as far as the reader may see it."""

from __future__ import annotations

from flask import Blueprint, make_response, render_template, request

from chaoshub.core.web import current_claim
from chaoshub.dashboard import service as dashboard
from chaoshub.experiment import service

search_pages = Blueprint("search_pages", __name__)
SHOWN = 20  # hits of each kind
SEARCH_PATH = "/-/search"


# Under "/-/": no org can be named "-", so the path never hides an org's page.
@search_pages.get(SEARCH_PATH)
def search_page():
    """Whatever starts with ?q=: people, orgs, workspaces, experiments (by title or tag) and
    runs (by id or experiment title)."""
    q = request.args.get("q", "").strip()
    claim = current_claim()
    names = dashboard.search(claim, q, SHOWN) if q else None
    found = service.search(claim, q, SHOWN) if q else None
    return make_response(render_template(
        "dashboard/search.html", q=q, names=names, found=found, action=SEARCH_PATH))
