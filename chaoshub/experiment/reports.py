"""An execution as a report to keep or hand to CI: its activities gathered once from the
journal (those that ran, and those of the experiment that did not), then written as JUnit XML
or drawn as a page of its own (templates/experiment/report.html)."""

from __future__ import annotations

import re
import unicodedata
import xml.etree.ElementTree as ET
from collections import Counter
from typing import Any

from chaoshub.core.schemas import Frozen
from chaoshub.experiment import plan, run_timeline
from chaoshub.experiment.presenters import experiment_path
from chaoshub.experiment.schemas import ExecutionView

# The phases a report shows, in the order chaoslib runs them, and the JUnit class of each.
PHASES = ("before", "method", "after", "rollbacks")
CLASSNAMES = {"before": "steady-state-before", "method": "method",
              "after": "steady-state-after", "rollbacks": "rollbacks"}
TITLES = {"before": "Steady state before the method", "method": "Method",
          "after": "Steady state after the method", "rollbacks": "Rollbacks"}
NOT_RUN = "not run"
# What XML 1.0 cannot hold at all, escaped or not (control characters, lone surrogates,
# U+FFFE and U+FFFF): replaced so that the document stays well-formed.
NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
REPLACEMENT = "\ufffd"
MESSAGE_SHOWN = 500  # characters of a one-line message (an attribute CI tools show in a list)
FILENAME_WORDS = 60  # characters of the title in a download's file name


class ReportActivity(Frozen):
    """One activity of the experiment in an execution: how it ran, or that it did not."""

    name: str
    type: str
    ran: bool
    verdict: str  # run_timeline's verdicts, or "not-run"
    verdict_label: str
    duration: float | None = None
    tolerance: str = ""
    target: str = ""
    command: str = ""
    output: str = ""
    error: str = ""
    traceback: str = ""


class ReportSection(Frozen):
    """A phase of the run (a steady state, the method, the rollbacks) and its activities."""

    phase: str
    title: str
    met: bool | None = None  # whether a steady state held; None when not checked
    activities: list[ReportActivity]


class ExecutionReport(Frozen):
    """What an execution's report shows: its index, and its phases for those who may see them
    (none for those who see its status only, or once retention removed its journal)."""

    experiment_title: str
    org: str
    workspace: str
    execution: ExecutionView
    sections: list[ReportSection] = []
    interruption: str = ""
    journal_kept: bool = True


def sections(journal: dict[str, Any]) -> list[ReportSection]:
    """The journal's phases with what ran in each, and the activities of the experiment it ran
    that never did (the method after a steady state that did not hold, rollbacks not played)."""
    states = _dict(journal.get("steady_states"))
    planned = _dict(journal.get("experiment"))
    hypothesis = _list(_dict(planned.get("steady-state-hypothesis")).get("probes"))
    ran = {"before": _dict(states.get("before")).get("probes"), "method": journal.get("run"),
           "after": _dict(states.get("after")).get("probes"),
           "rollbacks": journal.get("rollbacks")}
    plans = {"before": hypothesis, "method": _list(planned.get("method")), "after": hypothesis,
             "rollbacks": _list(planned.get("rollbacks"))}
    found = []
    for phase in PHASES:
        activities = [_ran(entry) for entry in run_timeline.journal_entries(ran[phase])]
        activities += _not_run(plans[phase], [a.name for a in activities])
        if not activities and phase in ("before", "after"):
            continue  # an experiment without a steady state: nothing was to be checked
        met = _dict(states.get(phase)).get("steady_state_met") if phase in ("before",
                                                                             "after") else None
        found.append(ReportSection(phase=phase, title=TITLES[phase],
                                   met=met if isinstance(met, bool) else None,
                                   activities=activities))
    return found


def interruption(journal: dict[str, Any]) -> str:
    """What interrupted the run, in words; "" when nothing did."""
    found = journal.get("interruption")
    if not isinstance(found, dict):
        return ""
    what = " ".join(str(found.get(k) or "") for k in ("kind", "name")).strip()
    reason = str(found.get("reason") or "")
    return f"Interrupted by {what}" + (f": {reason}" if reason else "") if what or reason else ""


