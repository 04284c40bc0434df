"""Dashboard's JSON API: orgs, their workspaces and members, under /api/v1/orgs."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request

from chaoshub.core.errors import BadRequest, NotFound
from chaoshub.core.web import current_claim
from chaoshub.dashboard import service
from chaoshub.dashboard.schemas import MemberView, OrgView, WorkspaceRef

api = Blueprint("dashboard_api", __name__, url_prefix="/api/v1/orgs")

ORG_FIELDS = ("name", "description", "url", "email")
WORKSPACE_FIELDS = ("name", "visibility", "outsider_executions")


# Orgs --------------------------------------------------------------------------------------


@api.get("")
def list_orgs():
    """The orgs the caller belongs to."""
    return jsonify({"orgs": [_org(o) for o in service.list_orgs(current_claim())]})


@api.post("")
def create_org():
    """Create an org; the caller becomes its owner."""
    claim = current_claim()
    org = service.create_org(claim, _fields(("name",)).get("name", ""))
    return _created(_org(org), f"/api/v1/orgs/{org.name}")


@api.get("/<org>")
def get_org(org: str):
    """One org with the workspaces the caller may see (a former name works too)."""
    return jsonify(_org(service.get_org(current_claim(), org)))


@api.patch("/<org>")
def update_org(org: str):
    """Rename or describe an org."""
    claim = current_claim()
    return jsonify(_org(service.update_org(claim, org, **_fields(ORG_FIELDS))))


@api.delete("/<org>")
def delete_org(org: str):
    """Delete an org, its workspaces and their experiments."""
    service.delete_org(current_claim(), org)
    return "", 204


# Workspaces --------------------------------------------------------------------------------


@api.get("/<org>/workspaces")
def list_workspaces(org: str):
    """The org's workspaces the caller may see."""
    found = service.get_org(current_claim(), org)
    return jsonify({"workspaces": [_workspace(ws) for ws in found.workspaces]})


@api.post("/<org>/workspaces")
def create_workspace(org: str):
    """Add a workspace to an org."""
    claim = current_claim()
    fields = _fields(WORKSPACE_FIELDS)
    ws = service.create_workspace(claim, org, fields.pop("name", ""), **fields)
    return _created(_workspace(ws), f"/api/v1/orgs/{ws.org_name}/workspaces/{ws.name}")


@api.get("/<org>/workspaces/<workspace>")
def get_workspace(org: str, workspace: str):
    """One workspace, if the caller may see it."""
    return jsonify(_workspace(service.get_workspace(current_claim(), org, workspace)))


@api.patch("/<org>/workspaces/<workspace>")
def update_workspace(org: str, workspace: str):
    """Rename a workspace, or change its visibility or what outsiders see of executions."""
    claim = current_claim()
    fields = _fields(WORKSPACE_FIELDS)
    return jsonify(_workspace(service.update_workspace(claim, org, workspace, **fields)))


@api.delete("/<org>/workspaces/<workspace>")
def delete_workspace(org: str, workspace: str):
    """Delete a workspace and its experiments."""
    service.delete_workspace(current_claim(), org, workspace)
    return "", 204


# Members -----------------------------------------------------------------------------------


@api.get("/<org>/members")
def list_members(org: str):
    """The org's members and their roles (to its members)."""
    members = service.list_members(current_claim(), org)
    return jsonify({"members": [_member(m) for m in members]})


@api.post("/<org>/members")
def add_member(org: str):
    """Add an account to the org by username, with a role."""
    claim = current_claim()
    fields = _fields(("username", "role"))
    member = service.add_member(claim, org, fields.get("username", ""),
                                fields.get("role") or "member")
    return _created(_member(member), f"/api/v1/orgs/{org}/members/{member.username}")


@api.get("/<org>/members/<username>")
def get_member(org: str, username: str):
    """One member of the org."""
    for member in service.list_members(current_claim(), org):
        if member.username.lower() == username.lower():
            return jsonify(_member(member))
    raise NotFound(f"no member named {username!r}")


@api.patch("/<org>/members/<username>")
def change_member_role(org: str, username: str):
    """Change a member's role."""
    claim = current_claim()
    role = _fields(("role",)).get("role", "")
    return jsonify(_member(service.change_member_role(claim, org, username, role)))


@api.delete("/<org>/members/<username>")
def remove_member(org: str, username: str):
    """Remove a member, or leave the org."""
    service.remove_member(current_claim(), org, username)
    return "", 204


# Helpers -----------------------------------------------------------------------------------


def _fields(allowed: tuple[str, ...]) -> dict[str, str]:
    body: Any = request.get_json()
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise BadRequest(f"unknown fields: {', '.join(unknown)}; known: {', '.join(allowed)}")
    fields = {}
    for name, value in body.items():
        if value is not None and not isinstance(value, str):
            raise BadRequest(f"{name} must be a string")
        fields[name] = value or ""  # null clears a field, as "" does
    return fields


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
