"""The workspace's Repository page: the git repository its experiments are synced from (the
form that links, changes or unlinks it, the deploy key's public half, the webhook to add to
the repository, its secret shown once), the Sync buttons, and the history of syncs, each with
its own page (what it created, updated, removed, found invalid, and the runs it started)."""

from __future__ import annotations

from urllib.parse import quote

from flask import Blueprint, make_response, redirect, render_template, request

from chaoshub.core.errors import HubError, NotFound, ValidationFailed, problem, problems_by_field
from chaoshub.core.web import current_claim, external_url, signed_in_claim
from chaoshub.experiment import grants, repository_links, service
from chaoshub.experiment.presenters import experiment_path

repository_pages = Blueprint("experiment_repository_pages", __name__)

PAGE = "/<org>/<workspace>/-/repository"
SYNC = f"{PAGE}/syncs/<sync_id>"
SYNCS_SHOWN = 20
CREDENTIALS = {"keep": "Keep the current one", "none": "None (a public repository)",
               "token": "An access token",
               "deploy_key": "A deploy key the hub makes (for ssh:// and git@ URLs)"}
DONE = {"changed": "Saved.",
        "forgotten": "The pinned host key is forgotten: the next sync trusts the key it meets.",
        "unlinked": "Unlinked: the synced experiments stay, editable "
        "on the hub again."}


@repository_pages.app_context_processor
def _helpers() -> dict:
    return {"repository_branch": repository_branch}


def repository_branch(org: str, workspace: str) -> str | None:
    """The branch of the repository linked to the workspace, for the notice of a synced
    experiment's pages; None when the reader may not see it (or nothing is linked)."""
    try:
        return service.get_repository(current_claim(), org, workspace).branch
    except HubError:
        return None


@repository_pages.get(PAGE)
def repository_page(org: str, workspace: str):
    """The workspace's repository link, the forms that change it (maintainers and owners),
    the Sync buttons and the history of syncs."""
    return _page(current_claim(), org, workspace)


@repository_pages.post(PAGE)
def save_link(org: str, workspace: str):
    """The form that links the workspace to a repository, or changes its link."""
    claim = signed_in_claim()
    form = request.form
    current = _link(claim, org, workspace)
    choice = form.get("credential") or ("keep" if current else "none")
    url, branch = form.get("url", "").strip(), form.get("branch", "").strip() or "main"
    paths = [line.strip() for line in form.get("paths", "").splitlines() if line.strip()]
    token, deploy_key = None, None
    if choice == "token":
        token = form.get("token", "").strip() or None  # none: the token kept as it is
        asked = None
        if token is None and not (current and current.credential == "token"):
            asked = "type the access token"
        elif token is None and current.url != url:
            # The kept token is never sent to another repository: asked for, not dropped.
            asked = ("type the access token for the new URL: the current one is not sent to "
                     "another repository")
        if asked:
            # With whatever else the form has wrong: one answer says it all.
            error = ValidationFailed("the repository link is not valid", [
                problem("token", asked), *repository_links.link_problems(
                    url, branch, paths, None, None)])
            return _page(claim, org, workspace, error, _kept(form))
    elif choice == "deploy_key":
        deploy_key = True
    elif choice == "none":
        token = ""
    try:
        saved = service.put_repository(
            claim, org, workspace, url, branch, paths, token, deploy_key,
            rotate_deploy_key=form.get("rotate_deploy_key") == "on",
            rotate_webhook_secret=form.get("rotate_webhook_secret") == "on")
    except HubError as error:
        if error.status >= 500:
            raise
        return _page(claim, org, workspace, error, _kept(form))
    if saved.webhook_secret is None:
        where = grants.by_name(claim, org, workspace)
        return redirect(f"{_base(where)}?done=changed", code=303)
    # The webhook secret shows on this answer only: never in a redirect's URL or a cache.
    response = _page(claim, org, workspace, saved=saved)
    response.status_code = 201 if saved.created else 200
    response.headers["Cache-Control"] = "no-store"
    return response


@repository_pages.post(f"{PAGE}/unlink")
def unlink(org: str, workspace: str):
    """The button that unlinks the repository (the synced experiments stay)."""
    claim = signed_in_claim()
    service.delete_repository(claim, org, workspace)
    where = grants.by_name(claim, org, workspace)
    return redirect(f"{_base(where)}?done=unlinked", code=303)


@repository_pages.post(f"{PAGE}/forget-host-key")
def forget_host_key(org: str, workspace: str):
    """The button that forgets the pinned ssh host keys (the next sync trusts anew)."""
    claim = signed_in_claim()
    service.forget_host_keys(claim, org, workspace)
    where = grants.by_name(claim, org, workspace)
    return redirect(f"{_base(where)}?done=forgotten", code=303)


@repository_pages.post(f"{PAGE}/sync")
def sync_now(org: str, workspace: str):
    """The Sync buttons: a sync is queued (a worker does it), and its page opens."""
    claim = signed_in_claim()
    try:
        sync = service.request_sync(claim, org, workspace,
                                    run_changed=request.form.get("run") == "changed")
    except HubError as error:
        if error.status >= 500 or error.status in (401, 404):
            raise
        return _page(claim, org, workspace, error)
    where = grants.by_name(claim, org, workspace)
    return redirect(f"{_base(where)}/syncs/{quote(sync.id, safe='')}", code=303)


@repository_pages.get(SYNC)
def sync_page(org: str, workspace: str, sync_id: str):
    """One sync: its commits, what it created, updated, removed and found invalid, and the
    runs it started and why."""
    claim = current_claim()
    where = grants.by_name(claim, org, workspace)
    sync = service.get_sync(claim, sync_id)
    if sync.workspace_id != where.id:
        raise NotFound("no such sync in this workspace")
    place = f"/{quote(where.org_name, safe='')}/{quote(where.name, safe='')}"
    response = make_response(render_template(
        "experiment/sync.html", ws=where, sync=sync, base=_base(where),
        experiment_url=lambda experiment_id: experiment_path(where.org_name, where.name,
                                                             experiment_id),
        place=place))
    if sync.status in ("queued", "running"):
        # Until it ends, the page looks again by itself (no script: a refresh header).
        response.headers["Refresh"] = "2"
    return response


def _link(claim: str, org: str, workspace: str):
    try:
        return service.get_repository(claim, org, workspace)
    except NotFound:
        return None


def _kept(form) -> dict:
    # What the form shows again after a refusal: never the token typed.
    return {"url": form.get("url", ""), "branch": form.get("branch", ""),
            "paths": form.get("paths", ""), "credential": form.get("credential", "")}


def _base(where) -> str:
    return f"/{quote(where.org_name, safe='')}/{quote(where.name, safe='')}/-/repository"


def _page(claim: str, org: str, workspace: str, error: HubError | None = None,
          form: dict | None = None, saved=None):
    where = grants.by_name(claim, org, workspace)
    link = saved or _link(claim, org, workspace)
    syncs = service.list_syncs(claim, org, workspace, request.args.get("cursor") or None,
                               SYNCS_SHOWN) if link else None
    managing = service.may_manage_repository(claim, org, workspace)
    problems = problems_by_field(error.details) if error else {}
    html = render_template(
        "experiment/repository.html", ws=where, link=link, saved=saved, syncs=syncs,
        base=_base(where), managing=managing, may_sync="write" in where.allowed,
        may_run="run" in where.allowed, credentials=CREDENTIALS, error=error,
        problems=problems, form=form or {}, done=None if error else DONE.get(
            request.args.get("done", "")),
        webhook_url=external_url(link.webhook_path) if link else None)
    return make_response(html, error.status if error else 200)
