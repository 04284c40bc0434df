"""The starter experiments a workspace's new experiment may begin from (starters/*.json)."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from chaoshub.core.errors import NotFound


@dataclass(frozen=True)
class Starter:
    """One starter: its key (the file's name), what it shows, and its document."""

    key: str
    title: str
    description: str
    tags: tuple[str, ...]
    document: dict[str, Any]


# The order the new experiment page lists them in: simplest first.
ORDER = ("process-and-http-probes", "kubernetes-pod-kill", "latency-with-safeguards")


@cache
def _loaded() -> dict[str, Starter]:
    folder = resources.files(__package__).joinpath("starters")
    found = {}
    for entry in folder.iterdir():
        if entry.name.endswith(".json"):
            document = json.loads(entry.read_text(encoding="utf-8"))
            key = entry.name.removesuffix(".json")
            found[key] = Starter(key, document["title"], document["description"],
                                 tuple(document.get("tags") or ()), document)
    return found


def all_starters() -> list[Starter]:
    """Every starter, in the order the page lists them (any not in ORDER last, by key)."""
    loaded = _loaded()
    rank = {key: i for i, key in enumerate(ORDER)}
    return sorted(loaded.values(), key=lambda s: (rank.get(s.key, len(rank)), s.key))


def starter_document(key: str) -> dict[str, Any]:
    """A fresh copy of the starter's document (the cached one is never handed out)."""
    found = _loaded().get(key)
    if found is None:
        raise NotFound("no such starter experiment")
    return copy.deepcopy(found.document)
