"""The workspace settings page of run environments: values shown, secrets by name only."""

from __future__ import annotations

import json
from urllib.parse import quote

from flask import Blueprint, make_response, redirect, render_template, request

from chaoshub.core.errors import HubError, ValidationFailed, problem, problems_by_field
from chaoshub.core.web import current_claim, signed_in_claim
from chaoshub.experiment import environments, grants
from chaoshub.experiment.environments import ConfigurationEntry, SecretEntry

environment_pages = Blueprint("experiment_environment_pages", __name__)

PAGE = "/<org>/<workspace>/-/environments"
TARGETS = {"var": "--var-file value", "env": "environment variable"}


@environment_pages.get(PAGE)
def environments_page(org: str, workspace: str):
    """The workspace's environments: their values, their secrets' names, and (for those who
    manage them) the forms that change them."""
    return _page(current_claim(), org, workspace)


@environment_pages.post(PAGE)
def create_environment(org: str, workspace: str):
    """The form that adds an environment."""
    form = request.form
    return _act(org, workspace, lambda claim: environments.create_environment(
        claim, org, workspace, form.get("name", "").strip(), form.get("description", ""),
        form.get("protected") == "on"))


@environment_pages.post(f"{PAGE}/<name>/values")
def set_value(org: str, workspace: str, name: str):
    """The form that adds or replaces a configuration value."""
    form = request.form
    key = form.get("key", "").strip()

    def change(claim: str):
        entry = ConfigurationEntry(value=_typed(form.get("value", ""), form.get("type")),
                                   target=_target(form.get("target")))
        return environments.update_environment(claim, org, workspace, name,
                                               configuration={key: entry})

    return _act(org, workspace, change)


@environment_pages.post(f"{PAGE}/<name>/values/<key>/delete")
def delete_value(org: str, workspace: str, name: str, key: str):
    """The button that removes a configuration value."""
    return _act(org, workspace, lambda claim: environments.update_environment(
        claim, org, workspace, name, configuration={key: None}))


@environment_pages.post(f"{PAGE}/<name>/secrets")
def set_secret(org: str, workspace: str, name: str):
    """The form that adds or replaces a secret (its value is never shown again)."""
    form = request.form
    entry = SecretEntry(value=form.get("value", ""), target=_target(form.get("target"), "env"),
                        scope=form.get("scope", "").strip())
    return _act(org, workspace, lambda claim: environments.set_secret(
        claim, org, workspace, name, form.get("key", "").strip(), entry))


@environment_pages.post(f"{PAGE}/<name>/secrets/<key>/delete")
def delete_secret(org: str, workspace: str, name: str, key: str):
    """The button that removes a secret."""
    return _act(org, workspace, lambda claim: environments.delete_secret(
        claim, org, workspace, name, key))


@environment_pages.post(f"{PAGE}/<name>/protection")
def set_protection(org: str, workspace: str, name: str):
    """The form that protects an environment, or stops protecting it."""
    protected = request.form.get("protected") == "on"
    return _act(org, workspace, lambda claim: environments.update_environment(
        claim, org, workspace, name, protected=protected))


@environment_pages.post(f"{PAGE}/<name>/delete")
def delete_environment(org: str, workspace: str, name: str):
    """The button that deletes an environment."""
    return _act(org, workspace, lambda claim: environments.delete_environment(
        claim, org, workspace, name))


def _act(org: str, workspace: str, change):
    claim = signed_in_claim()
    try:
        change(claim)
    except HubError as error:
        if error.status >= 500:
            raise
        # The page shown again never holds a value typed into it: it may be a secret.
        kept = {k: v for k, v in request.form.items() if k not in ("value", "csrf_token")}
        return _page(claim, org, workspace, error, kept)
    where = grants.by_name(claim, org, workspace)
    path = f"/{quote(where.org_name, safe='')}/{quote(where.name, safe='')}/-/environments"
    return redirect(f"{path}?saved=1", code=303)


def _page(claim: str, org: str, workspace: str, error: HubError | None = None, form=None):
    ws = grants.by_name(claim, org, workspace)
    listing = environments.list_environments(claim, org, workspace, limit=100)
    html = render_template(
        "experiment/environments.html", ws=ws, environments=listing.environments,
        managing=ws.allows(environments.MANAGE), targets=TARGETS, error=error,
        problems=problems_by_field(error.details) if error else {}, form=form or {},
        saved=request.args.get("saved") and not error)
    return make_response(html, error.status if error else 200)


def _target(value: str | None, default: str = "var") -> str:
    return value if value in TARGETS else default


def _typed(text: str, kind: str | None):
    # A form sends text: the value's type is chosen beside it.
    if kind == "number":
        try:
            number = json.loads(text)
        except ValueError:
            number = None
        if isinstance(number, (int, float)) and not isinstance(number, bool):
            return number
        raise ValidationFailed("the value is not valid", [problem("value", "enter a number")])
    if kind == "boolean":
        return text.strip().lower() in ("true", "yes", "on", "1")
    return text
