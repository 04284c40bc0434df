"""Journals as chaoslib writes them: the check they must pass, their index, the hub's outcome.

A journal is untrusted input: every field is read defensively (older chaoslib versions lack
some keys, activities cut off by an interruption have no status), and nothing here raises on a
strange shape except `problems`, which says what makes a journal unusable.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

STATUSES = ("completed", "failed", "aborted", "interrupted")
# The hub's outcome, most telling first (chaostoolkit's agent report uses the same order):
# a raw `completed` also covers a baseline that was not met, so it alone misleads.
OUTCOMES = ("interrupted", "aborted", "probe-error", "baseline-not-met", "deviated", "passed")


def problems(journal: Any) -> list[dict[str, str]]:
    """What makes `journal` unusable, each with its JSON Pointer; empty when it is usable."""
    if not isinstance(journal, dict):
        return [{"pointer": "", "message": "a journal must be a JSON object"}]
    found = []
    if "status" not in journal:
        found.append({"pointer": "/status", "message": "a journal must have a status"})
    elif journal["status"] not in STATUSES:
        found.append({"pointer": "/status",
                      "message": f"the status must be one of {', '.join(STATUSES)}"})
    if not isinstance(journal.get("experiment"), dict):
        found.append({"pointer": "/experiment",
                      "message": "a journal must hold the experiment it ran, as an object"})
    return found


def outcome(journal: dict[str, Any]) -> str:
    """The hub's reading of a journal: interrupted, aborted, probe-error, baseline-not-met,
    deviated or passed."""
    status = journal.get("status")
    if status in ("interrupted", "aborted"):
        return status
    states = _dict(journal.get("steady_states"))
    probes = [p for state in _hypothesis_states(states) for p in _list(state.get("probes"))]
    # chaoslib marks the run `failed` when a hypothesis probe raised.
    if status == "failed" or any(_dict(p).get("status") == "failed" for p in probes):
        return "probe-error"
    before = states.get("before")
    if isinstance(before, dict) and before.get("steady_state_met") is False:
        return "baseline-not-met"
    if journal.get("deviated") is True:
        return "deviated"
    return "passed"


def index(journal: dict[str, Any]) -> dict[str, Any]:
    """The columns an execution is listed and searched by, read from its journal."""
    return {
        "status": journal["status"],
        "deviated": journal.get("deviated") is True,
        "outcome": outcome(journal),
        "started_at": timestamp(journal.get("start")),
        "ended_at": timestamp(journal.get("end")),
        "duration": number(journal.get("duration")),
        "node": text(journal.get("node"), 500),
    }


def activities(journal: dict[str, Any]) -> list[dict[str, Any]]:
    """Every activity run, in journal order: phase, name, type, status, duration, tolerance."""
    states = _dict(journal.get("steady_states"))
    listed: list[tuple[str, Any]] = []
    listed += [("before", p) for p in _list(_dict(states.get("before")).get("probes"))]
    listed += [("method", r) for r in _list(journal.get("run"))]
    for state in _list(states.get("during")):
        listed += [("during", p) for p in _list(_dict(state).get("probes"))]
    listed += [("after", p) for p in _list(_dict(states.get("after")).get("probes"))]
    listed += [("rollbacks", r) for r in _list(journal.get("rollbacks"))]
    rows = []
    for phase, entry in listed:
        entry = _dict(entry)
        activity = _dict(entry.get("activity"))
        met = entry.get("tolerance_met")
        rows.append({
            "phase": phase,
            "name": text(activity.get("name") or activity.get("ref"), 500) or "(unnamed)",
            "type": text(activity.get("type"), 20) or "unknown",
            "status": text(entry.get("status"), 20) or None,
            "duration": number(entry.get("duration")),
            "tolerance_met": met if isinstance(met, bool) else None,
        })
    return rows


def timestamp(value: Any) -> datetime | None:
    """An RFC 3339 time as an aware datetime (UTC when the zone is missing); None if not one."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def number(value: Any) -> float | None:
    """A finite number, or None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        found = float(value)
    except OverflowError:  # an integer past any float (JSON has no bound): no number to keep
        return None
    return found if math.isfinite(found) else None


def text(value: Any, limit: int) -> str:
    """A string fit for a column: NUL characters dropped (PostgreSQL refuses them), capped."""
    return value.replace("\x00", "")[:limit] if isinstance(value, str) else ""


def _hypothesis_states(states: dict[str, Any]) -> list[dict[str, Any]]:
    found = [states.get("before"), states.get("after"), *_list(states.get("during"))]
    return [s for s in found if isinstance(s, dict)]


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
