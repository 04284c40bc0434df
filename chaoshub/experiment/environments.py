"""Workspaces' run environments: named sets of configuration values and secrets for runs.

An environment (staging, production) holds configuration values, shown to whoever may run in
the workspace, and secrets, sealed at rest (secret_box.py) and never shown again: answers carry
their names and when they changed. Each value says how a run gets it: as a `--var-file` value
("var": a configuration value, or a secret of a scope) or as an environment variable of the
run's process ("env"). Maintainers and owners manage environments; members may run in them,
but only maintainers and owners in a protected one. Only the worker opens the secrets, when it
builds the run's process.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from chaoshub.core import claims, paging
from chaoshub.core.claims import UserClaim
from chaoshub.core.db import transaction
from chaoshub.core.errors import (
    Conflict,
    Forbidden,
    NotFound,
    Unauthorized,
    ValidationFailed,
    problem,
)
from chaoshub.core.models import utcnow
from chaoshub.core.schemas import Frozen
from chaoshub.dashboard.service import WorkspaceGrant
from chaoshub.experiment import grants, secret_box
from chaoshub.experiment.models import RunEnvironment, RunEnvironmentEntry
from chaoshub.experiment.writes import ExperimentWrite, write

SERVICE = "experiment"
SCOPE = "runs:execute"  # what an API token needs to read or manage environments
MANAGE = "manage_environments"  # the grant's action of those who manage them
LISTING = "run environments"
MAX_ENVIRONMENTS = 50  # per workspace
MAX_ENTRIES = 100  # values and secrets of one environment
MAX_VALUE = 4096  # characters of a configuration value
MAX_SECRET = 8192
# Shorter secrets cannot be masked in outputs without masking half of every text.
MIN_SECRET = 4
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
SECRET_SCOPE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,127}")
# Variables that would change which programs, libraries or start-up code the run's process
# loads, or that the process gets from the hub: no environment may set them.
RESERVED_VARIABLES = frozenset({
    "PATH", "HOME", "TMPDIR", "LANG", "LC_ALL", "SHELL", "IFS", "ENV", "BASH_ENV", "PS4",
    "SHELLOPTS", "BASHOPTS", "GCONV_PATH", "NODE_OPTIONS", "PERL5OPT", "PERL5LIB", "RUBYOPT",
})
RESERVED_PREFIXES = ("LD_", "DYLD_", "PYTHON", "BASH_FUNC_", "CHAOSHUB_")

Target = Literal["var", "env"]
ConfigurationValue = str | int | float | bool


class ConfigurationEntry(BaseModel):
    """A configuration value and how the run gets it."""

    model_config = ConfigDict(extra="forbid")

    value: ConfigurationValue
    target: Target = Field("var", description='"var": a --var-file configuration value; '
                                              '"env": an environment variable of the run')


class SecretEntry(BaseModel):
    """A secret's value (never shown again) and how the run gets it."""

    model_config = ConfigDict(extra="forbid")

    value: str = Field(description="Kept encrypted; answers never show it.")
    target: Target = Field("env", description='"env": an environment variable of the run; '
                                              '"var": a --var-file secret of `scope`')
    scope: str = Field("", description="The experiment's secrets scope (target var only).")


class ConfigurationView(Frozen):
    """A configuration value of an environment."""

    value: ConfigurationValue
    target: Target
    updated_at: datetime


class SecretView(Frozen):
    """What is shown of a secret: never its value."""

    target: Target
    scope: str
    updated_at: datetime


class EnvironmentView(Frozen):
    """An environment, its configuration values and the names of its secrets."""

    id: str
    workspace_id: str
    name: str
    description: str
    protected: bool
    configuration: dict[str, ConfigurationView]
    secrets: dict[str, SecretView]
    created_at: datetime
    updated_at: datetime


class EnvironmentPage(Frozen):
    """A page of a workspace's environments, by name, and the next page's cursor."""

    environments: list[EnvironmentView]
    next_cursor: str | None


class RunEnvironmentRef(Frozen):
    """The environment a run was asked to run in."""

    id: str
    name: str
    protected: bool


