"""Dashboard's pages: the home and org pages, members and settings (the workspace page is
experiment's: dashboard shows it only to answer a member form that failed)."""

from __future__ import annotations

from urllib.parse import quote

from flask import redirect, request

from chaoshub.auth import service as auth
from chaoshub.core.claims import verify
from chaoshub.core.errors import (
    Unauthorized,
    ValidationFailed,
    error_response,
)
from chaoshub.core.web import current_claim
from chaoshub.dashboard import service, validation
from chaoshub.dashboard.page_views import (
    FORM_ERRORS,
    canonical,
    home_page,
    members_view,
    org_settings_view,
    org_view,
    pages,
    workspace_settings_view,
)


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
    return home_page(claim)


@pages.post("/orgs")
def create_org():
    """Create an org from the home page's form, then show it: a name with spaces is kept as
    its display name, and its address is made from it."""
    claim = current_claim()
    typed = " ".join(request.form.get("name", "").split())
    name = validation.org_name_from(typed)
    try:
        if name != typed and not validation.NAME.match(name):
            raise ValidationFailed(f"{typed!r} cannot name an org", [{
                "pointer": "/name",
                "message": "use at least 2 letters or digits: the org's address is made of them"}])
        org = service.create_org(claim, name, "" if name == typed else typed)
    except FORM_ERRORS as error:
        return home_page(claim, error=error, form=request.form)
    return redirect(f"/{org.name}", code=303)


# Orgs --------------------------------------------------------------------------------------


@pages.get("/<org>")
def org_page(org: str):
    """An org: its description and the workspaces the reader may see."""
    claim = current_claim()
    view = service.get_org(claim, org)
    return canonical(org, view.name) or org_view(view, feed=service.org_activity(claim,
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
        return org_view(view, error=error, form=form,
                         feed=service.org_activity(claim, view.name))
    return redirect(f"/{ws.org_name}/{ws.name}", code=303)


@pages.get("/<org>/-/members")
def members_page(org: str):
    """The org's members; owners add, change and remove them here."""
    claim = current_claim()
    view = service.get_org(claim, org, "list_members")
    return canonical(org, view.name) or members_view(claim, view)


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
        return members_view(claim, view, error, form)
    return redirect(f"/{view.name}/-/members", code=303)


@pages.post("/<org>/-/members/<username>/role")
def change_member_role(org: str, username: str):
    """Change a member's role."""
    claim = current_claim()
    view = service.get_org(claim, org, "manage_members")
    try:
        service.change_member_role(claim, org, username, request.form.get("role", ""))
    except FORM_ERRORS as error:
        return members_view(claim, view, error)
    return redirect(f"/{view.name}/-/members", code=303)


@pages.post("/<org>/-/members/<username>/remove")
def remove_member(org: str, username: str):
    """Remove a member, or leave the org."""
    claim = current_claim()
    view = service.get_org(claim, org, "list_members")
    try:
        service.remove_member(claim, org, username)
    except FORM_ERRORS as error:
        return members_view(claim, view, error)
    if username.lower() == auth.get_account(claim).username.lower():
        return redirect("/", code=303)  # left the org
    return redirect(f"/{view.name}/-/members", code=303)


@pages.get("/<org>/-/settings")
def org_settings_page(org: str):
    """Rename, describe or delete the org."""
    claim = current_claim()
    view = service.get_org(claim, org, "change_settings")
    return canonical(org, view.name) or org_settings_view(view)


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
        return org_settings_view(view, error, form)
    return redirect(f"/{view.name}/-/settings?saved=1", code=303)


@pages.post("/<org>/-/delete")
def delete_org(org: str):
    """Delete the org once its name is typed to confirm."""
    claim = current_claim()
    view = service.get_org(claim, org, "delete_org")
    if request.form.get("confirm", "").strip().lower() != view.name.lower():
        error = ValidationFailed("type the org's name to confirm", [
            {"pointer": "/confirm", "message": f"type {view.name} to confirm"}])
        return org_settings_view(view, error, request.form)
    try:
        service.delete_org(claim, org)
    except FORM_ERRORS as error:
        return org_settings_view(view, error)
    return redirect("/", code=303)


# Workspaces --------------------------------------------------------------------------------


@pages.get("/<org>/<workspace>/-/settings")
def workspace_settings_page(org: str, workspace: str):
    """Rename the workspace, change who sees it, or delete it."""
    claim = current_claim()
    ws = service.get_workspace(claim, org, workspace, "change_settings")
    return canonical(org, ws.org_name) or workspace_settings_view(ws)


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
        return workspace_settings_view(current, error, form)
    return redirect(f"/{ws.org_name}/{ws.name}/-/settings?saved=1", code=303)


@pages.post("/<org>/<workspace>/-/delete")
def delete_workspace(org: str, workspace: str):
    """Delete the workspace once its name is typed to confirm."""
    claim = current_claim()
    ws = service.get_workspace(claim, org, workspace, "change_settings")
    if request.form.get("confirm", "").strip().lower() != ws.name.lower():
        error = ValidationFailed("type the workspace's name to confirm", [
            {"pointer": "/confirm", "message": f"type {ws.name} to confirm"}])
        return workspace_settings_view(ws, error, request.form)
    service.delete_workspace(claim, org, workspace)
    return redirect(f"/{ws.org_name}", code=303)
