"""What the trends part of a page (chaoshub/templates/experiment/_trends.html) draws: the
workspace page, an org's trends tab and the runs overview show it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chaoshub.core.errors import Forbidden, NotFound
from chaoshub.experiment import chart, trends
from chaoshub.experiment.presenters import OUTCOME_LABELS


def trends_context(compute: Callable[[], trends.Trends]) -> dict[str, Any]:
    """What `_trends.html` draws from `compute()`'s trends; nothing (no trends part) for a
    reader who may not see the runs they are made of."""
    try:
        found = compute()
    except (NotFound, Forbidden):
        return {"trends": None}
    return {"trends": found, "trends_chart": chart.runs_by_day_chart(
        found.days, found.outcomes, OUTCOME_LABELS), "outcome_labels": OUTCOME_LABELS}
