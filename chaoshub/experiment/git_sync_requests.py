"""Asking for syncs: a person's request, a push webhook (its signature checked, each delivery
and pushed commit queued once), and reading a sync or the history; a worker does them
(`git_sync`)."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any
from urllib.parse import parse_qs

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from chaoshub.core import claims, paging, ratelimit
from chaoshub.core.db import transaction
from chaoshub.core.errors import Conflict, Forbidden, NotFound, Unauthorized
from chaoshub.core.models import new_id, utcnow
from chaoshub.experiment import git_mirror, grants, journals, repository_links
from chaoshub.experiment.git_sync_views import HookAnswer, SyncPage, SyncView, sync_view, view_of
from chaoshub.experiment.models import GitSync, RepositoryLink
from chaoshub.experiment.secret_box import SecretUnreadable

SERVICE = "experiment"
LISTING = "git syncs"
HOOK_FAILURES = 30  # wrong signatures per link and address, per window, before 429
HOOK_WINDOW = 600
ZERO = "0" * 40


def request_sync(claim: str, org: str, workspace: str, run_changed: bool = False) -> SyncView:
    """Queue a sync of the workspace with its repository (a sync queued already is the one
    answered); with `run_changed`, it runs what changed. For those who may write the
    workspace's experiments (and run them, with `run_changed`)."""
    user = claims.verify(claim)
    if user.anonymous:
        raise Unauthorized("sign in or send an API token to sync")
    if not user.allows(repository_links.WRITE_SCOPE):
        raise Forbidden(f"the credential lacks the {repository_links.WRITE_SCOPE} scope")
    where = repository_links.visible(claim, org, workspace)
    grants.require(where, "write")
    if run_changed:
        if not user.allows("runs:execute"):
            raise Forbidden("the credential lacks the runs:execute scope")
        grants.require(where, "run")
    link = repository_links.link_of_workspace(where.id)
    if link is None:
        raise Conflict("no repository is linked to this workspace: link one first")
    sync_id = _queue(link, "manual", user.sub, user.name, run_changed)
    return view_of(sync_id)


def get_sync(claim: str, sync_id: str) -> SyncView:
    """One sync, for those who may read its workspace (a token: with experiments:read)."""
    user = claims.verify(claim)
    if not user.anonymous and not user.allows(repository_links.READ_SCOPE):
        raise Forbidden(f"the credential lacks the {repository_links.READ_SCOPE} scope")
    if not isinstance(sync_id, str) or len(sync_id) > 36:
        raise NotFound("no such sync")
    with transaction(SERVICE) as session:
        row = session.get(GitSync, sync_id)
        if row is None:
            raise NotFound("no such sync")
        session.expunge(row)
    try:
        where = grants.by_id(claim, row.workspace_id)
    except (NotFound, Forbidden) as exc:
        raise NotFound("no such sync") from exc
    if not where.allows("read"):
        raise NotFound("no such sync")
    return sync_view(row)


def list_syncs(claim: str, org: str, workspace: str, cursor: str | None = None,
               limit: int | str | None = None) -> SyncPage:
    """A page of the workspace's syncs, newest first."""
    where = repository_links.reader(claim, org, workspace)
    with transaction(SERVICE) as session:
        rows, next_cursor = paging.newest_first(
            session, select(GitSync).where(GitSync.workspace_id == where.id),
            GitSync.created_at, GitSync.id, cursor, LISTING, [where.id], limit)
        return SyncPage(syncs=[sync_view(r) for r in rows], next_cursor=next_cursor)


