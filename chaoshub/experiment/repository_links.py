"""A workspace's link to a git repository: its URL, branch and experiment file globs, the
credentials to fetch it, and the secret its push webhooks are signed with.

Changed by those who may manage the workspace's webhooks (maintainers and owners), read by
those who may read the workspace. An access token and a deploy key's private half are kept
sealed (secret_box.py) and never shown again; the webhook secret is shown once, in the answer
that makes the link or rotates it. None goes into any other answer, log line, feed or audit
entry.
"""

from __future__ import annotations

import base64
import secrets
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import current_app
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from chaoshub.core import claims
from chaoshub.core.cache import cache
from chaoshub.core.claims import UserClaim
from chaoshub.core.db import transaction
from chaoshub.core.errors import Forbidden, NotFound, Unauthorized, ValidationFailed, problem
from chaoshub.core.models import new_id, utcnow
from chaoshub.core.schemas import Frozen
from chaoshub.dashboard.service import WorkspaceGrant
from chaoshub.experiment import git_mirror, grants, secret_box
from chaoshub.experiment.models import Experiment, GitSync, RepositoryLink
from chaoshub.experiment.writes import ExperimentWrite, write

SERVICE = "experiment"
READ_SCOPE = "experiments:read"
WRITE_SCOPE = "experiments:write"
MANAGE = "manage_webhooks"
MAX_PATHS = 20
TOKEN_MAX = 1000
SECRET_BYTES = 32
HOOK_PATH = "/api/v1/hooks/git/{id}"
CACHE_MARKER = "chaoshub-link"  # in a cache folder: the link id and URL it was fetched for
Credential = Literal["none", "token", "deploy_key"]


class HostKeyView(Frozen):
    """An ssh host key pinned on the link: its type and SHA256 fingerprint."""

    type: str
    fingerprint: str


class RepositoryView(Frozen):
    """A workspace's repository link as answers show it: never a token, a private key or the
    webhook secret."""

    id: str
    workspace_id: str
    url: str
    branch: str
    paths: list[str]
    credential: Credential
    deploy_public_key: str | None = None
    # The ssh host keys the first ssh fetch met, the only ones trusted since (none yet: the
    # next ssh fetch trusts the key it meets).
    host_keys: list[HostKeyView] = []
    webhook_path: str  # where the repository's push webhooks go (POST, signed)
    last_synced_commit: str | None = None
    last_synced_at: datetime | None = None
    created_by_name: str
    created_at: datetime
    updated_at: datetime


class SavedRepository(RepositoryView):
    """A link just made or changed; `webhook_secret` only when made, or rotated on request:
    the one answer that shows it."""

    created: bool = False
    webhook_secret: str | None = None


# Reading --------------------------------------------------------------------------------------


def get_repository(claim: str, org: str, workspace: str) -> RepositoryView:
    """The workspace's repository link, for those who may read the workspace."""
    where = reader(claim, org, workspace)
    with transaction(SERVICE) as session:
        row = _link_of(session, where.id)
        if row is None:
            raise NotFound("no repository is linked to this workspace")
        return view(row)


def may_manage(claim: str, org: str, workspace: str) -> bool:
    """True when the caller may link, change and unlink the workspace's repository."""
    return grants.by_name(claim, org, workspace).allows(MANAGE)


def link_of_workspace(workspace_id: str) -> RepositoryLink | None:
    """The workspace's link row, detached, or None."""
    with transaction(SERVICE) as session:
        row = _link_of(session, workspace_id)
        if row is not None:
            session.expunge(row)
        return row


# Writing --------------------------------------------------------------------------------------


