"""The API of what keeps runs safe: a workspace's run policy, an org's kill switch."""

from __future__ import annotations

from flask import Blueprint, jsonify

from chaoshub.core.openapi import Body, answers, body, docs
from chaoshub.core.web import credentials_first, current_claim
from chaoshub.dashboard import service
from chaoshub.dashboard.schemas import KillSwitch, RunPolicy

safety_api = Blueprint("dashboard_safety_api", __name__, url_prefix="/api/v1/orgs")
safety_api.url_value_preprocessor(credentials_first)


class PolicyChange(Body, RunPolicy):
    """A workspace's whole run policy; a field left out takes its default."""


class KillSwitchChange(Body):
    """Engage the kill switch (with a reason) or release it."""

    engaged: bool
    reason: str = ""


@safety_api.get("/<org>/workspaces/<workspace>/policy")
@docs.validate(resp=answers(RunPolicy, 401, 403, 404), tags=["runs"])
def get_policy(org: str, workspace: str):
    """What runs of the workspace's experiments may do."""
    return jsonify(service.get_run_policy(current_claim(), org, workspace).model_dump(
        mode="json"))


@safety_api.put("/<org>/workspaces/<workspace>/policy")
@docs.validate(json=PolicyChange, resp=answers(RunPolicy, 400, 401, 403, 404, 422),
               tags=["runs"])
def set_policy(org: str, workspace: str):
    """Replace the workspace's run policy (maintainers, signed in)."""
    change = body(PolicyChange)
    policy = RunPolicy(**change.model_dump())
    return jsonify(service.set_run_policy(current_claim(), org, workspace, policy).model_dump(
        mode="json"))


@safety_api.get("/<org>/kill-switch")
@docs.validate(resp=answers(KillSwitch, 401, 403, 404), tags=["runs"])
def get_kill_switch(org: str):
    """Whether the org's kill switch is engaged, by whom and why."""
    return jsonify(service.get_kill_switch(current_claim(), org).model_dump(mode="json"))


@safety_api.post("/<org>/kill-switch")
@docs.validate(json=KillSwitchChange, resp=answers(KillSwitch, 400, 401, 403, 404, 422),
               tags=["runs"])
def set_kill_switch(org: str):
    """Engage the kill switch (any member: the org's runs are aborted, new ones refused) or
    release it (owners and maintainers)."""
    change = body(KillSwitchChange)
    switch = service.set_kill_switch(current_claim(), org, change.engaged, change.reason)
    return jsonify(switch.model_dump(mode="json"))