def receive_push(link_id: str, headers: dict[str, str], body: bytes, client: str,
                 run_changed: bool = False) -> tuple[int, HookAnswer]:
    """A push webhook from GitHub (`X-Hub-Signature-256`) or GitLab (`X-Gitlab-Token`): the
    answer's status and body. Verified with the link's webhook secret (401, nothing synced,
    when wrong); a push to another branch is ignored; the same delivery, or the same pushed
    head synced or queued already, queues nothing more (a delivery whose sync failed does,
    once more). Never waits for the sync."""
    headers = {k.lower(): v for k, v in headers.items()}
    who = f"{link_id}:{client}"
    ratelimit.refuse_when_over(SERVICE, "git-hook", who, HOOK_FAILURES, HOOK_WINDOW)
    link = None
    if isinstance(link_id, str) and len(link_id) <= 36:
        with transaction(SERVICE) as session:
            link = session.get(RepositoryLink, link_id)
            if link is not None:
                session.expunge(link)
    if link is None or not _signed(link, headers, body):
        ratelimit.record_failure(SERVICE, "git-hook", who, HOOK_WINDOW)
        raise Unauthorized("the webhook's signature (or token) is missing or wrong")
    event = headers.get("x-github-event") or headers.get("x-gitlab-event") or ""
    if event == "ping":
        return 200, HookAnswer(status="pong")
    if event not in ("push", "Push Hook"):
        return 202, HookAnswer(status="ignored", reason=f"not a push ({event or 'no event'})")
    payload = _payload(headers, body)
    ref, pushed = payload.get("ref"), payload.get("after")
    if ref != f"refs/heads/{link.branch}":
        return 202, HookAnswer(status="ignored", reason=f"a push to another branch ({ref})")
    if not isinstance(pushed, str) or not git_mirror.SHA.match(pushed) or pushed == ZERO:
        return 202, HookAnswer(status="ignored", reason="the branch was deleted")
    delivery = (headers.get("x-github-delivery") or headers.get("x-gitlab-event-uuid")
                or headers.get("x-gitlab-webhook-uuid") or None)
    delivery = delivery[:200] if delivery else None
    sync_id = _queue(link, "webhook", link.created_by, link.created_by_name, run_changed,
                     delivery, pushed)
    if sync_id is None:
        return 202, HookAnswer(status="ignored", reason="this commit is synced already")
    return 202, HookAnswer(status=view_of(sync_id).status, id=sync_id)


def _signed(link: RepositoryLink, headers: dict[str, str], body: bytes) -> bool:
    try:
        secret = repository_links.webhook_secret(link)
    except SecretUnreadable:
        return False
    signature = headers.get("x-hub-signature-256")
    if signature is not None:
        expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected.encode(), signature.strip().encode())
    token = headers.get("x-gitlab-token")
    if token is not None:
        return hmac.compare_digest(secret.encode(), token.encode())
    return False


def _payload(headers: dict[str, str], body: bytes) -> dict[str, Any]:
    try:
        if headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            body = parse_qs(body.decode()).get("payload", [""])[0].encode()
        found = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        # RecursionError: nested past the parser's depth; like any unreadable body, no push.
        return {}
    return found if isinstance(found, dict) else {}


def _queue(link: RepositoryLink, trigger: str, user_id: str, user_name: str,
           run_changed: bool, delivery: str | None = None, pushed: str | None = None
           ) -> str | None:
    """The sync that will take the link's repository as it is: a queued one (asked to run what
    changed, if this asks it), the one of this delivery or pushed head, or a new one; None
    when the pushed head is synced already."""
    try:
        with transaction(SERVICE) as session:
            # Locked: two requests at once queue one sync.
            held = session.scalar(select(RepositoryLink).where(
                RepositoryLink.id == link.id).with_for_update())
            if held is None:
                raise Conflict("the repository was unlinked meanwhile")
            if delivery is not None:
                same = session.execute(select(GitSync.id, GitSync.status).where(
                    GitSync.link_id == link.id, GitSync.delivery_id == delivery)).first()
                if same is not None and same.status != "failed":
                    return same.id
                if same is not None:
                    # Redelivered (GitHub's Redeliver keeps the id) after its sync failed: a
                    # new sync, found again by its pushed commit while it waits.
                    delivery = None
            if pushed is not None:
                same = session.scalar(select(GitSync.id).where(
                    GitSync.link_id == link.id, GitSync.status.in_(("queued", "running")),
                    GitSync.pushed_commit == pushed).limit(1))
                if same is not None:
                    return same
                if pushed == held.last_synced_commit:
                    return None
            waiting = session.scalar(select(GitSync).where(
                GitSync.workspace_id == link.workspace_id, GitSync.status == "queued")
                .order_by(GitSync.created_at).limit(1))
            if waiting is not None:
                if run_changed and not waiting.run_changed:
                    # The runs are this caller's to ask: the sync now acts as them (never
                    # starting runs in the name of one who asked for none).
                    waiting.run_changed, waiting.trigger = True, trigger
                    waiting.requested_by = user_id
                    waiting.requested_by_name = journals.text(user_name, 500)
                return waiting.id
            row = GitSync(id=new_id(), workspace_id=link.workspace_id, org_id=link.org_id,
                          link_id=link.id, status="queued", trigger=trigger,
                          run_changed=run_changed, requested_by=user_id,
                          requested_by_name=journals.text(user_name, 500),
                          delivery_id=delivery, pushed_commit=pushed, error="",
                          created_at=utcnow())
            session.add(row)
            session.flush()
            return row.id
    except IntegrityError:
        # The same delivery, queued by another process at the same moment.
        with transaction(SERVICE) as session:
            return session.scalar(select(GitSync.id).where(
                GitSync.link_id == link.id, GitSync.delivery_id == delivery))
