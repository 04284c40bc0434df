"""Dashboard's pages as every page module renders them: the blueprint they share, the errors a
form can fix, and each page with its data (the routes live in routes.py, team_routes.py,
safety_pages.py and tokens.py)."""

from __future__ import annotations

from flask import Blueprint, make_response, redirect, render_template, request

from chaoshub.auth import service as auth
from chaoshub.core import events
from chaoshub.core.claims import verify
from chaoshub.core.errors import (
    Conflict,
    Forbidden,
    HubError,
    NotFound,
    ValidationFailed,
    problems_by_field,
)
from chaoshub.core.web import current_claim, org_kill_switch
from chaoshub.dashboard import policy_form, service
from chaoshub.dashboard.permissions import ROLES, grantable

pages = Blueprint("dashboard", __name__)

# Errors a form can fix, shown on its page. Routes check access to the page first, so a
# NotFound here is about what the form named (a username, say), never the org itself.
FORM_ERRORS = (ValidationFailed, Conflict, Forbidden, NotFound)
CHOICES = {"roles": ROLES, "visibilities": service.VISIBILITIES,
           "execution_choices": service.OUTSIDER_EXECUTIONS}


def canonical(asked: str, name: str):
    """A permanent redirect when the URL names the org by a former name, else None."""
    if asked.lower() == name.lower():
        return None
    rest = request.path.split("/", 2)[2] if request.path.count("/") > 1 else ""
    target = f"/{name}" + (f"/{rest}" if rest else "")
    if request.query_string:
        target += "?" + request.query_string.decode("latin-1")
    return redirect(target, code=301)


def render(template: str, error: HubError | None, form=None, **context):
    """A page, with a form's error and its fields' problems (the error's status, else 200)."""
    problems = problems_by_field(error.details) if error else {}
    html = render_template(template, error=error, problems=problems, form=form or {},
                           saved=request.args.get("saved"), **CHOICES, **context)
    return make_response(html, error.status if error else 200)


def home_page(claim: str, error: HubError | None = None, form=None):
    """The home page: the caller's orgs, invitations and feed."""
    orgs = service.list_orgs(claim)
    if not any(org.personal for org in orgs):
        # Signed up a moment ago on an auth service of its own: fetch its account.created
        # event now rather than at the next poll; if auth is away, say so until it comes.
        events.wake("auth")
        orgs = service.list_orgs(claim)
    return render("dashboard/home.html", error, form, account=auth.get_account(claim),
                   orgs=orgs, invitations=service.my_invitations(claim),
                   feed=service.activity_feed(claim),
                   setting_up=not any(org.personal for org in orgs))


def org_view(org, error: HubError | None = None, form=None, feed=None):
    """An org's page."""
    # The kill switch the banner shows too (asked once a request): None outside the org.
    return render("dashboard/org.html", error, form, org=org, feed=feed,
                   kill_switch=org_kill_switch(),
                   kill_switch_changed=request.args.get("kill_switch"))


def members_view(claim: str, org, error: HubError | None = None, form=None,
                 new_link: str | None = None):
    """An org's members page, with its pending invitations for those who manage them."""
    me = auth.get_account(claim).username if not verify(claim).anonymous else None
    pending = (service.list_invitations(claim, org.name)
               if "manage_members" in org.allowed and not org.personal else [])
    return render("dashboard/members.html", error, form, org=org,
                   members=service.list_members(claim, org.name), me=me,
                   invitations=pending, new_link=new_link)


def workspace_view(claim: str, ws, error: HubError, form=None):
    """The workspace page dashboard shows to answer a member form that failed."""
    # A member form's error, shown on the workspace page as experiment serves it, but for the
    # experiments: they are experiment's to list (the template links to them instead).
    # Those with a role here see who else was given one; others see no member list at all.
    members = (service.list_workspace_members(claim, ws.org_name, ws.name)
               if "list_members" in ws.allowed else None)
    me = auth.get_account(claim).username if members is not None else None
    return render(
        "dashboard/workspace.html", error, form, ws=ws, listing=None, outcomes=(),
        feed=service.workspace_activity(claim, ws.org_name, ws.name),
        members=members, me=me, grantable=grantable(ws.role))


def org_settings_view(org, error: HubError | None = None, form=None):
    """An org's settings page."""
    return render("dashboard/org_settings.html", error, form, org=org)


def workspace_settings_view(ws, error: HubError | None = None, form=None, policy=None):
    """A workspace's settings page, with its run policy."""
    # `policy`: the run policy form as it was sent, shown again with its errors.
    if policy is None:
        policy = policy_form.policy_fields(
            service.get_run_policy(current_claim(), ws.org_name, ws.name))
    return render("dashboard/workspace_settings.html", error, form, ws=ws, policy=policy,
                   provider_types=policy_form.PROVIDER_TYPES, executors=policy_form.EXECUTORS)
