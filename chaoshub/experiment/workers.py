"""The workers that run experiments and the Chaos Toolkit extensions each has: a run whose
experiment needs a python module no live worker has is refused when it is asked for, rather
than failing late on a worker.

Extensions are read from the installed distributions' metadata: nothing is imported.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from importlib.metadata import distributions
from typing import Any

from sqlalchemy import delete, select

from chaoshub.core.db import transaction
from chaoshub.core.errors import problem
from chaoshub.core.models import utcnow
from chaoshub.core.schemas import Frozen
from chaoshub.experiment import policy
from chaoshub.experiment.models import Worker

SERVICE = "experiment"
LIVE_SECONDS = 120  # a worker unheard of for longer is taken as gone
FORGET_AFTER = timedelta(days=1)
# What every worker has (the CLI itself, and the hub's own packages): not extensions.
NOT_EXTENSIONS = frozenset({"chaostoolkit", "chaostoolkit-lib", "chaoshub", "chaoshub-client"})


class Extension(Frozen):
    """A Chaos Toolkit extension a worker has: its distribution, version and modules."""

    name: str
    version: str
    modules: list[str]


class WorkerView(Frozen):
    """A live worker and its extensions."""

    name: str
    started_at: datetime
    last_seen: datetime
    extensions: list[Extension]


def installed_extensions() -> list[Extension]:
    """The Chaos Toolkit extensions installed beside this worker's `chaos` (the same Python)."""
    found = {}
    for dist in distributions():
        name = dist.metadata["Name"] or ""
        modules = sorted({line.split(".")[0].split("/")[0]
                          for line in (dist.read_text("top_level.txt") or "").split()
                          if line.startswith("chaos")})
        if name.lower() in NOT_EXTENSIONS or not modules:
            continue
        found[name.lower()] = Extension(name=name, version=dist.version, modules=modules)
    return sorted(found.values(), key=lambda e: e.name.lower())


def announce(name: str) -> None:
    """Say that worker `name` lives now, with the extensions it has."""
    extensions = [e.model_dump() for e in installed_extensions()]
    now = utcnow()
    with transaction(SERVICE) as session:
        row = session.get(Worker, name)
        if row is None:
            session.add(Worker(name=name, started_at=now, last_seen=now, extensions=extensions))
        else:
            row.started_at, row.last_seen, row.extensions = now, now, extensions
        # Workers gone for a day are forgotten.
        session.execute(delete(Worker).where(Worker.last_seen < now - FORGET_AFTER))


def heartbeat(name: str) -> None:
    """Say that worker `name` still lives (announcing it if it was forgotten)."""
    with transaction(SERVICE) as session:
        row = session.get(Worker, name)
        if row is not None:
            row.last_seen = utcnow()
            return
    announce(name)


def live() -> list[WorkerView]:
    """The workers heard of lately, by name."""
    since = utcnow() - timedelta(seconds=LIVE_SECONDS)
    with transaction(SERVICE) as session:
        rows = session.scalars(select(Worker).where(Worker.last_seen >= since)
                               .order_by(Worker.name))
        return [WorkerView(name=r.name, started_at=r.started_at, last_seen=r.last_seen,
                           extensions=[Extension(**e) for e in r.extensions or []])
                for r in rows]


def missing_modules(document: dict[str, Any]) -> list[dict[str, str]]:
    """The python providers whose module no live worker has, each with its pointer; none when
    no worker is live (the run waits for one)."""
    workers = live()
    if not workers:
        return []
    available = {m for w in workers for e in w.extensions for m in e.modules}
    found = []
    for where, provider in policy.providers(document):
        module = provider.get("module")
        if provider.get("type") != "python" or not isinstance(module, str) or not module:
            continue
        top = module.split(".")[0]
        if top.startswith("chaos") and top not in available and top not in ("chaoslib",):
            found.append(problem((*where, "module"),
                                 f"no worker has the module {top}: install the Chaos Toolkit "
                                 "extension that provides it on a worker"))
    return found
