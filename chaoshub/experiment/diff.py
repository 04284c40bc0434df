"""A structural diff of two experiment documents: activities by name, other fields by key."""

from __future__ import annotations

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
