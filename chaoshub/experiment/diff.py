"""A structural diff of two experiment documents: activities by name, other fields by key, and
within a changed activity or field, the values that changed by their paths."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Any

SECTIONS = ("hypothesis", "method", "rollbacks")


def _activities(document: dict[str, Any], section: str) -> list[dict[str, Any]]:
    if section == "hypothesis":
        hypothesis = document.get("steady-state-hypothesis") or {}
        listed = hypothesis.get("probes") if isinstance(hypothesis, dict) else None
    else:
        listed = document.get(section)
    return [a for a in listed or [] if isinstance(a, dict)]


def _name(activity: dict[str, Any]) -> str:
    return str(activity.get("name") or f"ref:{activity.get('ref', '')}")


def by_name(document: dict[str, Any], section: str) -> dict[str, dict[str, Any]]:
    """The section's activities in their order, keyed by the names the diff gives them."""
    return {_name(a): a for a in _activities(document, section)}


def _changed_keys(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))


def diff(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """What changed from `old` to `new`: per section, activities added, removed, changed
    (with the keys that changed) and whether their order moved; then other top-level fields."""
    result: dict[str, Any] = {}
    for section in SECTIONS:
        before, after = by_name(old, section), by_name(new, section)
        common = [n for n in after if n in before]
        result[section] = {
            "added": [n for n in after if n not in before],
            "removed": [n for n in before if n not in after],
            "changed": [{"name": n, "fields": _changed_keys(before[n], after[n])}
                        for n in common if before[n] != after[n]],
            "reordered": [n for n in before if n in after] != common,
        }
    old_hypothesis = {k: v for k, v in (old.get("steady-state-hypothesis") or {}).items()
                      if k != "probes"}
    new_hypothesis = {k: v for k, v in (new.get("steady-state-hypothesis") or {}).items()
                      if k != "probes"}
    fields = _changed_keys(
        {k: v for k, v in old.items() if k not in ("steady-state-hypothesis", "method",
                                                   "rollbacks")},
        {k: v for k, v in new.items() if k not in ("steady-state-hypothesis", "method",
                                                   "rollbacks")},
    )
    if old_hypothesis != new_hypothesis:
        fields.append("steady-state-hypothesis")
    result["fields"] = [
        {"field": f, "before": old.get(f), "after": new.get(f)} if f != "steady-state-hypothesis"
        else {"field": f, "before": old_hypothesis or None, "after": new_hypothesis or None}
        for f in sorted(fields)
    ]
    result["identical"] = old == new
    return result


# A key that reads well after a dot; any other is written as a quoted string in brackets.
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
# Two lists longer than this together (their lengths multiplied) are compared index by index.
ALIGNED_PAIRS_MAX = 250_000


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()  # the side of a change where the key or the list item is not there


@dataclass(frozen=True)
class PathChange:
    """One value that changed, at `path` (such as `provider.arguments[1]`); `before` or `after`
    is UNSET when the key or item was added or removed."""

    path: str
    before: Any
    after: Any


def changes(before: Any, after: Any, path: str = "") -> list[PathChange]:
    """The smallest values that differ between `before` and `after`, with their paths: dicts
    are compared key by key, lists item by item (aligned, so one inserted item reads as one
    addition, not as every later item changed; a removed item has its index in `before`, the
    others their index in `after`), anything else as a whole."""
    if before is not UNSET and after is not UNSET and _canonical(before) == _canonical(after):
        return []  # on the JSON text: true and 1, or 1 and 1.0, differ in a document
    if isinstance(before, dict) and isinstance(after, dict):
        found = []
        for key in [*before, *(k for k in after if k not in before)]:
            found += changes(before.get(key, UNSET), after.get(key, UNSET), _key(path, key))
        return found
    if isinstance(before, list) and isinstance(after, list):
        return _list_changes(before, after, path)
    return [PathChange(path, before, after)]


def _list_changes(before: list[Any], after: list[Any], path: str) -> list[PathChange]:
    # Items are aligned on their JSON text; a run of replaced items is compared pairwise.
    if len(before) * len(after) > ALIGNED_PAIRS_MAX:
        # Aligning takes time quadratic in the lists' lengths (minutes for a long list of
        # repeated values, which a document may hold): long lists go index by index.
        opcodes = [("replace", 0, len(before), 0, len(after))]
    else:
        opcodes = SequenceMatcher(a=[_canonical(v) for v in before],
                                  b=[_canonical(v) for v in after],
                                  autojunk=False).get_opcodes()
    found = []
    for tag, i1, i2, j1, j2 in opcodes:
        if tag == "equal":
            continue
        paired = min(i2 - i1, j2 - j1)
        for offset in range(paired):
            found += changes(before[i1 + offset], after[j1 + offset], f"{path}[{j1 + offset}]")
        for i in range(i1 + paired, i2):
            found.append(PathChange(f"{path}[{i}]", before[i], UNSET))
        for j in range(j1 + paired, j2):
            found.append(PathChange(f"{path}[{j}]", UNSET, after[j]))
    return found


def _key(path: str, key: Any) -> str:
    key = str(key)
    if _PLAIN_KEY.fullmatch(key):
        return f"{path}.{key}" if path else key
    return f"{path}[{json.dumps(key, ensure_ascii=False)}]"


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)