@dataclass
class RunValues:
    """What a run gets of its environment, secrets opened: for the worker only."""

    configuration: dict[str, Any] = field(default_factory=dict)
    secrets: dict[str, dict[str, str]] = field(default_factory=dict)
    environment: dict[str, str] = field(default_factory=dict)
    secret_values: list[str] = field(default_factory=list)  # to mask wherever they show


# Reading --------------------------------------------------------------------------------------


def list_environments(claim: str, org: str, workspace: str, cursor: str | None = None,
                      limit: int | str | None = None) -> EnvironmentPage:
    """A page of the workspace's environments by name, for those who may run there."""
    where = _grant(claim, org, workspace, "run")
    size = paging.page_size(limit)
    with transaction(SERVICE) as session:
        rows = list(session.scalars(select(RunEnvironment).where(
            RunEnvironment.workspace_id == where.id)))
        page, next_cursor = paging.page_of(rows, lambda r: [r.name_key], cursor, LISTING,
                                           [where.id], size)
        return EnvironmentPage(environments=[_view(session, r) for r in page],
                               next_cursor=next_cursor)


def get_environment(claim: str, org: str, workspace: str, name: str) -> EnvironmentView:
    """One environment of the workspace, for those who may run there."""
    where = _grant(claim, org, workspace, "run")
    with transaction(SERVICE) as session:
        return _view(session, _row(session, where.id, name))


def may_manage(claim: str, org: str, workspace: str) -> bool:
    """True when the caller may manage the workspace's environments."""
    return grants.by_name(claim, org, workspace).allows(MANAGE)


# Writing --------------------------------------------------------------------------------------


def create_environment(claim: str, org: str, workspace: str, name: str, description: str = "",
                       protected: bool = False,
                       configuration: dict[str, ConfigurationEntry] | None = None,
                       secrets: dict[str, SecretEntry] | None = None) -> EnvironmentView:
    """Add an environment to the workspace, with its first values and secrets."""
    user, where = _manager(claim, org, workspace)
    configuration, secrets = configuration or {}, secrets or {}
    found = _name_problems(name) + _description_problems(description)
    found += _configuration_problems(configuration, secrets)
    found += _secrets_problems(secrets, configuration)
    if len(configuration) + len(secrets) > MAX_ENTRIES:
        found.append(problem((), f"an environment holds at most {MAX_ENTRIES} values"))
    if found:
        raise ValidationFailed("the environment is not valid", found)
    try:
        with write(user) as work:
            session = work.session
            count = session.scalar(select(func.count()).select_from(RunEnvironment).where(
                RunEnvironment.workspace_id == where.id))
            if count >= MAX_ENVIRONMENTS:
                raise Conflict(f"a workspace holds at most {MAX_ENVIRONMENTS} environments")
            now = utcnow()
            row = RunEnvironment(workspace_id=where.id, name=name, name_key=name.lower(),
                                 description=description.strip(), protected=protected,
                                 created_by=user.sub, created_at=now, updated_at=now)
            session.add(row)
            session.flush()
            for key, entry in configuration.items():
                session.add(_configuration_row(row.id, key, entry, now))
            for key, secret in secrets.items():
                session.add(_secret_row(row.id, key, secret, now))
            session.flush()
            _tell(work, user, where, "environment.created", f"added the environment {name}",
                  {"environment": name, "configuration": sorted(configuration),
                   "secrets": sorted(secrets), "protected": protected})
            return _view(session, row)
    except IntegrityError as exc:
        raise Conflict(f"the workspace has an environment named {name} already") from exc


