"""Versions of an experiment's document: canonical form, content hash, what a run adds."""

from __future__ import annotations

import hashlib
import json
from typing import Any

HUB_EXTENSION = "chaoshub"


def canonical_json(document: Any) -> str:
    """The document as JSON with sorted keys and no spaces: equal documents, equal text."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str)


def content_hash(document: Any) -> str:
    """The SHA-256 of the canonical JSON of `document`."""
    return hashlib.sha256(canonical_json(document).encode()).hexdigest()


def normalized(document: dict[str, Any], *, as_run: bool = False) -> dict[str, Any]:
    """The document as the hub keeps it: without the hub's own extension (its ids are merged
    back on download), and, for a document as chaoslib ran it, without the `dry` key it adds."""
    kept = dict(document)
    if as_run:
        kept.pop("dry", None)
    extensions = kept.get("extensions")
    if isinstance(extensions, list):
        others = [e for e in extensions
                  if not (isinstance(e, dict) and e.get("name") == HUB_EXTENSION)]
        if others:
            kept["extensions"] = others
        else:
            kept.pop("extensions")
    return kept


def hub_extension(document: Any) -> dict[str, Any] | None:
    """The `chaoshub` extension a document carries, if any."""
    extensions = document.get("extensions") if isinstance(document, dict) else None
    for extension in extensions if isinstance(extensions, list) else []:
        if isinstance(extension, dict) and extension.get("name") == HUB_EXTENSION:
            return extension
    return None


def with_hub_extension(document: dict[str, Any], extension: dict[str, Any]) -> dict[str, Any]:
    """The document with the hub's extension merged in (replacing an older one)."""
    merged = normalized(document)
    merged["extensions"] = [*merged.get("extensions", []), extension]
    return merged
