"""The runs chart: each run's outcome and duration over time, laid out as bars of an inline SVG.

Drawn on the server (the pages load no outside script): this module only computes the geometry,
the titles and the legend; `experiment/_runs_chart.html` writes the SVG, `hub.css` colours it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from chaoshub.experiment.journals import OUTCOMES
from chaoshub.experiment.schemas import ExecutionView

CHART_RUNS = 50
WIDTH, HEIGHT = 640, 140
PLOT_LEFT, PLOT_RIGHT = 8, 632
PLOT_TOP, BASELINE = 22, 128  # the top of the longest bar, and where every bar stands
SLOT_MAX = 28  # a few runs make a few wide bars, not one slab
BAR_SHARE = 0.7
LEAST_BAR = 3  # a run of no (or unknown) duration still shows its outcome


def in_time_order(executions: list[ExecutionView]) -> list[ExecutionView]:
    """Executions oldest first, by when they started (when they were published, if unknown)."""
    return sorted(executions, key=lambda e: (e.started_at or e.created_at, e.created_at, e.id))


def previous_run(executions: list[ExecutionView], execution_id: str) -> ExecutionView | None:
    """The run just before `execution_id` in time among `executions`; None for the first (or
    one not among them)."""
    ordered = in_time_order(executions)
    for earlier, execution in zip(ordered, ordered[1:], strict=False):
        if execution.id == execution_id:
            return earlier
    return None


def seconds(value: float | None) -> str:
    """A duration for people: milliseconds under a second, else seconds."""
    if value is None:
        return "duration unknown"
    return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.2f} s"


def runs_chart(executions: list[ExecutionView], labels: Mapping[str, str],
               current_id: str | None = None, limit: int = CHART_RUNS) -> dict[str, Any] | None:
    """The newest `limit` runs as bars, oldest on the left: height by duration, class by
    outcome, a title each; a legend and a summary for screen readers. None without runs."""
    runs = in_time_order(executions)[-limit:]
    if not runs:
        return None
    longest = max((e.duration or 0.0 for e in runs), default=0.0)
    slot = min(SLOT_MAX, (PLOT_RIGHT - PLOT_LEFT) / len(runs))
    width = slot * BAR_SHARE
    bars = []
    for position, run in enumerate(runs):
        height = LEAST_BAR
        if run.duration and longest > 0:
            height = max(LEAST_BAR, (BASELINE - PLOT_TOP) * run.duration / longest)
        # Right-aligned: the newest run sits at the right edge however few runs there are.
        x = PLOT_RIGHT - (len(runs) - position) * slot + (slot - width) / 2
        bars.append({
            "id": run.id, "outcome": run.outcome, "current": run.id == current_id,
            "x": round(x, 2), "y": round(BASELINE - height, 2), "width": round(width, 2),
            "height": round(height, 2), "title": _title(run, labels, run.id == current_id),
        })
    counts = Counter(run.outcome for run in runs)
    known = [o for o in OUTCOMES if o in counts] + sorted(o for o in counts if o not in OUTCOMES)
    legend = [{"outcome": o, "label": labels.get(o, o), "count": counts[o]} for o in known]
    summary = ", ".join(f"{item['label']}: {item['count']}" for item in legend)
    runs_said = "the only run" if len(runs) == 1 else f"the last {len(runs)} runs, oldest first"
    return {
        "width": WIDTH, "height": HEIGHT, "left": PLOT_LEFT, "right": PLOT_RIGHT,
        "baseline": BASELINE, "top": PLOT_TOP, "bars": bars, "legend": legend,
        "longest": seconds(longest) if longest else "",
        "label": f"Outcomes and durations of {runs_said}. {summary}."
                 + (f" The longest took {seconds(longest)}." if longest else ""),
    }


def _title(run: ExecutionView, labels: Mapping[str, str], current: bool) -> str:
    when = (run.started_at.strftime("%Y-%m-%d %H:%M:%S UTC") if run.started_at
            else run.created_at.strftime("published %Y-%m-%d %H:%M:%S UTC"))
    this = " (this run)" if current else ""
    return (f"{labels.get(run.outcome, run.outcome)}{this} · {when} · {seconds(run.duration)}"
            f" · version {run.version}")


DAY_LEFT = 34  # room for the scale at the left of the runs-by-day chart
DAY_BASELINE, DAY_HEIGHT = 128, 148


def runs_by_day_chart(days: list, outcomes: list[str], labels: Mapping[str, str]
                      ) -> dict[str, Any]:
    """Trends' runs chart: a bar a UTC day (`trends.Day`, oldest on the left) stacked by
    outcome, the best at the bottom; a title a day and a segment, and a summary for screen
    readers (the page has the figures in a table too)."""
    tallest = max((d.total for d in days), default=0)
    slot = (PLOT_RIGHT - DAY_LEFT) / max(len(days), 1)
    width = slot * BAR_SHARE
    columns = []
    for position, day in enumerate(days):
        x = DAY_LEFT + position * slot + (slot - width) / 2
        said = ", ".join(f"{labels.get(o, o)}: {day.counts[o]}" for o in outcomes
                         if day.counts.get(o))
        title = f"{day.day.isoformat()}: " + (f"{_runs(day.total)} ({said})" if day.total
                                              else "no runs")
        segments, bottom = [], float(DAY_BASELINE)
        for outcome in outcomes:
            count = day.counts.get(outcome, 0)
            if not count:
                continue
            height = (DAY_BASELINE - PLOT_TOP) * count / tallest
            bottom -= height
            segments.append({"outcome": outcome, "count": count, "y": round(bottom, 2),
                             "height": round(height, 2),
                             "title": f"{day.day.isoformat()}: {labels.get(outcome, outcome)}"
                                      f", {_runs(count)}"})
        columns.append({"day": day.day.isoformat(), "total": day.total, "title": title,
                        "x": round(x, 2), "width": round(width, 2), "segments": segments})
    totals = {o: sum(d.counts.get(o, 0) for d in days) for o in outcomes}
    legend = [{"outcome": o, "label": labels.get(o, o), "count": totals[o]} for o in outcomes]
    summary = ", ".join(f"{item['label']}: {item['count']}" for item in legend) or "no runs"
    first, last = (days[0].day, days[-1].day) if days else (None, None)
    span = f"from {first.isoformat()} to {last.isoformat()} (UTC)" if first else ""
    return {
        "width": WIDTH, "height": DAY_HEIGHT, "left": DAY_LEFT, "right": PLOT_RIGHT,
        "top": PLOT_TOP, "baseline": DAY_BASELINE, "columns": columns, "legend": legend,
        "tallest": tallest, "first": first.strftime("%b %d") if first else "",
        "last": last.strftime("%b %d") if last else "",
        "title": f"Runs a day by outcome, {len(days)} days",
        "label": f"Runs a day by outcome {span}, a bar a day. In all: {summary}."
                 + (f" The busiest day had {_runs(tallest)}." if tallest else ""),
    }


def _runs(count: int) -> str:
    return "1 run" if count == 1 else f"{count} runs"