def put_repository(claim: str, org: str, workspace: str, url: str, branch: str,
                   paths: list[str], token: str | None = None, deploy_key: bool | None = None,
                   rotate_deploy_key: bool = False, rotate_webhook_secret: bool = False,
                   forget_host_key: bool = False) -> SavedRepository:
    """Link the workspace to a repository, or change its link. `token` keeps an access token
    (an empty one removes the credential), `deploy_key` True makes an ed25519 key pair whose
    public half the answer shows (kept when the link has one, unless `rotate_deploy_key`); with
    neither, an unchanged URL keeps its credential. A link just made, or
    `rotate_webhook_secret`, answers its webhook secret, this once. A changed URL, or
    `forget_host_key`, forgets the pinned ssh host keys (the next sync trusts anew)."""
    user, where = _manager(claim, org, workspace)
    found = link_problems(url, branch, paths, token, deploy_key)
    if found:
        raise ValidationFailed("the repository link is not valid", found)
    shown_secret = None
    with write(user) as work:
        session = work.session
        row = session.scalar(select(RepositoryLink).where(
            RepositoryLink.workspace_id == where.id).with_for_update())
        created = row is None
        now = utcnow()
        if created:
            row = RepositoryLink(id=new_id(), workspace_id=where.id, org_id=where.org_id,
                                 credential="none", created_at=now)
            shown_secret = _new_secret()
            row.webhook_secret_sealed = secret_box.seal(shown_secret, context(row.id, "webhook"))
        elif rotate_webhook_secret:
            shown_secret = _new_secret()
            row.webhook_secret_sealed = secret_box.seal(shown_secret, context(row.id, "webhook"))
        moved = created or (row.url, row.branch, list(row.paths or [])) != (url, branch,
                                                                              list(paths))
        if not created and row.url != url and token is None and deploy_key is None:
            # Credentials for one repository are not sent to another unasked.
            _set_credential(row, "none")
        other_url = not created and row.url != url
        if forget_host_key or other_url:
            row.host_keys = None
        if token is not None:
            if token:
                _set_credential(row, "token", token)
            else:
                _set_credential(row, "none")
        if deploy_key is True and (row.credential != "deploy_key" or rotate_deploy_key):
            private, public = new_deploy_key(where.name)
            _set_credential(row, "deploy_key", private, public)
        elif deploy_key is False and row.credential == "deploy_key":
            _set_credential(row, "none")
        row.url, row.branch, row.paths = url, branch, list(dict.fromkeys(paths))
        # The person who linked it (or last changed it): webhook syncs act as them.
        row.created_by, row.created_by_name = user.sub, user.name
        row.updated_at = now
        if moved:
            # Another repository, branch or set of files: the next sync looks at every file.
            row.last_synced_commit = None
        if created:
            session.add(row)
        session.flush()
        if not created:
            _follow(work, session, row)
        kind = "repository.linked" if created else "repository.changed"
        what = "linked" if created else "changed the repository link of"
        work.feed(where.org_id, kind, f"{user.name} {what} {where.name}"
                  + (f" to {git_mirror.shown_url(url)}" if created else ""), where.id,
                  "members", audited=_audited(where, row, rotate_webhook_secret))
        shown = view(row)
    if other_url:
        # The old repository's copy; other workers drop theirs at their next sync or sweep.
        remove_cache(where.id)
    return SavedRepository(**shown.model_dump(), created=created, webhook_secret=shown_secret)


def link_problems(url: object, branch: object, paths: object, token: object,
                  deploy_key: bool | None) -> list[dict[str, str]]:
    """What is wrong with a link's fields (nothing: they may be saved), each with its field."""
    found = []
    message = url_problem(url)
    if message:
        found.append(problem("url", message))
    message = git_mirror.branch_problem(branch)
    if message:
        found.append(problem("branch", message))
    if not isinstance(paths, list) or not 1 <= len(paths) <= MAX_PATHS:
        found.append(problem("paths", f"1 to {MAX_PATHS} path globs (chaos/**/*.json)"))
    else:
        found += [problem(("paths", i), m) for i, g in enumerate(paths)
                  if (m := git_mirror.glob_problem(g))]
    if token is not None and (not isinstance(token, str) or len(token) > TOKEN_MAX
                              or any(ord(c) < 33 for c in token)):
        found.append(problem("token", f"an access token of up to {TOKEN_MAX} characters, "
                                      "without spaces"))
    if token and deploy_key:
        found.append(problem("deploy_key", "a token or a deploy key, not both"))
    return found + _unusable_credential(url, token, deploy_key)


