"""The API of a workspace's git repository: the link (a token or deploy key is never shown
back; the webhook secret once), syncs and their history, and the push webhook endpoint the
repository's host calls (signed, no sign-in)."""

from __future__ import annotations

from typing import Literal

from flask import Blueprint, Response, jsonify, request
from pydantic import Field

from chaoshub.core.openapi import Body, Query, answers, body, docs, query
from chaoshub.core.paging import PageQuery
from chaoshub.core.web import credentials_first, current_claim, signed_in_claim
from chaoshub.experiment import git_sync_requests, service
from chaoshub.experiment.git_sync_views import HookAnswer, SyncPage, SyncView
from chaoshub.experiment.repository_links import RepositoryView, SavedRepository

repositories_api = Blueprint("experiment_repositories", __name__, url_prefix="/api/v1")
repositories_api.url_value_preprocessor(credentials_first)
# No sign-in: the repository's host signs its deliveries with the link's webhook secret.
git_hooks = Blueprint("git_hooks", __name__, url_prefix="/api/v1")

BASE = "/orgs/<org>/workspaces/<workspace>"


class RepositoryLinkBody(Body):
    """The repository a workspace syncs with: its URL (https://, ssh:// or git@host:path),
    branch, the globs of its experiment files (`**` spans folders), and a credential: an
    access `token`, or `deploy_key`: true for a key pair the hub makes (its public half is
    answered; add it to the repository as a read-only deploy key)."""

    url: str
    branch: str = "main"
    paths: list[str] = Field(..., description="globs such as chaos/**/*.json")
    token: str | None = Field(None, description="an access token; \"\" removes it")
    deploy_key: bool | None = Field(None, description="true: a deploy key (kept when the link "
                                                      "has one); false: none")
    rotate_deploy_key: bool = False
    rotate_webhook_secret: bool = Field(False, description="answer a new webhook secret")
    forget_host_key: bool = Field(False, description="forget the pinned ssh host keys: the "
                                                     "next sync trusts the key it meets")


class SyncQuery(Query):
    """What a sync does after it: `run=changed` starts hub runs of what changed."""

    run: Literal["changed", ""] = Field("", description="changed: then start hub runs of the "
                                                  "experiments whose files or declared "
                                                  "dependencies changed")


@repositories_api.get(f"{BASE}/repository")
@docs.validate(resp=answers(RepositoryView, 401, 403, 404), tags=["repositories"])
def get_repository(org: str, workspace: str):
    """The repository linked to the workspace (never its token, private key or webhook
    secret)."""
    found = service.get_repository(current_claim(), org, workspace)
    return jsonify(found.model_dump(mode="json"))


@repositories_api.put(f"{BASE}/repository")
@docs.validate(json=RepositoryLinkBody, tags=["repositories"],
               resp=answers(SavedRepository, 400, 401, 403, 404, 415, 422, status=(200, 201)))
def put_repository(org: str, workspace: str):
    """Link the workspace to a repository, or change its link (maintainers and owners); 201
    when made, with its webhook secret, shown this once (and on `rotate_webhook_secret`)."""
    asked = body(RepositoryLinkBody)
    saved = service.put_repository(signed_in_claim(), org, workspace, asked.url, asked.branch,
                                   list(asked.paths), asked.token, asked.deploy_key,
                                   asked.rotate_deploy_key, asked.rotate_webhook_secret,
                                   asked.forget_host_key)
    response = jsonify(saved.model_dump(mode="json"))
    response.status_code = 201 if saved.created else 200
    response.headers["Cache-Control"] = "no-store"
    return response


@repositories_api.delete(f"{BASE}/repository")
@docs.validate(resp=answers(None, 401, 403, 404, status=204), tags=["repositories"])
def delete_repository(org: str, workspace: str):
    """Unlink the repository; the synced experiments stay, editable on the hub again."""
    service.delete_repository(signed_in_claim(), org, workspace)
    return Response(status=204)


@repositories_api.post(f"{BASE}/sync")
@docs.validate(query=SyncQuery, resp=answers(SyncView, 401, 403, 404, 409, status=202),
               tags=["repositories"])
def request_sync(org: str, workspace: str):
    """Sync the workspace with its repository (a worker does it: poll the sync);
    `?run=changed` then runs the experiments whose files or dependencies changed. A sync
    queued already is the one answered."""
    run_changed = query(SyncQuery).run == "changed"
    found = service.request_sync(signed_in_claim(), org, workspace, run_changed)
    response = jsonify(found.model_dump(mode="json"))
    response.status_code = 202
    response.headers["Location"] = f"/api/v1/syncs/{found.id}"
    return response


@repositories_api.get(f"{BASE}/syncs")
@docs.validate(query=PageQuery, resp=answers(SyncPage, 400, 401, 403, 404),
               tags=["repositories"])
def list_syncs(org: str, workspace: str):
    """The workspace's syncs, newest first: ?cursor=, ?limit=."""
    asked = query(PageQuery)
    page = service.list_syncs(current_claim(), org, workspace, asked.cursor or None,
                              asked.limit)
    return jsonify(page.model_dump(mode="json"))


@repositories_api.get("/syncs/<sync_id>")
@docs.validate(resp=answers(SyncView, 401, 404), tags=["repositories"])
def get_sync(sync_id: str):
    """One sync: its status, commit range, what it created, updated, removed, found invalid,
    and the runs it started (or was refused) and why."""
    return jsonify(service.get_sync(current_claim(), sync_id).model_dump(mode="json"))


@git_hooks.post("/hooks/git/<link_id>")
@docs.validate(query=SyncQuery, resp=answers(HookAnswer, 401, 429, status=(200, 202)),
               tags=["repositories"])
def git_push(link_id: str):
    """A push webhook (GitHub: `X-Hub-Signature-256` with the webhook secret; GitLab:
    `X-Gitlab-Token`): queues a sync of a push to the linked branch (`?run=changed`: and runs
    what changed), once per delivery and pushed commit; never waits for it."""
    status, answer = git_sync_requests.receive_push(
        link_id, dict(request.headers), request.get_data(cache=True),
        request.remote_addr or "", query(SyncQuery).run == "changed")
    return jsonify(answer.model_dump(mode="json")), status
