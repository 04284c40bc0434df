"""The static check of an experiment: the hub's JSON Schema plus the rules a schema cannot say.

Nothing the document names is imported or executed here (chaostoolkit-lib's own validation
imports modules and looks for binaries, so it only ever runs in a worker).
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator

from chaoshub.core.errors import problem


@cache
def validator() -> Draft202012Validator:
    """The compiled validator of the hub's experiment schema."""
    schema = json.loads(resources.files(__package__).joinpath("experiment.schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def problems(document: Any) -> list[dict[str, str]]:
    """Every problem found in `document`, each with the JSON Pointer of the field at fault."""
    found = [
        problem(tuple(error.absolute_path), error.message)
        for error in validator().iter_errors(document)
    ]
    if found or not isinstance(document, dict):
        return sorted(found, key=lambda p: p["pointer"])
    return _unresolved_refs(document) + _bad_patterns(document)


def _activities(document: dict) -> list[tuple[str, dict]]:
    hypothesis = document.get("steady-state-hypothesis") or {}
    listed = [(f"/steady-state-hypothesis/probes/{i}", a)
              for i, a in enumerate(hypothesis.get("probes") or [])]
    for section in ("method", "rollbacks"):
        listed += [(f"/{section}/{i}", a) for i, a in enumerate(document.get(section) or [])]
    return listed


def _unresolved_refs(document: dict) -> list[dict[str, str]]:
    # chaoslib resolves a ref against the method and the hypothesis' activities by name.
    activities = _activities(document)
    names = {a.get("name") for path, a in activities if not path.startswith("/rollbacks")}
    return [
        {"pointer": f"{path}/ref", "message": f"no activity is named {a['ref']!r}"}
        for path, a in activities
        if "ref" in a and a["ref"] not in names
    ]


def _bad_patterns(document: dict) -> list[dict[str, str]]:
    found = []
    for path, activity in _activities(document):
        tolerance = activity.get("tolerance")
        if isinstance(tolerance, dict) and tolerance.get("type") == "regex":
            try:
                re.compile(tolerance["pattern"])
            except re.error as exc:
                found.append({"pointer": f"{path}/tolerance/pattern",
                              "message": f"not a regular expression: {exc}"})
    return found