def forget_host_keys(claim: str, org: str, workspace: str) -> RepositoryView:
    """Forget the link's pinned ssh host keys (a host's key changed on purpose): the next
    sync trusts the key it meets."""
    user, where = _manager(claim, org, workspace)
    with write(user) as work:
        row = work.session.scalar(select(RepositoryLink).where(
            RepositoryLink.workspace_id == where.id).with_for_update())
        if row is None:
            raise NotFound("no repository is linked to this workspace")
        row.host_keys = None
        row.updated_at = utcnow()
        work.feed(where.org_id, "repository.changed",
                  f"{user.name} forgot the ssh host key pinned for the repository of "
                  f"{where.name}", where.id, "members", audited={
                      **_audited(where, row), "host_key_forgotten": True})
        return view(row)


def pin_host_keys(link: RepositoryLink, keys: list[str]) -> None:
    """Pin the host keys a first ssh fetch met on the link, unless its URL changed or keys
    were pinned meanwhile (those stay)."""
    if not keys:
        return
    with transaction(SERVICE) as session:
        session.execute(update(RepositoryLink).where(
            RepositoryLink.id == link.id, RepositoryLink.url == link.url,
            RepositoryLink.host_keys.is_(None)).values(host_keys="\n".join(keys)))


def delete_repository(claim: str, org: str, workspace: str) -> None:
    """Unlink the workspace's repository: its synced experiments stay, as the hub's own
    (editable again), their runs with them; queued syncs end."""
    user, where = _manager(claim, org, workspace)
    with write(user) as work:
        session = work.session
        row = session.scalar(select(RepositoryLink).where(
            RepositoryLink.workspace_id == where.id).with_for_update())
        if row is None:
            raise NotFound("no repository is linked to this workspace")
        ids = list(session.scalars(select(Experiment.id).where(
            Experiment.source_link_id == row.id)))
        session.execute(update(Experiment).where(Experiment.source_link_id == row.id).values(
            source_link_id=None, source_repository=None, source_path=None, source_commit=None,
            removed_upstream=False, depends_on=None))
        session.execute(update(GitSync).where(
            GitSync.link_id == row.id, GitSync.status == "queued").values(
            status="failed", error="the repository was unlinked before the sync ran",
            finished_at=utcnow()))
        for experiment_id in ids:
            work.forget(*experiment_cache_keys(experiment_id))
        work.feed(where.org_id, "repository.unlinked",
                  f"{user.name} unlinked the repository of {where.name}", where.id, "members",
                  audited=_audited(where, row))
        session.delete(row)
    remove_cache(where.id)


def delete_workspaces(session: Session, workspace_ids: list[str]) -> None:
    """Remove the links and syncs of workspaces that are gone, in the caller's session."""
    session.execute(delete(GitSync).where(GitSync.workspace_id.in_(workspace_ids)))
    session.execute(delete(RepositoryLink).where(RepositoryLink.workspace_id.in_(workspace_ids)))
    # This process's copies (a worker elsewhere drops its own at its sweep).
    for workspace_id in workspace_ids:
        remove_cache(workspace_id)


# Credentials, for the sync ----------------------------------------------------------------------


def access_of(row: RepositoryLink) -> git_mirror.Access:
    """How the worker reaches the link's repository, its credential opened (never logged)."""
    config = current_app.config
    opened = None
    if row.credential_sealed:
        opened = secret_box.open_sealed(row.credential_sealed, context(row.id, row.credential))
    return git_mirror.Access(
        url=row.url, allow_private=config["ALLOW_PRIVATE_TARGETS"],
        allow_file=config["GIT_ALLOW_FILE_URLS"],
        token=opened if row.credential == "token" else None,
        deploy_key=opened if row.credential == "deploy_key" else None,
        timeout=float(config["GIT_TIMEOUT_SECONDS"]), host_keys=pinned_keys(row),
        max_fetch_bytes=int(config["GIT_FETCH_MAX_BYTES"]))


def pinned_keys(row: RepositoryLink) -> list[str]:
    """The link's pinned ssh host keys ("type base64")."""
    return [line for line in (row.host_keys or "").splitlines() if line.strip()]


