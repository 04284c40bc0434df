"""Dashboard's pages for invitations, workspace members, the audit log and search (on the
`pages` blueprint)."""

from __future__ import annotations

from flask import make_response, redirect, request

from chaoshub.auth import service as auth
from chaoshub.core.claims import verify
from chaoshub.core.errors import BadRequest, Conflict, NotFound
from chaoshub.core.web import current_claim, external_url, is_secure
from chaoshub.dashboard import service
from chaoshub.dashboard.audit_exports import jsonl_response, parse_day
from chaoshub.dashboard.page_views import (
    FORM_ERRORS,
    canonical,
    members_view,
    pages,
    render,
    workspace_view,
)

# Invitations -------------------------------------------------------------------------------

PENDING_INVITATION = "/invitations/pending"
INVITATION_COOKIE = "chaoshub_invitation"


@pages.post("/<org>/-/invitations")
def create_invitation(org: str):
    """Invite by username, or make a link; a link is shown on the page this once."""
    claim = current_claim()
    view = service.get_org(claim, org, "manage_members")
    form = request.form
    try:
        days = int(form.get("expires_in_days") or 7)
    except ValueError:
        days = 0  # refused by the service, with its message
    try:
        new = service.create_invitation(claim, org, form.get("role", "member"),
                                        form.get("username", "").strip() or None, days)
    except FORM_ERRORS as error:
        return members_view(claim, view, error, form)
    if new.token:
        return members_view(claim, view, new_link=external_url(f"/invitations/{new.token}"))
    return redirect(f"/{view.name}/-/members", code=303)


@pages.post("/<org>/-/invitations/<invitation_id>/revoke")
def revoke_invitation(org: str, invitation_id: str):
    """Withdraw a pending invitation."""
    claim = current_claim()
    view = service.get_org(claim, org, "manage_members")
    try:
        service.revoke_invitation(claim, org, invitation_id)
    except FORM_ERRORS as error:
        return members_view(claim, view, error)
    return redirect(f"/{view.name}/-/members", code=303)


@pages.get("/invitations/<token>")
def invitation_page(token: str):
    """An invitation link: who invites, into which org, as what; visitors sign in first."""
    claim = current_claim()
    if verify(claim).anonymous:
        # The secret waits in a cookie of this browser while its visitor signs in: in a
        # `next=` it would travel through redirects, access logs and the sign-in page.
        response = redirect(f"/signin?next={PENDING_INVITATION}", code=302)
        response.set_cookie(INVITATION_COOKIE, token, max_age=3600, path=PENDING_INVITATION,
                            secure=is_secure(), httponly=True, samesite="Lax")
        return response
    return _invitation_page(claim, token)


@pages.get(PENDING_INVITATION)
def pending_invitation_page():
    """The invitation link this browser opened before signing in."""
    token = request.cookies.get(INVITATION_COOKIE, "")
    response = make_response(_invitation_page(current_claim(), token))
    response.delete_cookie(INVITATION_COOKIE, path=PENDING_INVITATION, secure=is_secure(),
                           httponly=True, samesite="Lax")
    return response


def _invitation_page(claim: str, token: str):
    try:
        invitation = service.get_invitation(claim, token)
    except NotFound as error:
        return render("dashboard/invitation.html", error, invitation=None, token=token)
    return render("dashboard/invitation.html", None, invitation=invitation, token=token)


@pages.post("/invitations/<token>/accept")
def accept_invitation(token: str):
    """Join the org, then show it."""
    claim = current_claim()
    try:
        invitation = service.accept_invitation(claim, token)
    except Conflict:
        invitation = service.get_invitation(claim, token)  # a member already: just go there
    except NotFound as error:
        return render("dashboard/invitation.html", error, invitation=None, token=token)
    return redirect(f"/{invitation.org_name}", code=303)


@pages.post("/invitations/<invitation_id>/decline")
def decline_invitation(invitation_id: str):
    """Turn an invitation down, back to the dashboard."""
    service.decline_invitation(current_claim(), invitation_id)
    return redirect("/", code=303)


# Workspace members -------------------------------------------------------------------------


@pages.post("/<org>/<workspace>/-/members")
def add_workspace_member(org: str, workspace: str):
    """Give someone a role in the workspace, by username."""
    claim = current_claim()
    ws = service.get_workspace(claim, org, workspace, "manage_workspace_members")
    form = request.form
    try:
        service.add_workspace_member(claim, org, workspace, form.get("username", "").strip(),
                                     form.get("role", "member"))
    except FORM_ERRORS as error:
        return workspace_view(claim, ws, error, form)
    return redirect(f"/{ws.org_name}/{ws.name}#members", code=303)


@pages.post("/<org>/<workspace>/-/members/<username>/role")
def change_workspace_member_role(org: str, workspace: str, username: str):
    """Change someone's role in the workspace."""
    claim = current_claim()
    ws = service.get_workspace(claim, org, workspace, "manage_workspace_members")
    try:
        service.change_workspace_member_role(claim, org, workspace, username,
                                             request.form.get("role", ""))
    except FORM_ERRORS as error:
        return workspace_view(claim, ws, error)
    return redirect(f"/{ws.org_name}/{ws.name}#members", code=303)


@pages.post("/<org>/<workspace>/-/members/<username>/remove")
def remove_workspace_member(org: str, workspace: str, username: str):
    """Take someone's role in the workspace away, or give up one's own."""
    claim = current_claim()
    ws = service.get_workspace(claim, org, workspace, "list_members")
    try:
        service.remove_workspace_member(claim, org, workspace, username)
    except FORM_ERRORS as error:
        return workspace_view(claim, ws, error)
    if username.lower() == auth.get_account(claim).username.lower():
        return redirect("/", code=303)  # gave up their role: the workspace may be closed now
    return redirect(f"/{ws.org_name}/{ws.name}#members", code=303)


# Audit -------------------------------------------------------------------------------------


@pages.get("/<org>/-/audit")
def audit_page(org: str):
    """The org's audit log for its owners, filtered by event and dates."""
    claim = current_claim()
    view = service.get_org(claim, org)
    redirected = canonical(org, view.name)
    if redirected:
        return redirected
    args = request.args
    error = None
    try:
        entries = service.audit_log(claim, org, args.get("event") or None,
                                    parse_day(args.get("since")), parse_day(args.get("until"), 1))
    except BadRequest as problem:
        error, entries = problem, []
    return render("dashboard/audit.html", error, args, org=view, entries=entries[::-1])


@pages.get("/<org>/-/audit.jsonl")
def audit_export(org: str):
    """The org's audit log as JSON lines, with the page's filters."""
    args = request.args
    entries = service.audit_log(current_claim(), org, args.get("event") or None,
                                parse_day(args.get("since")), parse_day(args.get("until"), 1))
    return jsonl_response(entries, f"{org}-audit.jsonl")


# Search ------------------------------------------------------------------------------------


@pages.get("/search")
def search_page():
    """The search page's former address: to /-/search, which adds experiments and runs."""
    query = request.query_string.decode("latin-1")
    return redirect("/-/search" + (f"?{query}" if query else ""), code=301)
