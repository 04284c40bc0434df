"""A run's timeline from its events: the steady-state checks, the method and the rollbacks,
each with its activities as they started and ended. The run page draws it on the server, and
its script (static/run.js) extends it the same way as events arrive. An execution's page draws
the same activities from its journal (`journal_entries`), each with its verdict."""

from __future__ import annotations

import json
import math
import shlex
from typing import Any

from chaoshub.experiment import journals, plan

SECTION_TITLES = {
    "before": "Steady state before the method",
    "method": "Method",
    "after": "Steady state after the method",
    "rollbacks": "Rollbacks",
}
OUTPUT_SHOWN = 2000  # characters of an activity's output on the page
TRACEBACK_SHOWN = 20000  # characters of an exception's traceback (its end: where it was raised)
# chaoslib wraps every provider's error in this; its own name adds nothing for a reader.
WRAPPER = "chaoslib.exceptions.ActivityFailed: "
# The words and colour (a CSS class) of each verdict: a probe that ran fine but returned a
# value outside its tolerance is what made the run deviate, and must not read as a success.
VERDICTS = {
    "failed": "failed",
    "missed": "tolerance not met",
    "succeeded": "succeeded",
    "unknown": "did not finish",
}


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
    entry.update(
        status=_text(event.get("status")) or "completed",
        # A finite number the page can show (an integer past any float is none).
        duration=journals.number(event.get("duration")),
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


def journal_entries(entries: Any) -> list[dict[str, Any]]:
    """A journal's activity runs for an execution's page: each as `plan.run_entries` draws it,
    with its verdict and the words for it, the command a process activity ran, and an error
    as one line plus its traceback."""
    raw = entries if isinstance(entries, list) else []
    rows = []
    for entry, row in zip(raw, plan.run_entries(raw), strict=True):
        entry = entry if isinstance(entry, dict) else {}
        verdict = _verdict(row)
        headline, traceback = error_lines(entry.get("exception"))
        limit = _timeout(entry.get("activity"))
        if headline.startswith("Timed out") and limit is not None:
            headline += f" (its timeout is {limit:g} s)"
        rows.append({**row, "verdict": verdict, "verdict_label": VERDICTS[verdict],
                     "command": _command(entry.get("activity")),
                     "error": headline, "traceback": traceback,
                     # chaoslib writes a null output for an activity that raised: no output.
                     "output": row["output"] if entry.get("output") is not None else ""})
    return rows


def error_lines(exception: Any) -> tuple[str, str]:
    """An exception as chaoslib keeps it (a list of traceback lines, or a string): one line
    saying what went wrong, and the whole traceback ("" when there is none)."""
    if isinstance(exception, list):
        text = "".join(str(part) for part in exception)
    else:
        text = str(exception or "")
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return "", ""
    last = lines[-1].removeprefix(WRAPPER)
    timed_out = "TimeoutExpired" in text or "took too long" in last
    headline = f"Timed out: {last}" if timed_out else last
    traceback = text.strip() if len(lines) > 1 else ""
    if len(traceback) > TRACEBACK_SHOWN:
        traceback = "… " + traceback[-TRACEBACK_SHOWN:]
    return headline[:OUTPUT_SHOWN], traceback


def _verdict(row: dict[str, Any]) -> str:
    # A failed run fails whatever its tolerance; a probe that ran but missed it did not succeed.
    if row["status"] == "failed":
        return "failed"
    if row["tolerance_met"] is False:
        return "missed"
    return "succeeded" if row["status"] == "succeeded" else "unknown"


def _timeout(activity: Any) -> float | None:
    provider = activity.get("provider") if isinstance(activity, dict) else None
    limit = provider.get("timeout") if isinstance(provider, dict) else None
    if not isinstance(limit, int | float) or isinstance(limit, bool):
        return None
    try:
        seconds = float(limit)
    except OverflowError:  # a journal's integer past any float: no timeout worth saying
        return None
    return seconds if math.isfinite(seconds) else None


def _command(activity: Any) -> str:
    # A process activity's command line, quoted as a shell would need it: which arguments it
    # ran with matters as much as the program.
    provider = activity.get("provider") if isinstance(activity, dict) else None
    if not isinstance(provider, dict) or provider.get("type") != "process":
        return ""
    path, arguments = str(provider.get("path") or ""), provider.get("arguments")
    if isinstance(arguments, list):
        return shlex.join([path, *(str(a) for a in arguments)])[:OUTPUT_SHOWN]
    if isinstance(arguments, str) and arguments:
        return f"{shlex.quote(path)} {arguments}"[:OUTPUT_SHOWN]
    return shlex.quote(path) if path else ""