def webhook_secret(row: RepositoryLink) -> str:
    """The secret the link's push webhooks are signed with."""
    return secret_box.open_sealed(row.webhook_secret_sealed, context(row.id, "webhook"))


def url_problem(url: object) -> str | None:
    """What makes `url` no repository this hub may fetch (its settings); None: none."""
    config = current_app.config
    return git_mirror.url_problem(url, config["ALLOW_PRIVATE_TARGETS"],
                                  config["GIT_ALLOW_FILE_URLS"], cache_root())


def cache_root() -> Path:
    """This worker's GIT_CACHE_DIR (the instance folder's git-cache when unset)."""
    return Path(current_app.config["GIT_CACHE_DIR"] or str(
        Path(current_app.config["CHAOSHUB_INSTANCE_PATH"]) / "git-cache"))


def cache_folder(workspace_id: str) -> Path:
    """The workspace's bare repository under GIT_CACHE_DIR."""
    return cache_root() / workspace_id


def prepared_cache(link: RepositoryLink) -> Path:
    """The link's cache folder on this worker, made anew when what it holds was fetched for
    another link or URL (each worker has its own disk: it finds out at its next sync)."""
    folder = cache_folder(link.workspace_id)
    if folder.exists() and _made_for(folder) != _identity(link.id, link.url):
        remove_cache(link.workspace_id)
    folder.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.mkdir(mode=0o700, exist_ok=True)
    (folder / CACHE_MARKER).write_text(_identity(link.id, link.url))
    return folder


def remove_cache(workspace_id: str) -> None:
    """Remove the workspace's cache folder from this worker's disk, if there."""
    shutil.rmtree(cache_folder(workspace_id), ignore_errors=True)


def sweep_cache_folders() -> int:
    """Remove this worker's cache folders whose workspace has no link now, or whose link or
    URL changed (another process took the change; a worker's own disk hears of none); how
    many were removed."""
    root = cache_root()
    if not root.is_dir():
        return 0
    folders = {path.name: path for path in root.iterdir() if path.is_dir()}
    names = list(folders)
    links: dict[str, str] = {}
    with transaction(SERVICE) as session:
        for start in range(0, len(names), 500):
            for workspace_id, link_id, url in session.execute(select(
                    RepositoryLink.workspace_id, RepositoryLink.id, RepositoryLink.url).where(
                    RepositoryLink.workspace_id.in_(names[start:start + 500]))):
                links[workspace_id] = _identity(link_id, url)
    removed = 0
    for name, path in folders.items():
        if links.get(name) is None or _made_for(path) != links[name]:
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
    return removed


def _identity(link_id: str, url: str) -> str:
    return f"{link_id}\n{url}\n"


def _made_for(folder: Path) -> str | None:
    try:
        return (folder / CACHE_MARKER).read_text()
    except OSError:
        return None


def context(link_id: str, what: str) -> str:
    """What a link's sealed value is bound to: it opens only as this link's `what`."""
    return f"repository/{link_id}/{what}"


def new_deploy_key(comment: str) -> tuple[str, str]:
    """A new ed25519 key pair: the private half (OpenSSH format) and the public one."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH).decode()
    label = "".join(c for c in comment if c.isalnum() or c in "-_.")[:40] or "workspace"
    return private, f"{public} chaoshub-{label}"


def experiment_cache_keys(experiment_id: str) -> tuple[str, str]:
    """The cache keys of an experiment's entries (as service.py names them)."""
    return (cache().key(SERVICE, "experiment", experiment_id),
            cache().key(SERVICE, "executions", experiment_id))


def view(row: RepositoryLink) -> RepositoryView:
    """What answers show of a link."""
    return RepositoryView(
        id=row.id, workspace_id=row.workspace_id, url=row.url, branch=row.branch,
        paths=list(row.paths or []), credential=row.credential,
        deploy_public_key=row.deploy_public_key if row.credential == "deploy_key" else None,
        host_keys=[HostKeyView(type=key.split()[0], fingerprint=git_mirror.fingerprint(key))
                   for key in pinned_keys(row)],
        webhook_path=HOOK_PATH.format(id=row.id), last_synced_commit=row.last_synced_commit,
        last_synced_at=row.last_synced_at, created_by_name=row.created_by_name,
        created_at=row.created_at, updated_at=row.updated_at)


