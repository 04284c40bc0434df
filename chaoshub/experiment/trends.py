"""Trends of runs: outcomes by day, pass rates, flips, stale experiments and the resilience
score, worked out from the figures trend_store.py reads.

Pure: no database and no clock of its own (`now` is given), so each rule is tested at a fixed
time. Days are UTC days. The outcomes are the hub's (journals.OUTCOMES); what each says of
the system (its verdict) is decided here, once, for the pages and the API alike:

- passed: the steady state held;
- failed: it did not (deviated, baseline-not-met) or could not be checked (probe-error);
- stopped: the run ended before a verdict (aborted, interrupted): shown in the runs chart,
  left out of pass rates.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta

from chaoshub.core.schemas import Frozen
from chaoshub.experiment.journals import OUTCOMES

WINDOW_DAYS = 30  # the chart's days and the pass rates' window, today included
HALF_LIFE_DAYS = 14  # an experiment's weight in the score halves every two weeks unrun
STALE_DAYS = 30  # not run for longer than this: listed as stale

PASSED = ("passed",)
FAILED = ("deviated", "baseline-not-met", "probe-error")
STOPPED = ("aborted", "interrupted")
VERDICTS = {**{o: "passed" for o in PASSED}, **{o: "failed" for o in FAILED},
            **{o: "stopped" for o in STOPPED}}
# The chart stacks outcomes from the best at the bottom to the worst at the top.
CHART_ORDER = tuple(reversed(OUTCOMES))

FORMULA = (f"score = 100 × Σ (freshness × pass rate) ÷ number of experiments; freshness = "
           f"0.5 ^ (days since the experiment's last run ÷ {HALF_LIFE_DAYS}), 0 if never run; "
           f"pass rate = passed ÷ (passed + failed) of its runs in the last {WINDOW_DAYS} days, "
           f"else 1 if its last run passed and 0 if not. Aborted and interrupted runs count "
           f"in no pass rate.")


def verdict(outcome: str | None) -> str | None:
    """What an outcome says of the system: passed, failed or stopped (None: not an outcome)."""
    return VERDICTS.get(outcome or "")


def window_start(now: datetime, days: int = WINDOW_DAYS) -> datetime:
    """The start (UTC midnight) of the first of the `days` UTC days that end with today."""
    today = now.astimezone(UTC).date()
    return datetime.combine(today - timedelta(days=days - 1), time(), tzinfo=UTC)


def pass_rate(passed: int, failed: int) -> float | None:
    """Passed runs among those with a verdict; None without any."""
    return passed / (passed + failed) if passed + failed else None


def freshness(last_run_at: datetime | None, now: datetime,
              half_life_days: float = HALF_LIFE_DAYS) -> float:
    """An experiment's weight in the score: 1 just run, halving every `half_life_days` since
    its last run; 0 if never run."""
    if last_run_at is None:
        return 0.0
    return 0.5 ** (age_days(last_run_at, now) / half_life_days)


def age_days(moment: datetime, now: datetime) -> float:
    """Days (with fractions) from `moment` to `now`; 0 for a moment to come (a skewed clock)."""
    return max(0.0, (now - moment).total_seconds() / 86400)


class DayCount(Frozen):
    """How many runs of one outcome one UTC day had (a row of the SQL aggregate)."""

    day: date
    outcome: str
    count: int


class RunRef(Frozen):
    """A run (its execution) as trends point at it."""

    execution_id: str
    outcome: str
    at: datetime


class ExperimentFigures(Frozen):
    """What trend_store.py reads of one experiment: where it is, its last run, its runs in the
    window by verdict, and its two latest runs with a verdict (for flips)."""

    id: str
    title: str
    org: str
    workspace: str
    last_run_at: datetime | None = None
    last_run_outcome: str | None = None
    last_execution_id: str | None = None
    passed: int = 0
    failed: int = 0
    stopped: int = 0
    latest_verdicts: list[RunRef] = []  # newest first, at most two


class Day(Frozen):
    """One UTC day of the runs chart: its runs by outcome."""

    day: date
    counts: dict[str, int]
    total: int


class ExperimentTrend(Frozen):
    """One experiment's figures and its part in the score."""

    id: str
    title: str
    org: str
    workspace: str
    runs: int  # in the window, every outcome
    passed: int
    failed: int
    pass_rate: float | None  # in the window; None without a run with a verdict there
    last_run_at: datetime | None
    last_run_outcome: str | None
    last_execution_id: str | None
    days_since_run: float | None
    freshness: float
    rate_counted: float  # the pass rate the score takes: the window's, else the last run's
    contribution: float  # freshness × rate_counted
    stale: bool


class Flip(Frozen):
    """An experiment whose latest run with a verdict failed right after one that passed."""

    id: str
    title: str
    org: str
    workspace: str
    passed: RunRef
    failed: RunRef


class Score(Frozen):
    """The resilience score (0-100; None without experiments), its formula and its sum."""

    value: float | None
    formula: str
    worked: str  # the formula with these experiments' figures
    experiments: int
    contributions: float


