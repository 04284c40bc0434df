"""Dashboard's pages: the home and org pages, members and settings (the workspace page is
experiment's: dashboard shows it only to answer a member form that failed)."""

from __future__ import annotations

from urllib.parse import quote

from flask import Blueprint, make_response, redirect, render_template, request

from chaoshub.auth import service as auth
from chaoshub.core import events
from chaoshub.core.claims import verify
from chaoshub.core.errors import (
    Conflict,
    Forbidden,
    HubError,
    NotFound,
    Unauthorized,
    ValidationFailed,
    error_response,
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


@pages.before_request
def _writes_need_an_account():
    # Every form here changes something: visitors get 401 whatever they aimed at.
    if request.method == "POST" and verify(current_claim()).anonymous:
        raise Unauthorized("sign in first")


@pages.errorhandler(Unauthorized)
def _sign_in_first(error: Unauthorized):
    # A visitor reading a page that needs an account is sent to sign in, then back here.
    if request.method == "GET":
        return redirect("/signin?next=" + quote(request.full_path.rstrip("?")), code=302)
    return error_response(error)


@pages.get("/")
def home():
    """The orgs and workspaces of the signed-in user; visitors go to sign in."""
    claim = current_claim()
    if verify(claim).anonymous:
        return redirect("/signin")
    return _home(claim)


@pages.post("/orgs")
def create_org():
    """Create an org from the home page's form, then show it."""
    claim = current_claim()
    name = request.form.get("name", "").strip()
    try:
        org = service.create_org(claim, name)
    except FORM_ERRORS as error:
        return _home(claim, error=error, form=request.form)
    return redirect(f"/{org.name}", code=303)


# Orgs --------------------------------------------------------------------------------------


@pages.get("/<org>")
def org_page(org: str):
    """An org: its description and the workspaces the reader may see."""
    claim = current_claim()
    view = service.get_org(claim, org)
    return _canonical(org, view.name) or _org_page(view, feed=service.org_activity(claim,
                                                                                  view.name))


@pages.post("/<org>/-/workspaces")
def create_workspace(org: str):
    """Add a workspace from the org page's form."""
    claim = current_claim()
    view = service.get_org(claim, org, "change_settings")
    form = request.form
    try:
        ws = service.create_workspace(claim, org, form.get("name", "").strip(),
                                      form.get("visibility", "private"),
                                      form.get("outsider_executions", "none"))
    except FORM_ERRORS as error:
        return _org_page(view, error=error, form=form,
                         feed=service.org_activity(claim, view.name))
    return redirect(f"/{ws.org_name}/{ws.name}", code=303)


@pages.get("/<org>/-/members")
def members_page(org: str):
    """The org's members; owners add, change and remove them here."""
    claim = current_claim()
    view = service.get_org(claim, org, "list_members")
    return _canonical(org, view.name) or _members_page(claim, view)


@pages.post("/<org>/-/members")
def add_member(org: str):
    """Add a member by username."""
    claim = current_claim()
    view = service.get_org(claim, org, "manage_members")
    form = request.form
    try:
        service.add_member(claim, org, form.get("username", "").strip(),
                           form.get("role", "member"))
    except FORM_ERRORS as error:
        return _members_page(claim, view, error, form)
    return redirect(f"/{view.name}/-/members", code=303)


@pages.post("/<org>/-/members/<username>/role")
def change_member_role(org: str, username: str):
    """Change a member's role."""
    claim = current_claim()
    view = service.get_org(claim, org, "manage_members")
    try:
        service.change_member_role(claim, org, username, request.form.get("role", ""))
    except FORM_ERRORS as error:
        return _members_page(claim, view, error)
    return redirect(f"/{view.name}/-/members", code=303)


@pages.post("/<org>/-/members/<username>/remove")
def remove_member(org: str, username: str):
    """Remove a member, or leave the org."""
    claim = current_claim()
    view = service.get_org(claim, org, "list_members")
    try:
        service.remove_member(claim, org, username)
    except FORM_ERRORS as error:
        return _members_page(claim, view, error)
    if username.lower() == auth.get_account(claim).username.lower():
        return redirect("/", code=303)  # left the org
    return redirect(f"/{view.name}/-/members", code=303)


@pages.get("/<org>/-/settings")
def org_settings_page(org: str):
    """Rename, describe or delete the org."""
    claim = current_claim()
    view = service.get_org(claim, org, "change_settings")
    return _canonical(org, view.name) or _org_settings(view)


@pages.post("/<org>/-/settings")
def update_org(org: str):
    """Save the org's name or description from the settings forms."""
    claim = current_claim()
    view = service.get_org(claim, org, "change_settings")
    form = request.form
    fields = {name: form[name] for name in ("name", "description", "url", "email")
              if name in form}
    try:
        view = service.update_org(claim, org, **fields)
    except FORM_ERRORS as error:
        return _org_settings(view, error, form)
    return redirect(f"/{view.name}/-/settings?saved=1", code=303)


@pages.post("/<org>/-/delete")
def delete_org(org: str):
    """Delete the org once its name is typed to confirm."""
    claim = current_claim()
    view = service.get_org(claim, org, "delete_org")
    if request.form.get("confirm", "").strip().lower() != view.name.lower():
        error = ValidationFailed("type the org's name to confirm", [
            {"pointer": "/confirm", "message": f"type {view.name} to confirm"}])
        return _org_settings(view, error, request.form)
    try:
        service.delete_org(claim, org)
    except FORM_ERRORS as error:
        return _org_settings(view, error)
    return redirect("/", code=303)


# Workspaces --------------------------------------------------------------------------------


@pages.get("/<org>/<workspace>/-/settings")
def workspace_settings_page(org: str, workspace: str):
    """Rename the workspace, change who sees it, or delete it."""
    claim = current_claim()
    ws = service.get_workspace(claim, org, workspace, "change_settings")
    return _canonical(org, ws.org_name) or _workspace_settings(ws)


@pages.post("/<org>/<workspace>/-/settings")
def update_workspace(org: str, workspace: str):
    """Save the workspace's settings."""
    claim = current_claim()
    current = service.get_workspace(claim, org, workspace, "change_settings")
    form = request.form
    fields = {name: form[name] for name in ("name", "visibility", "outsider_executions")
              if name in form}
    try:
        ws = service.update_workspace(claim, org, workspace, **fields)
    except FORM_ERRORS as error:
        return _workspace_settings(current, error, form)
    return redirect(f"/{ws.org_name}/{ws.name}/-/settings?saved=1", code=303)


@pages.post("/<org>/<workspace>/-/delete")
def delete_workspace(org: str, workspace: str):
    """Delete the workspace once its name is typed to confirm."""
    claim = current_claim()
    ws = service.get_workspace(claim, org, workspace, "change_settings")
    if request.form.get("confirm", "").strip().lower() != ws.name.lower():
        error = ValidationFailed("type the workspace's name to confirm", [
            {"pointer": "/confirm", "message": f"type {ws.name} to confirm"}])
        return _workspace_settings(ws, error, request.form)
    service.delete_workspace(claim, org, workspace)
    return redirect(f"/{ws.org_name}", code=303)


# Helpers -----------------------------------------------------------------------------------


def _canonical(asked: str, name: str):
    """A permanent redirect when the URL names the org by a former name, else None."""
    if asked.lower() == name.lower():
        return None
    rest = request.path.split("/", 2)[2] if request.path.count("/") > 1 else ""
    target = f"/{name}" + (f"/{rest}" if rest else "")
    if request.query_string:
        target += "?" + request.query_string.decode("latin-1")
    return redirect(target, code=301)


def _render(template: str, error: HubError | None, form=None, **context):
    problems = problems_by_field(error.details) if error else {}
    html = render_template(template, error=error, problems=problems, form=form or {},
                           saved=request.args.get("saved"), **CHOICES, **context)
    return make_response(html, error.status if error else 200)


def _home(claim: str, error: HubError | None = None, form=None):
    orgs = service.list_orgs(claim)
    if not any(org.personal for org in orgs):
        # Signed up a moment ago on an auth service of its own: fetch its account.created
        # event now rather than at the next poll; if auth is away, say so until it comes.
        events.wake("auth")
        orgs = service.list_orgs(claim)
    return _render("dashboard/home.html", error, form, account=auth.get_account(claim),
                   orgs=orgs, invitations=service.my_invitations(claim),
                   feed=service.activity_feed(claim),
                   setting_up=not any(org.personal for org in orgs))


def _org_page(org, error: HubError | None = None, form=None, feed=None):
    # The kill switch the banner shows too (asked once a request): None outside the org.
    return _render("dashboard/org.html", error, form, org=org, feed=feed,
                   kill_switch=org_kill_switch(),
                   kill_switch_changed=request.args.get("kill_switch"))


def _members_page(claim: str, org, error: HubError | None = None, form=None,
                  new_link: str | None = None):
    me = auth.get_account(claim).username if not verify(claim).anonymous else None
    pending = (service.list_invitations(claim, org.name)
               if "manage_members" in org.allowed and not org.personal else [])
    return _render("dashboard/members.html", error, form, org=org,
                   members=service.list_members(claim, org.name), me=me,
                   invitations=pending, new_link=new_link)


def _workspace_page(claim: str, ws, error: HubError, form=None):
    # A member form's error, shown on the workspace page as experiment serves it, but for the
    # experiments: they are experiment's to list (the template links to them instead).
    # Those with a role here see who else was given one; others see no member list at all.
    members = (service.list_workspace_members(claim, ws.org_name, ws.name)
               if "list_members" in ws.allowed else None)
    me = auth.get_account(claim).username if members is not None else None
    return _render(
        "dashboard/workspace.html", error, form, ws=ws, listing=None, outcomes=(),
        feed=service.workspace_activity(claim, ws.org_name, ws.name),
        members=members, me=me, grantable=grantable(ws.role))


def _org_settings(org, error: HubError | None = None, form=None):
    return _render("dashboard/org_settings.html", error, form, org=org)


def _workspace_settings(ws, error: HubError | None = None, form=None, policy=None):
    # `policy`: the run policy form as it was sent, shown again with its errors.
    if policy is None:
        policy = policy_form.policy_fields(
            service.get_run_policy(current_claim(), ws.org_name, ws.name))
    return _render("dashboard/workspace_settings.html", error, form, ws=ws, policy=policy,
                   provider_types=policy_form.PROVIDER_TYPES, executors=policy_form.EXECUTORS)
