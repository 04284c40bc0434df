"""A run's timeline from its events: the steady-state checks, the method and the rollbacks,
each with its activities as they started and ended. The run page draws it on the server, and
its script (static/run.js) extends it the same way as events arrive."""

from __future__ import annotations

import json
from typing import Any

SECTION_TITLES = {
    "before": "Steady state before the method",
    "method": "Method",
    "after": "Steady state after the method",
    "rollbacks": "Rollbacks",
}
OUTPUT_SHOWN = 2000  # characters of an activity's output on the page


def timeline(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The sections reached so far (in order, each with its entries and, for steady states,
    whether it was met) and how the run ended, from its flat events in `seq` order."""
    sections: list[dict[str, Any]] = []
    ending: dict[str, Any] | None = None
    current: dict[str, Any] | None = None

    def section(key: str) -> dict[str, Any]:
        found = {"key": key, "title": SECTION_TITLES[key], "entries": [], "met": None}
        sections.append(found)
        return found

    for event in events:
        kind = event.get("type")
        if kind == "hypothesis-started":
            current = section("after" if event.get("phase") == "after" else "before")
        elif kind == "hypothesis-completed" and current is not None:
            current["met"] = event.get("met")
        elif kind == "method-started":
            current = section("method")
        elif kind == "rollbacks-started":
            current = section("rollbacks")
        elif kind in ("activity-started", "activity-completed"):
            if current is None:
                current = section("method")
            _activity(current, event)
        elif kind in ("run-finished", "run-interrupted", "run-signal-exit"):
            ending = {"type": kind, "status": event.get("status"),
                      "deviated": event.get("deviated"),
                      "reason": _text(event.get("reason") or event.get("error")
                                      or event.get("signal"))}
    return {"sections": sections, "ending": ending}


def _activity(section: dict[str, Any], event: dict[str, Any]) -> None:
    name = _text(event.get("name")) or "unnamed"
    if event["type"] == "activity-started":
        section["entries"].append({
            "name": name, "type": _text(event.get("activity_type")), "status": "running",
            "start": event.get("timestamp"), "duration": None, "output": "", "error": ""})
        return
    entry = next((e for e in reversed(section["entries"])
                  if e["name"] == name and e["status"] == "running"), None)
    if entry is None:  # its start was not seen: the end alone
        entry = {"name": name, "type": _text(event.get("activity_type")), "start": None}
        section["entries"].append(entry)
    duration = event.get("duration")
    entry.update(
        status=_text(event.get("status")) or "completed",
        duration=duration if isinstance(duration, int | float) else None,
        output=output_text(event),
        error=_text(event.get("exception") or event.get("error")),
    )


def output_text(event: dict[str, Any]) -> str:
    """An activity's output as the page shows it: JSON, cut short; a note when it was too big
    to keep in the event (the journal has it whole)."""
    if event.get("output_truncated"):
        return f"(output of {event.get('output_size', '?')} bytes: see the journal)"
    if "output" not in event or event["output"] is None:
        return ""
    output = event["output"]
    text = output if isinstance(output, str) else json.dumps(output, ensure_ascii=False,
                                                            indent=2, default=str)
    return text if len(text) <= OUTPUT_SHOWN else text[:OUTPUT_SHOWN] + " …"


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return "".join(str(v) for v in value)[:2000]
    return str(value)[:2000]
