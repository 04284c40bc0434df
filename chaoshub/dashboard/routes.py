"""Dashboard's HTTP face: the signed-in home page."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template

from chaoshub.auth import service as auth
from chaoshub.core.claims import verify
from chaoshub.core.web import current_claim
from chaoshub.dashboard import service

pages = Blueprint("dashboard", __name__)


@pages.get("/")
def home():
    """The orgs and workspaces of the signed-in user; visitors go to sign in."""
    claim = current_claim()
    if verify(claim).anonymous:
        return redirect("/signin")
    return render_template(
        "dashboard/home.html", account=auth.get_account(claim), orgs=service.list_orgs(claim)
    )