def junit_xml(report: ExecutionReport, url: str = "") -> str:
    """The report as a JUnit XML document (the Ant format CI servers read): one test suite, a
    test case per activity, with failures for tolerances not met, errors for activities that
    failed and skips for those that did not run."""
    execution = report.execution
    cases = [(section.phase, a) for section in report.sections for a in section.activities]
    counts = Counter(_junit_kind(a) for _, a in cases)
    started = execution.started_at or execution.created_at
    suite = ET.Element("testsuite", {
        "name": _clean(report.experiment_title) or "(untitled experiment)",
        "tests": str(len(cases)), "failures": str(counts["failure"]),
        "errors": str(counts["error"]), "skipped": str(counts["skipped"]),
        "time": _seconds(execution.duration),
        # The Ant format's timestamp has no zone: the hub's times are all UTC.
        "timestamp": started.replace(tzinfo=None, microsecond=0).isoformat(),
    })
    if execution.node:
        suite.set("hostname", _clean(execution.node))
    properties = ET.SubElement(suite, "properties")
    for name, value in (("experiment_id", execution.experiment_id),
                        ("execution_id", execution.id), ("status", execution.status),
                        ("deviated", "true" if execution.deviated else "false"),
                        ("outcome", execution.outcome), ("url", url)):
        if value:
            ET.SubElement(properties, "property", name=name, value=_clean(value))
    for phase, activity in cases:
        case = ET.SubElement(suite, "testcase", name=_clean(activity.name),
                             classname=CLASSNAMES[phase], time=_seconds(activity.duration))
        kind = _junit_kind(activity)
        if kind == "failure":
            failure = ET.SubElement(case, "failure", type="ToleranceNotMet",
                                    message=_one_line(_missed(activity)))
            failure.text = _clean(activity.output)
        elif kind == "error":
            error = ET.SubElement(case, "error", type=_error_type(activity.error),
                                  message=_one_line(activity.error or "the activity failed"))
            error.text = _clean(activity.traceback or activity.error)
        elif kind == "skipped":
            ET.SubElement(case, "skipped", message=activity.verdict_label)
        if kind != "skipped" and activity.output and kind != "failure":
            ET.SubElement(case, "system-out").text = _clean(activity.output)
    ET.indent(suite)
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"


def filename(report: ExecutionReport, extension: str) -> str:
    """A file name for a download of the report: the experiment's title as ASCII words and the
    day it ran, e.g. `deleting-the-marker-file-2026-11-23.html`."""
    ascii_title = unicodedata.normalize("NFKD", report.experiment_title).encode(
        "ascii", "ignore").decode()
    words = re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")[:FILENAME_WORDS]
    started = report.execution.started_at or report.execution.created_at
    return f"{words.rstrip('-') or 'execution'}-{started.date().isoformat()}.{extension}"


def execution_path(report: ExecutionReport) -> str:
    """The path of the execution's page on the hub."""
    execution = report.execution
    return (f"{experiment_path(report.org, report.workspace, execution.experiment_id)}"
            f"/execution/{execution.id}")


def _ran(entry: dict[str, Any]) -> ReportActivity:
    return ReportActivity(
        name=entry["name"] or "(unnamed)", type=entry["type"] or "activity", ran=True,
        verdict=entry["verdict"], verdict_label=entry["verdict_label"],
        duration=entry["duration"], tolerance=entry["tolerance"], target=entry["target"],
        command=entry["command"], output=entry["output"], error=entry["error"],
        traceback=entry["traceback"])


def _not_run(planned: list[Any], ran: list[str]) -> list[ReportActivity]:
    # By name: chaoslib runs a phase's activities in order, each once (a `ref` by its name),
    # so what the plan names more often than the journal does never ran.
    left = Counter(ran)
    missing = []
    for entry in planned:
        drawn = plan.activity(entry)
        name = drawn["name"] or "(unnamed)"
        if left[name] > 0:
            left[name] -= 1
            continue
        missing.append(ReportActivity(
            name=name, type=drawn["type"] if drawn["type"] != "ref" else "activity",
            ran=False, verdict="not-run", verdict_label=NOT_RUN,
            tolerance=drawn["tolerance"], target=drawn["target"]))
    return missing


def _junit_kind(activity: ReportActivity) -> str:
    if activity.verdict == "failed":
        return "error"
    if activity.verdict == "missed":
        return "failure"
    if activity.verdict == "succeeded":
        return "passed"
    return "skipped"  # not run, or cut off before it finished


def _missed(activity: ReportActivity) -> str:
    expected = f" ({activity.tolerance})" if activity.tolerance else ""
    value = activity.output or "nothing"
    return f"tolerance not met{expected}: the probe returned {value}"


def _error_type(headline: str) -> str:
    # "FileNotFoundError: [Errno 2] ..." names its exception; other messages say no type.
    if headline.startswith("Timed out"):
        return "Timeout"
    named = headline.split(":", 1)[0].strip()
    return named if re.fullmatch(r"[A-Za-z_][\w.]*", named) else "ActivityFailed"


def _one_line(text: str) -> str:
    line = " ".join(_clean(text).split())
    return line if len(line) <= MESSAGE_SHOWN else line[:MESSAGE_SHOWN] + " …"


def _clean(value: Any) -> str:
    return NOT_XML.sub(REPLACEMENT, str(value))


def _seconds(value: float | None) -> str:
    return f"{max(value, 0.0):.6f}" if value is not None else "0"


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