# Helpers --------------------------------------------------------------------------------------


def _set_credential(row: RepositoryLink, kind: str, secret: str | None = None,
                    public: str | None = None) -> None:
    row.credential = kind
    row.credential_sealed = secret_box.seal(secret, context(row.id, kind)) if secret else None
    row.deploy_public_key = public


def _unusable_credential(url: object, token: str | None, deploy_key: bool | None) -> list:
    """A token on an ssh URL, or a deploy key on an http(s) one, would fail every sync: a
    problem saying which goes with which."""
    try:
        scheme = git_mirror.parse(url).scheme if isinstance(url, str) else ""
    except ValueError:
        return []  # the URL's own problem says enough
    if token and isinstance(token, str) and scheme == "ssh":
        return [problem("token", "an access token goes with an https:// URL; for an ssh:// "
                                 "or git@host:path URL, choose a deploy key")]
    if deploy_key is True and scheme in ("http", "https"):
        return [problem("deploy_key", "a deploy key goes with an ssh:// or git@host:path "
                                      "URL; for an https:// URL, send an access token")]
    return []


def _follow(work: ExperimentWrite, session: Session, row: RepositoryLink) -> None:
    """The synced experiments say the link's URL as it is now."""
    ids = list(session.scalars(select(Experiment.id).where(
        Experiment.source_link_id == row.id, Experiment.source_repository != row.url)))
    if ids:
        session.execute(update(Experiment).where(Experiment.id.in_(ids)).values(
            source_repository=row.url))
        for experiment_id in ids:
            work.forget(*experiment_cache_keys(experiment_id))


def _audited(where: WorkspaceGrant, row: RepositoryLink,
             rotated: bool = False) -> dict[str, Any]:
    # What the audit log keeps: never a credential or the webhook secret.
    return {"workspace": where.name, "link_id": row.id, "url": git_mirror.shown_url(row.url),
            "branch": row.branch, "paths": list(row.paths or []),
            "credential": row.credential, "webhook_secret_rotated": rotated}


def _new_secret() -> str:
    return "ghsec_" + base64.urlsafe_b64encode(secrets.token_bytes(SECRET_BYTES)).decode() \
        .rstrip("=")


def _link_of(session: Session, workspace_id: str) -> RepositoryLink | None:
    return session.scalar(select(RepositoryLink).where(
        RepositoryLink.workspace_id == workspace_id))


def reader(claim: str, org: str, workspace: str) -> WorkspaceGrant:
    """The caller's grant in the workspace, if they may read it (NotFound otherwise) with a
    credential that may read experiments."""
    user = claims.verify(claim)
    if not user.anonymous and not user.allows(READ_SCOPE):
        raise Forbidden(f"the credential lacks the {READ_SCOPE} scope")
    return visible(claim, org, workspace)


def visible(claim: str, org: str, workspace: str) -> WorkspaceGrant:
    """The caller's grant in the workspace, if they may see it: NotFound otherwise, as every
    route of a workspace answers, whatever they may do there."""
    try:
        where = grants.by_name(claim, org, workspace)
    except Forbidden as exc:
        raise NotFound("no such workspace") from exc
    if not where.allows("read"):
        raise NotFound("no such workspace")
    return where


def _manager(claim: str, org: str, workspace: str) -> tuple[UserClaim, WorkspaceGrant]:
    user = claims.verify(claim)
    if user.anonymous:
        raise Unauthorized("sign in or send an API token to link a repository")
    if not user.allows(WRITE_SCOPE):
        raise Forbidden(f"the credential lacks the {WRITE_SCOPE} scope")
    where = reader(claim, org, workspace)
    if not where.allows(MANAGE):
        raise Forbidden("only the workspace's maintainers and owners link its repository")
    return user, where