def update_environment(claim: str, org: str, workspace: str, name: str,
                       description: str | None = None, protected: bool | None = None,
                       configuration: dict[str, ConfigurationEntry | None] | None = None,
                       ) -> EnvironmentView:
    """Change an environment's description, protection, or configuration values (a value of
    None removes it)."""
    user, where = _manager(claim, org, workspace)
    configuration = configuration or {}
    found = _description_problems(description or "")
    found += _configuration_problems({k: v for k, v in configuration.items() if v is not None},
                                     {})
    if found:
        raise ValidationFailed("the change is not valid", found)
    with write(user) as work:
        session = work.session
        row = _row(session, where.id, name, lock=True)
        entries = _entries(session, row.id)
        now = utcnow()
        for key, entry in configuration.items():
            held = entries.get(key)
            if held is not None and held.kind == "secret":
                raise Conflict(f"{key} is a secret of {row.name}: change it as a secret",
                               [problem(("configuration", key), "a secret has this name")])
            if held is not None:
                session.delete(held)
                session.flush()
            if entry is not None:
                session.add(_configuration_row(row.id, key, entry, now))
        session.flush()
        if _count(session, row.id) > MAX_ENTRIES:
            raise ValidationFailed("the change is not valid", [
                problem("configuration", f"an environment holds at most {MAX_ENTRIES} values")])
        if description is not None:
            row.description = description.strip()
        if protected is not None:
            row.protected = protected
        row.updated_at = now
        session.flush()
        _tell(work, user, where, "environment.changed", f"changed the environment {row.name}",
              {"environment": row.name, "configuration": sorted(configuration),
               "protected": protected})
        return _view(session, row)


def set_secret(claim: str, org: str, workspace: str, name: str, secret: str,
               entry: SecretEntry) -> EnvironmentView:
    """Add or replace a secret of an environment; the answer shows its name only."""
    user, where = _manager(claim, org, workspace)
    # The body is the secret; its name comes from the URL (pointed at as the whole body).
    found = [problem(where, message) for where, message in _secret_problems(secret, entry)]
    if found:
        raise ValidationFailed("the secret is not valid", found)
    with write(user) as work:
        session = work.session
        row = _row(session, where.id, name, lock=True)
        held = _entries(session, row.id).get(secret)
        if held is not None and held.kind != "secret":
            raise Conflict(f"{secret} is a configuration value of {row.name}: remove it first")
        if held is not None:
            session.delete(held)
            session.flush()
        elif _count(session, row.id) >= MAX_ENTRIES:
            raise Conflict(f"an environment holds at most {MAX_ENTRIES} values")
        now = utcnow()
        session.add(_secret_row(row.id, secret, entry, now))
        row.updated_at = now
        session.flush()
        # The secret's name only: never its value.
        _tell(work, user, where, "environment.secret_set",
              f"set the secret {secret} of the environment {row.name}",
              {"environment": row.name, "secret": secret})
        return _view(session, row)


def delete_secret(claim: str, org: str, workspace: str, name: str, secret: str
                  ) -> EnvironmentView:
    """Remove a secret of an environment."""
    user, where = _manager(claim, org, workspace)
    with write(user) as work:
        session = work.session
        row = _row(session, where.id, name, lock=True)
        held = _entries(session, row.id).get(secret)
        if held is None or held.kind != "secret":
            raise NotFound(f"{row.name} has no secret named {secret}")
        session.delete(held)
        row.updated_at = utcnow()
        session.flush()
        _tell(work, user, where, "environment.secret_removed",
              f"removed the secret {secret} of the environment {row.name}",
              {"environment": row.name, "secret": secret})
        return _view(session, row)


def delete_environment(claim: str, org: str, workspace: str, name: str) -> None:
    """Delete an environment with its values and secrets."""
    user, where = _manager(claim, org, workspace)
    with write(user) as work:
        session = work.session
        row = _row(session, where.id, name, lock=True)
        session.execute(delete(RunEnvironmentEntry).where(
            RunEnvironmentEntry.environment_id == row.id))
        session.delete(row)
        _tell(work, user, where, "environment.deleted", f"deleted the environment {row.name}",
              {"environment": row.name})


def delete_workspaces(session: Session, workspace_ids: list[str]) -> None:
    """Delete the environments of workspaces that are gone, in the caller's session."""
    ids = list(session.scalars(select(RunEnvironment.id).where(
        RunEnvironment.workspace_id.in_(workspace_ids))))
    if ids:
        session.execute(delete(RunEnvironmentEntry).where(
            RunEnvironmentEntry.environment_id.in_(ids)))
        session.execute(delete(RunEnvironment).where(RunEnvironment.id.in_(ids)))


# Runs -----------------------------------------------------------------------------------------


