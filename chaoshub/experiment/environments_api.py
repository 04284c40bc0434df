"""The API of a workspace's run environments: their configuration values and write-only
secrets (answers carry secrets' names, never their values)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify
from pydantic import Field

from chaoshub.core.openapi import Body, answers, body, docs, query
from chaoshub.core.paging import PageQuery
from chaoshub.core.schemas import Frozen
from chaoshub.core.web import credentials_first, current_claim, signed_in_claim
from chaoshub.experiment import environments
from chaoshub.experiment.environments import (
    ConfigurationEntry,
    EnvironmentView,
    SecretEntry,
    Target,
)

environments_api = Blueprint("experiment_environments", __name__, url_prefix="/api/v1")
environments_api.url_value_preprocessor(credentials_first)

BASE = "/orgs/<org>/workspaces/<workspace>/environments"


class NewEnvironment(Body):
    """An environment: its name, whether it is protected, its first values and secrets."""

    name: str
    description: str = ""
    protected: bool = False
    configuration: dict[str, ConfigurationEntry] = {}
    secrets: dict[str, SecretEntry] = {}


class EnvironmentChange(Body):
    """What to change of an environment; a configuration value of null removes it."""

    description: str | None = None
    protected: bool | None = None
    configuration: dict[str, ConfigurationEntry | None] = {}


class NewSecret(Body):
    """A secret's value (never shown again), and how runs get it."""

    value: str = Field(description="Kept encrypted; answers never show it.")
    target: Target = Field("env", description='"env": an environment variable of the run; '
                                              '"var": a --var-file secret of `scope`')
    scope: str = Field("", description="The experiment's secrets scope (target var only).")


class EnvironmentList(Frozen):
    """A page of a workspace's environments, by name."""

    environments: list[EnvironmentView]
    next_cursor: str | None


@environments_api.get(BASE)
@docs.validate(query=PageQuery, resp=answers(EnvironmentList, 400, 401, 403, 404),
               tags=["environments"])
def list_environments(org: str, workspace: str):
    """The workspace's environments by name (members and above): ?cursor=, ?limit=."""
    asked = query(PageQuery)
    page = environments.list_environments(current_claim(), org, workspace,
                                          asked.cursor or None, asked.limit)
    return jsonify(page.model_dump(mode="json"))


@environments_api.post(BASE)
@docs.validate(json=NewEnvironment, tags=["environments"],
               resp=answers(EnvironmentView, 400, 401, 403, 404, 409, 415, 422, status=201))
def create_environment(org: str, workspace: str):
    """Add an environment (maintainers and owners); 201 with it, its secrets by name only."""
    new = body(NewEnvironment)
    view = environments.create_environment(signed_in_claim(), org, workspace, new.name,
                                           new.description, new.protected, new.configuration,
                                           new.secrets)
    response = jsonify(view.model_dump(mode="json"))
    response.status_code = 201
    response.headers["Location"] = f"/api/v1/orgs/{org}/workspaces/{workspace}/environments/" \
                                   f"{view.name}"
    return response


@environments_api.get(f"{BASE}/<name>")
@docs.validate(resp=answers(EnvironmentView, 401, 403, 404), tags=["environments"])
def get_environment(org: str, workspace: str, name: str):
    """One environment: its configuration values, and its secrets' names."""
    view = environments.get_environment(current_claim(), org, workspace, name)
    return jsonify(view.model_dump(mode="json"))


@environments_api.patch(f"{BASE}/<name>")
@docs.validate(json=EnvironmentChange, tags=["environments"],
               resp=answers(EnvironmentView, 400, 401, 403, 404, 409, 415, 422))
def update_environment(org: str, workspace: str, name: str):
    """Change the description, the protection or configuration values (null removes one)."""
    change = body(EnvironmentChange)
    view = environments.update_environment(signed_in_claim(), org, workspace, name,
                                           change.description, change.protected,
                                           change.configuration)
    return jsonify(view.model_dump(mode="json"))


@environments_api.delete(f"{BASE}/<name>")
@docs.validate(resp=answers(None, 401, 403, 404, status=204), tags=["environments"])
def delete_environment(org: str, workspace: str, name: str):
    """Delete an environment with its values and secrets."""
    environments.delete_environment(signed_in_claim(), org, workspace, name)
    return Response(status=204)


@environments_api.put(f"{BASE}/<name>/secrets/<secret>")
@docs.validate(json=NewSecret, tags=["environments"],
               resp=answers(EnvironmentView, 400, 401, 403, 404, 409, 415, 422))
def set_secret(org: str, workspace: str, name: str, secret: str):
    """Add or replace a secret; the answer is the environment, the secret by name only."""
    given = body(NewSecret)
    entry = SecretEntry(value=given.value, target=given.target, scope=given.scope)
    view = environments.set_secret(signed_in_claim(), org, workspace, name, secret, entry)
    return jsonify(view.model_dump(mode="json"))


@environments_api.delete(f"{BASE}/<name>/secrets/<secret>")
@docs.validate(resp=answers(EnvironmentView, 401, 403, 404), tags=["environments"])
def delete_secret(org: str, workspace: str, name: str, secret: str):
    """Remove a secret of an environment; the answer is the environment."""
    view = environments.delete_secret(signed_in_claim(), org, workspace, name, secret)
    return jsonify(view.model_dump(mode="json"))
