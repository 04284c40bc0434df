"""What the page of changes between two versions of an experiment shows."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from werkzeug.datastructures import MultiDict

from chaoshub.core.errors import BadRequest, NotFound
from chaoshub.experiment import diff, service
from chaoshub.experiment.schemas import VersionView

SECTION_TITLES = {"hypothesis": "Steady-state hypothesis", "method": "Method",
                  "rollbacks": "Rollbacks"}
MAX_VERSION = 2**31 - 1  # versions are numbered in an INTEGER column: none can be larger


@dataclass(frozen=True)
class FieldChange:
    """One value that changed, by its path (such as `provider.timeout`), before and after as
    indented JSON (None when not set)."""

    field: str
    before: str | None
    after: str | None


@dataclass(frozen=True)
class ActivityChange:
    """An activity found in both versions with different contents: the values that changed,
    and the whole activity before and after."""

    name: str
    fields: list[FieldChange]
    before: str
    after: str


@dataclass(frozen=True)
class ActivityShown:
    """An activity only one of the versions has, with its JSON."""

    name: str
    json: str


@dataclass(frozen=True)
class SectionChanges:
    """What changed in the hypothesis' probes, the method or the rollbacks."""

    key: str
    title: str
    added: list[ActivityShown]
    removed: list[ActivityShown]
    changed: list[ActivityChange]
    reordered: bool
    order_before: list[str]
    order_after: list[str]

    @property
    def any(self) -> bool:
        """True when anything changed in this section."""
        return bool(self.added or self.removed or self.changed or self.reordered)


@dataclass(frozen=True)
class VersionChanges:
    """Everything the page shows: both versions, every version to pick from, the changes."""

    versions: list[VersionView]
    old: VersionView
    new: VersionView
    sections: list[SectionChanges]
    fields: list[FieldChange]
    identical: bool


def requested(args: MultiDict, name: str) -> int:
    """The version number in the query parameter `name`: BadRequest when it is missing or not
    a number, NotFound when no version can have it."""
    value = args.get(name, "")
    if not value:
        raise BadRequest("choose two versions to compare: ?from=<number>&to=<number>")
    if not (value.isascii() and value.isdigit()):
        raise BadRequest(f"the {name} parameter must be a version number, such as 1")
    digits = value.lstrip("0") or "0"
    # Checked on the digits first: int() refuses strings of thousands of digits.
    if len(digits) > len(str(MAX_VERSION)) or int(digits) > MAX_VERSION:
        raise NotFound("this experiment has no version that large")
    return int(digits)


def changes(claim: str, experiment_id: str, old: int, new: int) -> VersionChanges:
    """The changes from version `old` to version `new` of the experiment; NotFound when the
    experiment has no such version."""
    versions = service.list_versions(claim, experiment_id)
    numbered = {v.number: v for v in versions}
    for number in (old, new):
        if number not in numbered:
            raise NotFound(f"this experiment has no version {number}")
    found = service.diff_versions(claim, experiment_id, old, new)
    before = service.get_version(claim, experiment_id, old).document or {}
    after = service.get_version(claim, experiment_id, new).document or {}
    return VersionChanges(
        versions=versions, old=numbered[old], new=numbered[new],
        sections=[_section(key, found[key], before, after) for key in diff.SECTIONS],
        fields=_changes(_other_fields(before), _other_fields(after)),
        identical=found["identical"],
    )


def _section(key: str, found: dict[str, Any], old: dict[str, Any],
             new: dict[str, Any]) -> SectionChanges:
    before, after = diff.by_name(old, key), diff.by_name(new, key)
    changed = []
    for entry in found["changed"]:
        name = entry["name"]
        changed.append(ActivityChange(
            name=name, fields=_changes(before[name], after[name]),
            before=_json(before[name]) or "", after=_json(after[name]) or "",
        ))
    return SectionChanges(
        key=key, title=SECTION_TITLES[key],
        added=[ActivityShown(n, _json(after[n]) or "") for n in found["added"]],
        removed=[ActivityShown(n, _json(before[n]) or "") for n in found["removed"]],
        changed=changed, reordered=found["reordered"],
        order_before=[n for n in before if n in after],
        order_after=[n for n in after if n in before],
    )


def _changes(old: Any, new: Any) -> list[FieldChange]:
    # The values that changed rather than the whole fields holding them: one key of a provider
    # reads as `provider.timeout`, 5 -> 10, not as two copies of the provider.
    return [FieldChange(c.path, _json(c.before), _json(c.after))
            for c in diff.changes(old, new)]


def _other_fields(document: dict[str, Any]) -> dict[str, Any]:
    # The document without its activities (the sections show those), the hypothesis' own
    # fields kept.
    rest = {k: v for k, v in document.items()
            if k not in ("steady-state-hypothesis", "method", "rollbacks")}
    hypothesis = document.get("steady-state-hypothesis")
    if isinstance(hypothesis, dict) and any(k != "probes" for k in hypothesis):
        rest["steady-state-hypothesis"] = {k: v for k, v in hypothesis.items() if k != "probes"}
    return rest


def _json(value: Any) -> str | None:
    # Absent and null read the same on the page: "not set".
    if value is None or value is diff.UNSET:
        return None
    return json.dumps(value, indent=2, ensure_ascii=False)
