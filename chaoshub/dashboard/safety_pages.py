"""Dashboard's pages for what keeps runs safe (on the `pages` blueprint): the org page's kill
switch forms and the workspace settings page's run policy form."""

from __future__ import annotations

from flask import redirect, request

from chaoshub.core.web import current_claim
from chaoshub.dashboard import service
from chaoshub.dashboard.page_views import FORM_ERRORS, org_view, pages, workspace_settings_view
from chaoshub.dashboard.policy_form import policy_from, submitted_policy

# The kill switch -----------------------------------------------------------------------------


@pages.post("/<org>/-/kill-switch/engage")
def engage_kill_switch(org: str):
    """The org page's emergency stop: any member engages it, saying why."""
    return _switch(org, True, request.form.get("reason", ""))


@pages.post("/<org>/-/kill-switch/release")
def release_kill_switch(org: str):
    """Release the kill switch (owners and maintainers): runs may start again."""
    return _switch(org, False)


def _switch(org: str, engaged: bool, reason: str = ""):
    claim = current_claim()
    view = service.get_org(claim, org)  # the page the form is on: 404 for those who cannot see it
    try:
        service.set_kill_switch(claim, org, engaged, reason)
    except FORM_ERRORS as error:
        return org_view(view, error=error, form=request.form,
                         feed=service.org_activity(claim, view.name))
    return redirect(f"/{view.name}?kill_switch={'engaged' if engaged else 'released'}",
                    code=303)


# The run policy ------------------------------------------------------------------------------


@pages.post("/<org>/<workspace>/-/policy")
def update_run_policy(org: str, workspace: str):
    """Save the workspace's run policy from its settings page (maintainers)."""
    claim = current_claim()
    ws = service.get_workspace(claim, org, workspace, "change_settings")
    shown = submitted_policy(request.form,
                             service.get_run_policy(claim, ws.org_name, ws.name))
    try:
        service.set_run_policy(claim, org, workspace, policy_from(shown))
    except FORM_ERRORS as error:
        return workspace_settings_view(ws, error, policy=shown)
    return redirect(f"/{ws.org_name}/{ws.name}/-/settings?saved=1#run-policy", code=303)