class Trends(Frozen):
    """Everything trends show for some workspaces at one time."""

    now: datetime
    since: datetime
    window_days: int
    half_life_days: int
    stale_days: int
    days: list[Day]
    outcomes: list[str]  # those in the chart, best first
    totals: dict[str, int]
    experiments: list[ExperimentTrend]  # most recently run first, never run last
    flips: list[Flip]
    stale: list[ExperimentTrend]  # longest unrun first, never run first of all
    score: Score


def by_day(rows: Iterable[DayCount], now: datetime, days: int = WINDOW_DAYS) -> list[Day]:
    """The window's UTC days, oldest first, each with its runs by outcome (days without runs
    too); rows outside the window are left out."""
    first = window_start(now, days).date()
    counts: dict[date, dict[str, int]] = {first + timedelta(days=n): {} for n in range(days)}
    for row in rows:
        if row.day in counts and row.count > 0:
            day = counts[row.day]
            day[row.outcome] = day.get(row.outcome, 0) + row.count
    return [Day(day=d, counts=c, total=sum(c.values())) for d, c in counts.items()]


def flip_of(figures: ExperimentFigures, since: datetime) -> Flip | None:
    """The experiment's flip from passing to failing, if its latest run with a verdict (in
    the window) failed and the one before passed."""
    latest = figures.latest_verdicts[:2]
    if len(latest) < 2 or latest[0].at < since:
        return None
    if verdict(latest[0].outcome) == "failed" and verdict(latest[1].outcome) == "passed":
        return Flip(id=figures.id, title=figures.title, org=figures.org,
                    workspace=figures.workspace, passed=latest[1], failed=latest[0])
    return None


def experiment_trend(figures: ExperimentFigures, now: datetime,
                     stale_days: int = STALE_DAYS) -> ExperimentTrend:
    """One experiment's pass rate, freshness and contribution to the score."""
    rate = pass_rate(figures.passed, figures.failed)
    if rate is not None:
        counted = rate
    else:  # no verdict in the window: its last run's, a stopped run's being no pass
        counted = 1.0 if figures.last_run_outcome in PASSED else 0.0
    weight = freshness(figures.last_run_at, now)
    days = None if figures.last_run_at is None else age_days(figures.last_run_at, now)
    return ExperimentTrend(
        id=figures.id, title=figures.title, org=figures.org, workspace=figures.workspace,
        runs=figures.passed + figures.failed + figures.stopped, passed=figures.passed,
        failed=figures.failed, pass_rate=rate, last_run_at=figures.last_run_at,
        last_run_outcome=figures.last_run_outcome, last_execution_id=figures.last_execution_id,
        days_since_run=days, freshness=weight, rate_counted=counted,
        contribution=weight * counted, stale=days is None or days > stale_days)


def score(experiments: list[ExperimentTrend]) -> Score:
    """The resilience score of these experiments (see FORMULA), with the sum worked out."""
    if not experiments:
        return Score(value=None, formula=FORMULA, worked="no experiments: no score",
                     experiments=0, contributions=0.0)
    total = sum(e.contribution for e in experiments)
    value = 100 * total / len(experiments)
    terms = " + ".join(f"{e.contribution:.2f}" for e in experiments[:12])
    if len(experiments) > 12:
        rest = sum(e.contribution for e in experiments[12:])
        terms += f" + {rest:.2f} (the other {len(experiments) - 12})"
    worked = f"100 × ({terms}) ÷ {len(experiments)} = {value:.0f}"
    return Score(value=value, formula=FORMULA, worked=worked, experiments=len(experiments),
                 contributions=total)


def gather(day_counts: Iterable[DayCount], experiments: Iterable[ExperimentFigures],
           now: datetime) -> Trends:
    """The trends of some workspaces from their figures, at `now`."""
    since = window_start(now)
    days = by_day(day_counts, now)
    totals: dict[str, int] = {}
    for day in days:
        for outcome, count in day.counts.items():
            totals[outcome] = totals.get(outcome, 0) + count
    outcomes = [o for o in CHART_ORDER if o in totals] + sorted(
        o for o in totals if o not in CHART_ORDER)
    figures = list(experiments)
    trends = [experiment_trend(f, now) for f in figures]
    # Most recently run first (the heaviest in the score), never run last; then by title.
    trends.sort(key=lambda e: (e.days_since_run is None, e.days_since_run or 0, e.title, e.id))
    flips = [f for f in (flip_of(each, since) for each in figures) if f is not None]
    flips.sort(key=lambda f: f.failed.at, reverse=True)
    stale = sorted((e for e in trends if e.stale),
                   key=lambda e: (e.days_since_run is not None, -(e.days_since_run or 0),
                                  e.title))
    return Trends(now=now, since=since, window_days=WINDOW_DAYS, half_life_days=HALF_LIFE_DAYS,
                  stale_days=STALE_DAYS, days=days, outcomes=outcomes, totals=totals,
                  experiments=trends, flips=flips, stale=stale, score=score(trends))
