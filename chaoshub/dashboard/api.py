"""Dashboard's JSON API: orgs, workspaces, members, invitations, activity and audit (search,
which finds experiments too, is composed by the experiment service)."""

from __future__ import annotations

from flask import Blueprint, jsonify

from chaoshub.core.errors import NotFound
from chaoshub.core.openapi import answers, body, docs, query
from chaoshub.core.paging import PageQuery
from chaoshub.core.web import current_claim, external_url
from chaoshub.dashboard import api_models as m
from chaoshub.dashboard import service
from chaoshub.dashboard.audit_exports import jsonl_response, parse_day
from chaoshub.dashboard.schemas import (
    ActivityPage,
    InvitationView,
    MemberView,
    OrgView,
    WorkspaceMemberView,
    WorkspaceRef,
    WorkspaceView,
)

api = Blueprint("dashboard_api", __name__, url_prefix="/api/v1/orgs")
# What is not under one org: my invitations, my feed.
hub_api = Blueprint("dashboard_hub_api", __name__, url_prefix="/api/v1")

# Orgs --------------------------------------------------------------------------------------


@api.get("")
@docs.validate(resp=answers(m.OrgList, 401, 403), tags=["orgs"])
def list_orgs():
    """The orgs the caller belongs to."""
    return jsonify({"orgs": [_org(o) for o in service.list_orgs(current_claim())]})


@api.post("")
@docs.validate(json=m.NewOrg, resp=answers(OrgView, 400, 401, 409, 415, 422, status=201),
               tags=["orgs"])
def create_org():
    """Create an org; the caller becomes its owner."""
    org = service.create_org(current_claim(), body(m.NewOrg).name)
    return _created(_org(org), f"/api/v1/orgs/{org.name}")


@api.get("/<org>")
@docs.validate(resp=answers(OrgView, 403, 404), tags=["orgs"])
def get_org(org: str):
    """One org with the workspaces the caller may see (a former name works too)."""
    return jsonify(_org(service.get_org(current_claim(), org)))


@api.patch("/<org>")
@docs.validate(json=m.OrgChanges, resp=answers(OrgView, 400, 401, 403, 404, 409, 415, 422),
               tags=["orgs"])
def update_org(org: str):
    """Rename or describe an org."""
    changes = body(m.OrgChanges)
    # Null clears the description, address or email, as "" does; a field left out stays.
    cleared = {name: getattr(changes, name) or ""
               for name in changes.model_fields_set - {"name"}}
    return jsonify(_org(service.update_org(current_claim(), org, name=changes.name, **cleared)))


@api.delete("/<org>")
@docs.validate(resp=answers(None, 401, 403, 404, status=204), tags=["orgs"])
def delete_org(org: str):
    """Delete an org, its workspaces and their experiments."""
    service.delete_org(current_claim(), org)
    return "", 204


# Workspaces --------------------------------------------------------------------------------


@api.get("/<org>/workspaces")
@docs.validate(resp=answers(m.WorkspaceList, 403, 404), tags=["workspaces"])
def list_workspaces(org: str):
    """The org's workspaces the caller may see."""
    found = service.get_org(current_claim(), org)
    return jsonify({"workspaces": [_workspace(ws) for ws in found.workspaces]})


@api.post("/<org>/workspaces")
@docs.validate(json=m.NewWorkspace, resp=answers(WorkspaceView, 400, 401, 403, 404, 409, 415,
                                                 422, status=201), tags=["workspaces"])
def create_workspace(org: str):
    """Add a workspace to an org."""
    new = body(m.NewWorkspace)
    ws = service.create_workspace(current_claim(), org, new.name, visibility=new.visibility,
                                  outsider_executions=new.outsider_executions)
    return _created(_workspace(ws), f"/api/v1/orgs/{ws.org_name}/workspaces/{ws.name}")


@api.get("/<org>/workspaces/<workspace>")
@docs.validate(resp=answers(WorkspaceView, 404), tags=["workspaces"])
def get_workspace(org: str, workspace: str):
    """One workspace, if the caller may see it."""
    return jsonify(_workspace(service.get_workspace(current_claim(), org, workspace)))


@api.patch("/<org>/workspaces/<workspace>")
@docs.validate(tags=["workspaces"], json=m.WorkspaceChanges,
               resp=answers(WorkspaceView, 400, 401, 403, 404, 409, 415, 422))
def update_workspace(org: str, workspace: str):
    """Rename a workspace, or change its visibility or what outsiders see of executions."""
    changes = body(m.WorkspaceChanges)
    return jsonify(_workspace(service.update_workspace(
        current_claim(), org, workspace, name=changes.name, visibility=changes.visibility,
        outsider_executions=changes.outsider_executions)))