def for_run(grant: WorkspaceGrant, name: Any) -> RunEnvironmentRef:
    """The environment named `name` of the grant's workspace, if the caller may run in it:
    ValidationFailed (/environment) when there is none, Forbidden when it is protected and
    the caller may not manage environments."""
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise ValidationFailed("no such environment", [
            problem("environment", "name an environment of the workspace")])
    with transaction(SERVICE) as session:
        row = session.scalar(select(RunEnvironment).where(
            RunEnvironment.workspace_id == grant.id, RunEnvironment.name_key == name.lower()))
        if row is None:
            raise ValidationFailed("no such environment", [
                problem("environment", f"the workspace has no environment named {name}")])
        ref = RunEnvironmentRef(id=row.id, name=row.name, protected=row.protected)
    if ref.protected and not grant.allows(MANAGE):
        raise Forbidden(f"{ref.name} is protected: only the workspace's maintainers and owners "
                        "run in it")
    return ref


def run_values(environment_id: str) -> RunValues | None:
    """The values and opened secrets of an environment, as a run gets them; None when the
    environment is gone. For the worker, as it builds the run's process."""
    values = RunValues()
    with transaction(SERVICE) as session:
        if session.get(RunEnvironment, environment_id) is None:
            return None
        rows = list(session.scalars(select(RunEnvironmentEntry).where(
            RunEnvironmentEntry.environment_id == environment_id)
            .order_by(RunEnvironmentEntry.name)))
    for row in rows:
        if row.kind == "secret":
            value = secret_box.open_sealed(row.sealed or "", _context(environment_id, row.name))
            values.secret_values.append(value)
            if row.target == "env":
                values.environment[row.name] = value
            else:
                values.secrets.setdefault(row.scope, {})[row.name] = value
        elif row.target == "env":
            value = row.value
            values.environment[row.name] = (str(value).lower() if isinstance(value, bool)
                                            else str(value))
        else:
            values.configuration[row.name] = row.value
    return values


def values_of_run(options: dict[str, Any] | None) -> RunValues | None:
    """What a run gets of the environment its options name (nothing when they name none);
    None when that environment was deleted since the run was asked for."""
    environment_id = (options or {}).get("environment_id")
    if not environment_id:
        return RunValues()
    return run_values(environment_id)


# Helpers --------------------------------------------------------------------------------------


def _tell(work: ExperimentWrite, user: UserClaim, where: WorkspaceGrant, kind: str,
          what: str, details: dict[str, Any]) -> None:
    """Put a change of an environment in the org's feed (for its members) and audit log."""
    work.feed(where.org_id, kind,
              f"{user.name} {what} in {where.name}", where.id, "members",
              audited={"workspace": where.name, **details})


def _user(claim: str) -> UserClaim:
    user = claims.verify(claim)
    if user.anonymous:
        raise Unauthorized("sign in or send an API token to use environments")
    if not user.allows(SCOPE):
        raise Forbidden(f"the credential lacks the {SCOPE} scope")
    return user


def _grant(claim: str, org: str, workspace: str, action: str) -> WorkspaceGrant:
    _user(claim)
    return grants.require(grants.by_name(claim, org, workspace), action)  # type: ignore[arg-type]


def _manager(claim: str, org: str, workspace: str) -> tuple[UserClaim, WorkspaceGrant]:
    user = _user(claim)
    where = grants.by_name(claim, org, workspace)
    if not where.allows(MANAGE):
        raise Forbidden("only the workspace's maintainers and owners manage its environments")
    return user, where


def _row(session: Session, workspace_id: str, name: Any, lock: bool = False) -> RunEnvironment:
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise NotFound("no such environment")
    query = select(RunEnvironment).where(RunEnvironment.workspace_id == workspace_id,
                                         RunEnvironment.name_key == name.lower())
    row = session.scalar(query.with_for_update() if lock else query)
    if row is None:
        raise NotFound("no such environment")
    return row


def _entries(session: Session, environment_id: str) -> dict[str, RunEnvironmentEntry]:
    return {e.name: e for e in session.scalars(select(RunEnvironmentEntry).where(
        RunEnvironmentEntry.environment_id == environment_id))}


def _count(session: Session, environment_id: str) -> int:
    return session.scalar(select(func.count()).select_from(RunEnvironmentEntry).where(
        RunEnvironmentEntry.environment_id == environment_id)) or 0


