"""Two executions of one experiment side by side: what flipped, changed status, slowed or went.

Pure functions over the indexed views: activities are matched by phase and name, and a name
that repeats within a phase is matched by order (its first run with the other's first, ...).
"""

from __future__ import annotations

from chaoshub.experiment.schemas import (
    ActivityPair,
    ActivityView,
    ExecutionComparison,
    ExecutionView,
)

# The order journals.activities lists phases in: the hypothesis, the method, the rollbacks.
PHASES = ("before", "method", "during", "after", "rollbacks")
STEADY_STATE_PHASES = frozenset({"before", "during", "after"})
# Timings jitter from run to run: a change is slower or faster only past both bounds.
# Between two runs of the same experiment, starting a process, importing a Python module or
# a busy machine moves an activity by milliseconds to tens of milliseconds (2.2 -> 6.7 ms is
# three times as long and means nothing): 100 ms is past that jitter and about what a person
# notices. An activity that waits on purpose (a 30 s pause, a rollout) drifts by more than
# that without anything having changed, so the change must also be a fifth of its duration
# in run A, where a slower or faster system shows.
NOTABLE_SECONDS = 0.1
NOTABLE_RATIO = 0.2

Key = tuple[str, str, int]


def compare(a: ExecutionView, b: ExecutionView) -> ExecutionComparison:
    """What changed from execution `a` to execution `b`; no activity detail unless both views
    have it."""
    detailed = a.detailed and b.detailed
    pairs = pair_activities(a.activities, b.activities) if detailed else []
    both = [p for p in pairs if p.a is not None and p.b is not None]
    notable = [p for p in both if is_notable(p)]
    return ExecutionComparison(
        experiment_id=b.experiment_id, a=a, b=b, detailed=detailed,
        duration_change=change(a.duration, b.duration),
        activities=pairs,
        flipped=[p for p in both if is_flipped(p)],
        status_changed=[p for p in both if p.a.status != p.b.status],
        slower=sorted((p for p in notable if p.duration_change > 0),
                      key=lambda p: -p.duration_change),
        faster=sorted((p for p in notable if p.duration_change < 0),
                      key=lambda p: p.duration_change),
        only_in_a=[p for p in pairs if p.b is None],
        only_in_b=[p for p in pairs if p.a is None],
    )


def pair_activities(a: list[ActivityView], b: list[ActivityView]) -> list[ActivityPair]:
    """The activities of two executions matched up, phase by phase: in `b`'s order, then what
    only `a` ran, in `a`'s order."""
    left, right = _keyed(a), _keyed(b)
    keys = list(right) + [k for k in left if k not in right]
    keys.sort(key=lambda k: _phase_rank(k[0]))  # stable: the order within a phase stays
    return [_pair(k, left.get(k), right.get(k)) for k in keys]


def is_flipped(pair: ActivityPair) -> bool:
    """True for a steady-state probe whose tolerance was met in one execution and missed in the
    other."""
    if pair.a is None or pair.b is None or pair.phase not in STEADY_STATE_PHASES:
        return False
    met_a, met_b = pair.a.tolerance_met, pair.b.tolerance_met
    return met_a is not None and met_b is not None and met_a != met_b


def is_notable(pair: ActivityPair) -> bool:
    """True when an activity's duration moved more than timing noise: by at least
    NOTABLE_SECONDS and by at least NOTABLE_RATIO of its duration in run A."""
    if pair.duration_change is None or pair.a is None or pair.b is None:
        return False
    moved = abs(pair.duration_change)
    return moved >= NOTABLE_SECONDS and moved >= NOTABLE_RATIO * (pair.a.duration or 0.0)


def change(before: float | None, after: float | None) -> float | None:
    """`after` minus `before`, in seconds; None when either is unknown."""
    return None if before is None or after is None else after - before


def _keyed(activities: list[ActivityView]) -> dict[Key, ActivityView]:
    seen: dict[tuple[str, str], int] = {}
    keyed = {}
    for activity in activities:
        name = (activity.phase, activity.name)
        seen[name] = seen.get(name, 0) + 1
        keyed[(*name, seen[name])] = activity
    return keyed


def _phase_rank(phase: str) -> int:
    return PHASES.index(phase) if phase in PHASES else len(PHASES)


def _pair(key: Key, a: ActivityView | None, b: ActivityView | None) -> ActivityPair:
    phase, name, occurrence = key
    shown = b or a
    before = a.duration if a else None
    after = b.duration if b else None
    delta = change(before, after)
    return ActivityPair(
        phase=phase, name=name, occurrence=occurrence, type=shown.type if shown else "unknown",
        a=a, b=b, duration_change=delta,
        duration_ratio=after / before if delta is not None and before else None,
    )