@api.delete("/<org>/workspaces/<workspace>")
@docs.validate(resp=answers(None, 401, 403, 404, status=204), tags=["workspaces"])
def delete_workspace(org: str, workspace: str):
    """Delete a workspace and its experiments."""
    service.delete_workspace(current_claim(), org, workspace)
    return "", 204


# Members -----------------------------------------------------------------------------------


@api.get("/<org>/members")
@docs.validate(query=PageQuery, resp=answers(m.MemberList, 400, 401, 403, 404),
               tags=["members"])
def list_members(org: str):
    """The org's members and their roles (to its members), owners first: ?cursor=, ?limit=."""
    page = service.page_members(current_claim(), org, *_page())
    return jsonify({"members": [_member(m) for m in page.members],
                    "next_cursor": page.next_cursor})


@api.post("/<org>/members")
@docs.validate(tags=["members"], json=m.NewMember,
               resp=answers(MemberView, 400, 401, 403, 404, 409, 415, 422, status=201))
def add_member(org: str):
    """Add an account to the org by username, with a role."""
    new = body(m.NewMember)
    member = service.add_member(current_claim(), org, new.username, new.role or "member")
    return _created(_member(member), f"/api/v1/orgs/{org}/members/{member.username}")


@api.get("/<org>/members/<username>")
@docs.validate(resp=answers(MemberView, 401, 403, 404), tags=["members"])
def get_member(org: str, username: str):
    """One member of the org."""
    for member in service.list_members(current_claim(), org):
        if member.username.lower() == username.lower():
            return jsonify(_member(member))
    raise NotFound(f"no member named {username!r}")


@api.patch("/<org>/members/<username>")
@docs.validate(tags=["members"], json=m.RoleChange,
               resp=answers(MemberView, 400, 401, 403, 404, 409, 415, 422))
def change_member_role(org: str, username: str):
    """Change a member's role."""
    role = body(m.RoleChange).role
    return jsonify(_member(service.change_member_role(current_claim(), org, username, role)))


@api.delete("/<org>/members/<username>")
@docs.validate(resp=answers(None, 401, 403, 404, 409, status=204), tags=["members"])
def remove_member(org: str, username: str):
    """Remove a member, or leave the org."""
    service.remove_member(current_claim(), org, username)
    return "", 204


# Workspace members -------------------------------------------------------------------------


@api.get("/<org>/workspaces/<workspace>/members")
@docs.validate(query=PageQuery, resp=answers(m.WorkspaceMemberList, 400, 401, 403, 404),
               tags=["members"])
def list_workspace_members(org: str, workspace: str):
    """The people given a role in the workspace (to those holding one): ?cursor=, ?limit=."""
    page = service.page_workspace_members(current_claim(), org, workspace, *_page())
    return jsonify({"members": [_workspace_member(m) for m in page.members],
                    "next_cursor": page.next_cursor})


@api.post("/<org>/workspaces/<workspace>/members")
@docs.validate(json=m.NewMember, resp=answers(WorkspaceMemberView, 400, 401, 403, 404, 409,
                                                       415, 422, status=201), tags=["members"])
def add_workspace_member(org: str, workspace: str):
    """Give an account a role in the workspace by username."""
    new = body(m.NewMember)
    member = service.add_workspace_member(current_claim(), org, workspace, new.username,
                                          new.role or "member")
    return _created(_workspace_member(member),
                    f"/api/v1/orgs/{org}/workspaces/{workspace}/members/{member.username}")


@api.get("/<org>/workspaces/<workspace>/members/<username>")
@docs.validate(resp=answers(WorkspaceMemberView, 401, 403, 404), tags=["members"])
def get_workspace_member(org: str, workspace: str, username: str):
    """One person's role in the workspace."""
    for member in service.list_workspace_members(current_claim(), org, workspace):
        if member.username.lower() == username.lower():
            return jsonify(_workspace_member(member))
    raise NotFound(f"no member named {username!r}")


@api.patch("/<org>/workspaces/<workspace>/members/<username>")
@docs.validate(tags=["members"], json=m.RoleChange,
               resp=answers(WorkspaceMemberView, 400, 401, 403, 404, 409, 415, 422))
def change_workspace_member_role(org: str, workspace: str, username: str):
    """Change someone's role in the workspace."""
    role = body(m.RoleChange).role
    member = service.change_workspace_member_role(current_claim(), org, workspace, username,
                                                  role)
    return jsonify(_workspace_member(member))


@api.delete("/<org>/workspaces/<workspace>/members/<username>")
@docs.validate(resp=answers(None, 401, 403, 404, 409, status=204), tags=["members"])
def remove_workspace_member(org: str, workspace: str, username: str):
    """Take someone's role in the workspace away, or give up one's own."""
    service.remove_workspace_member(current_claim(), org, workspace, username)
    return "", 204


# Invitations -------------------------------------------------------------------------------


@api.get("/<org>/invitations")
@docs.validate(query=PageQuery, resp=answers(m.InvitationList, 400, 401, 403, 404),
               tags=["invitations"])