def _view(session: Session, row: RunEnvironment) -> EnvironmentView:
    entries = sorted(_entries(session, row.id).values(), key=lambda e: e.name)
    return EnvironmentView(
        id=row.id, workspace_id=row.workspace_id, name=row.name, description=row.description,
        protected=row.protected, created_at=row.created_at, updated_at=row.updated_at,
        configuration={e.name: ConfigurationView(value=e.value, target=e.target,
                                                 updated_at=e.updated_at)
                       for e in entries if e.kind == "configuration"},
        secrets={e.name: SecretView(target=e.target, scope=e.scope, updated_at=e.updated_at)
                 for e in entries if e.kind == "secret"})


def _configuration_row(environment_id: str, key: str, entry: ConfigurationEntry,
                       now: datetime) -> RunEnvironmentEntry:
    return RunEnvironmentEntry(environment_id=environment_id, name=key, kind="configuration",
                               target=entry.target, scope="", value=entry.value, sealed=None,
                               updated_at=now)


def _secret_row(environment_id: str, key: str, entry: SecretEntry,
                now: datetime) -> RunEnvironmentEntry:
    return RunEnvironmentEntry(
        environment_id=environment_id, name=key, kind="secret", target=entry.target,
        scope=entry.scope if entry.target == "var" else "", value=None,
        sealed=secret_box.seal(entry.value, _context(environment_id, key)), updated_at=now)


def _context(environment_id: str, key: str) -> str:
    # What a sealed secret is bound to: it opens only as this secret of this environment.
    return f"run-environment/{environment_id}/{key}"


def _name_problems(name: Any) -> list[dict[str, str]]:
    if isinstance(name, str) and NAME.fullmatch(name):
        return []
    return [problem("name", "a name is 1 to 63 letters, digits, '.', '_' or '-', starting "
                            "with a letter or digit")]


def _description_problems(description: str) -> list[dict[str, str]]:
    if len(description) > 1000:
        return [problem("description", "a description is at most 1000 characters")]
    return []


def _key_message(what: str) -> str:
    return (f"{what} is 1 to 128 letters, digits or '_', not starting with a digit")


def _variable_problem(key: str) -> str | None:
    if key.upper() in RESERVED_VARIABLES or key.upper().startswith(RESERVED_PREFIXES):
        return (f"{key} would change how the run's process starts: choose another name "
                "for an environment variable")
    return None


def _configuration_problems(configuration: dict[str, ConfigurationEntry],
                            secrets: dict[str, Any]) -> list[dict[str, str]]:
    found = []
    for key, entry in configuration.items():
        if not KEY.fullmatch(key):
            found.append(problem(("configuration", key), _key_message("a value's name")))
            continue
        if key in secrets:
            found.append(problem(("configuration", key), "a secret has this name too"))
        if isinstance(entry.value, str) and len(entry.value) > MAX_VALUE:
            found.append(problem(("configuration", key, "value"),
                                 f"a value is at most {MAX_VALUE} characters"))
        if entry.target == "env" and (message := _variable_problem(key)):
            found.append(problem(("configuration", key), message))
    return found


def _secrets_problems(secrets: dict[str, SecretEntry],
                      configuration: dict[str, Any]) -> list[dict[str, str]]:
    found = []
    for key, entry in secrets.items():
        if key in configuration:
            found.append(problem(("secrets", key), "a configuration value has this name too"))
        found += [problem(("secrets", key, *where), message)
                  for where, message in _secret_problems(key, entry)]
    return found


def _secret_problems(key: str, entry: SecretEntry) -> list[tuple[tuple[str, ...], str]]:
    """What is wrong with one secret, each with where in the secret (() for its name)."""
    if not KEY.fullmatch(key):
        return [((), _key_message("a secret's name"))]
    found = []
    if not MIN_SECRET <= len(entry.value) <= MAX_SECRET:
        found.append((("value",), f"a secret is {MIN_SECRET} to {MAX_SECRET} characters"))
    if entry.target == "env" and (message := _variable_problem(key)):
        found.append(((), message))
    if entry.target == "var" and not SECRET_SCOPE.fullmatch(entry.scope):
        found.append((("scope",), "a --var-file secret needs the experiment's secrets scope "
                                  "it belongs to (letters, digits, '_', '.', '-')"))
    if entry.target == "env" and entry.scope:
        found.append((("scope",), "only a --var-file secret (target var) has a scope"))
    return found
