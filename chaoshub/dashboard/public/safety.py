"""What keeps runs safe, kept by dashboard: each workspace's run policy and each org's kill
switch. The experiment service applies them, from the grant it asks for."""

from __future__ import annotations

from flask import current_app

from chaoshub.core.db import transaction
from chaoshub.core.errors import ValidationFailed
from chaoshub.core.models import utcnow
from chaoshub.dashboard import permissions, store
from chaoshub.dashboard.interface import interface
from chaoshub.dashboard.public.access import org_access, signed_in, workspace_access
from chaoshub.dashboard.schemas import KillSwitch, RunPolicy
from chaoshub.dashboard.store import SERVICE
from chaoshub.dashboard.writes import write

KILL_SWITCH_ENGAGED = "org.kill_switch_engaged"
KILL_SWITCH_RELEASED = "org.kill_switch_released"
REASON_MAX = 500
RUNS_SCOPE = "runs:execute"  # what an API token needs to touch the kill switch


@interface.public
def get_run_policy(claim: str, org: str, workspace: str) -> RunPolicy:
    """A workspace's run policy, for the people who hold a role there."""
    user = signed_in(claim)
    with transaction(SERVICE) as session:
        _, ws, _ = workspace_access(session, user, org, workspace, "list_members")
        return RunPolicy(**(ws.run_policy or {}))


@interface.public
def set_run_policy(claim: str, org: str, workspace: str, policy: RunPolicy) -> RunPolicy:
    """Replace a workspace's run policy (its maintainers and the org's owners, signed in)."""
    user = signed_in(claim)
    with write(user.sub) as work:
        found, ws, _ = workspace_access(work.session, user, org, workspace, "change_settings")
        if policy.executor == "kubernetes" and current_app.config["RUN_EXECUTOR"] != \
                "kubernetes":
            raise ValidationFailed("the run policy cannot be saved", [{
                "pointer": "/executor", "message": "this hub runs experiments on its own "
                "workers only: running them as Kubernetes Jobs needs RUN_EXECUTOR=kubernetes"}])
        before = RunPolicy(**(ws.run_policy or {}))
        ws.run_policy = policy.model_dump(mode="json")
        work.forget(store.safety_key(ws.id))
        was = before.model_dump(mode="json")
        changed = {name: {"from": was[name], "to": value}
                   for name, value in policy.model_dump(mode="json").items()
                   if was[name] != value}
        if changed:
            who = store.username(work.session, user)
            work.audit(found.id, "workspace.run_policy_changed",
                       {"workspace": ws.name, "changes": changed})
            work.feed(found.id, "workspace.run_policy_changed",
                      f"{who} changed the run policy of {ws.name}", ws.id, "members")
    return policy


@interface.public(callers=("experiment",))
def get_kill_switch(claim: str, org: str) -> KillSwitch:
    """An org's kill switch, for its members (experiment's pages show it as a banner)."""
    user = signed_in(claim)
    with transaction(SERVICE) as session:
        found, _, _ = org_access(user, store.find_org(session, org), "list_members")
        return KillSwitch(**store.kill_switch(found))


@interface.public
def set_kill_switch(claim: str, org: str, engaged: bool, reason: str = "") -> KillSwitch:
    """Engage an org's kill switch (any member: every run of the org is aborted and none
    starts) or release it (owners and maintainers)."""
    user = signed_in(claim)
    permissions.check_scope(user, RUNS_SCOPE)
    reason = (reason or "").strip()
    if engaged and not reason:
        raise ValidationFailed("say why the kill switch is engaged",
                               [{"pointer": "/reason", "message": "a reason is needed"}])
    if len(reason) > REASON_MAX:
        raise ValidationFailed("the reason is too long",
                               [{"pointer": "/reason",
                                 "message": f"{REASON_MAX} characters at most"}])
    action = "engage_kill_switch" if engaged else "release_kill_switch"
    with write(user.sub) as work:
        found, _, _ = org_access(user, store.find_org(work.session, org), action)
        if found.kill_switch_engaged == engaged and (not engaged or
                                                     found.kill_switch_reason == reason):
            return KillSwitch(**store.kill_switch(found))
        who = store.username(work.session, user)
        found.kill_switch_engaged, found.kill_switch_reason = engaged, reason
        found.kill_switch_by_name, found.kill_switch_at = who, utcnow()
        work.forget(*[store.safety_key(ws.id) for ws in found.workspaces])
        verb = "engaged" if engaged else "released"
        work.audit(found.id, f"org.kill_switch_{verb}", {"reason": reason})
        work.feed(found.id, f"org.kill_switch_{verb}",
                  f"{who} {verb} the kill switch" + (f": {reason}" if reason else ""),
                  None, "members")
        # Experiment aborts the org's runs when it hears of an engagement (retried until it
        # does), and tells the workspaces' webhooks of both.
        work.emit(KILL_SWITCH_ENGAGED if engaged else KILL_SWITCH_RELEASED, ("org", found.id),
                  {"reason": reason, "workspace_ids": [ws.id for ws in found.workspaces],
                   "by": who})
        work.session.flush()
        return KillSwitch(**store.kill_switch(found))