def list_invitations(org: str):
    """The org's pending invitations (owners), newest first: ?cursor=, ?limit=."""
    page = service.page_invitations(current_claim(), org, *_page())
    return jsonify(page.model_dump(mode="json"))


@api.post("/<org>/invitations")
@docs.validate(json=m.NewInvitation, resp=answers(m.CreatedInvitation, 400, 401, 403, 404, 409,
                                                     415, 422, status=201), tags=["invitations"])
def create_invitation(org: str):
    """Invite by username, or (no username) make a link; a link's token is shown only here."""
    asked = body(m.NewInvitation)
    new = service.create_invitation(current_claim(), org, asked.role or "member",
                                    asked.username or None, asked.expires_in_days)
    answer = new.invitation.model_dump(mode="json")
    if new.token:
        answer["token"] = new.token
        answer["url"] = external_url(f"/invitations/{new.token}")
    return _created(answer, f"/api/v1/orgs/{new.invitation.org_name}/invitations")


@api.delete("/<org>/invitations/<invitation_id>")
@docs.validate(resp=answers(None, 401, 403, 404, status=204), tags=["invitations"])
def revoke_invitation(org: str, invitation_id: str):
    """Withdraw a pending invitation."""
    service.revoke_invitation(current_claim(), org, invitation_id)
    return "", 204


@hub_api.get("/invitations")
@docs.validate(query=PageQuery, resp=answers(m.InvitationList, 400, 401), tags=["invitations"])
def my_invitations():
    """The pending invitations addressed to the caller, newest first: ?cursor=, ?limit=."""
    page = service.page_my_invitations(current_claim(), *_page())
    return jsonify(page.model_dump(mode="json"))


@hub_api.post("/invitations/<token>/accept")
@docs.validate(resp=answers(InvitationView, 401, 403, 404, 409), tags=["invitations"])
def accept_invitation(token: str):
    """Join an org by an invitation link's token (or, for its invitee, by its id)."""
    return jsonify(service.accept_invitation(current_claim(), token).model_dump(mode="json"))


@hub_api.post("/invitations/<invitation_id>/decline")
@docs.validate(resp=answers(None, 401, 403, 404, 409, status=204), tags=["invitations"])
def decline_invitation(invitation_id: str):
    """Turn down an invitation addressed to the caller."""
    service.decline_invitation(current_claim(), invitation_id)
    return "", 204


# Activity and audit -------------------------------------------------------------------------


@hub_api.get("/activity")
@docs.validate(query=PageQuery, resp=answers(ActivityPage, 400, 401, 403),
               tags=["activity"])
def my_activity():
    """The caller's feed: their orgs' entries and their own, newest first."""
    return _feed(service.activity_feed(current_claim(), *_page()))


@api.get("/<org>/activity")
@docs.validate(query=PageQuery, resp=answers(ActivityPage, 400, 403, 404), tags=["activity"])
def org_activity(org: str):
    """An org's feed, as far as the caller may see it."""
    return _feed(service.org_activity(current_claim(), org, *_page()))


@api.get("/<org>/workspaces/<workspace>/activity")
@docs.validate(query=PageQuery, resp=answers(ActivityPage, 400, 404), tags=["activity"])
def workspace_activity(org: str, workspace: str):
    """A workspace's feed."""
    return _feed(service.workspace_activity(current_claim(), org, workspace, *_page()))


@api.get("/<org>/audit")
@docs.validate(query=m.AuditQuery, resp=answers(m.AuditLog, 400, 401, 403, 404), tags=["audit"])
def audit_log(org: str):
    """The org's audit log (owners): JSON, or JSON lines with ?format=jsonl."""
    args = query(m.AuditQuery)
    asked = (current_claim(), org, args.event or None, parse_day(args.since),
             parse_day(args.until, 1))
    if args.format == "jsonl":  # the export is the whole log, never a page
        return jsonl_response(service.audit_log(*asked), f"{org}-audit.jsonl")
    page = service.audit_page(*asked, args.cursor or None, args.limit)
    return jsonify(page.model_dump(mode="json"))


# Helpers -----------------------------------------------------------------------------------


def _created(body: dict, location: str):
    response = jsonify(body)
    response.status_code = 201
    response.headers["Location"] = location
    return response


def _org(org: OrgView) -> dict:
    return org.model_dump(mode="json")


def _workspace(ws: WorkspaceRef) -> dict:
    return ws.model_dump(mode="json")


def _member(member: MemberView) -> dict:
    return member.model_dump(mode="json")


def _workspace_member(member: WorkspaceMemberView) -> dict:
    return member.model_dump(mode="json")


def _page() -> tuple[str | None, int]:
    asked = query(PageQuery)
    return asked.cursor or None, asked.limit


def _feed(page: ActivityPage):
    return jsonify(page.model_dump(mode="json"))
