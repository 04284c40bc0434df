"""The trends' rules at a fixed time: UTC day buckets, pass rates, flips, staleness and the
resilience score's decay (chaoshub/experiment/trends.py, no database)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from chaoshub.experiment import trends
from chaoshub.experiment.journals import OUTCOMES
from chaoshub.experiment.trends import DayCount, ExperimentFigures, RunRef

NOW = datetime(2026, 3, 15, 1, 30, tzinfo=UTC)


def figures(name: str = "e", **fields) -> ExperimentFigures:
    return ExperimentFigures(id=name, title=name.title(), org="team", workspace="prod", **fields)


def ref(outcome: str, days_ago: float, name: str | None = None) -> RunRef:
    return RunRef(execution_id=name or f"{outcome}-{days_ago}", outcome=outcome,
                  at=NOW - timedelta(days=days_ago))


def test_every_outcome_has_one_verdict():
    assert {trends.verdict(o) for o in OUTCOMES} == {"passed", "failed", "stopped"}
    assert set(trends.VERDICTS) == set(OUTCOMES)
    assert trends.verdict("deviated") == trends.verdict("baseline-not-met") == "failed"
    assert trends.verdict("probe-error") == "failed"
    assert trends.verdict("interrupted") == trends.verdict("aborted") == "stopped"
    assert trends.verdict(None) is None and trends.verdict("odd") is None


def test_the_window_is_thirty_utc_days_ending_today():
    assert trends.window_start(NOW) == datetime(2026, 2, 14, tzinfo=UTC)
    # 01:30 UTC is still the 14th at UTC-5: the day is UTC's, whatever zone `now` is given in.
    same = NOW.astimezone(timezone(timedelta(hours=-5)))
    assert trends.window_start(same) == trends.window_start(NOW)


def test_days_are_utc_days_oldest_first_with_empty_ones_and_nothing_outside():
    rows = [DayCount(day=date(2026, 3, 15), outcome="passed", count=2),
            DayCount(day=date(2026, 3, 15), outcome="deviated", count=1),
            DayCount(day=date(2026, 3, 15), outcome="passed", count=1),  # added up
            DayCount(day=date(2026, 2, 14), outcome="aborted", count=4),
            DayCount(day=date(2026, 2, 13), outcome="passed", count=9),  # before the window
            DayCount(day=date(2026, 3, 16), outcome="passed", count=9)]  # after it
    days = trends.by_day(rows, NOW)
    assert len(days) == 30
    assert days[0].day == date(2026, 2, 14) and days[-1].day == date(2026, 3, 15)
    assert days[0].counts == {"aborted": 4}
    assert days[-1].counts == {"passed": 3, "deviated": 1} and days[-1].total == 4
    assert all(d.total == 0 for d in days[1:-1])


@pytest.mark.parametrize(("passed", "failed", "rate"), [
    (3, 1, 0.75), (0, 2, 0.0), (5, 0, 1.0), (0, 0, None)])
def test_the_pass_rate_is_passed_among_runs_with_a_verdict(passed, failed, rate):
    assert trends.pass_rate(passed, failed) == rate


def test_stopped_runs_count_in_no_pass_rate():
    trend = trends.experiment_trend(figures(passed=1, failed=1, stopped=5,
                                            last_run_at=NOW, last_run_outcome="aborted"), NOW)
    assert trend.pass_rate == 0.5 and trend.runs == 7


def test_freshness_halves_every_fourteen_days_and_is_nothing_without_a_run():
    assert trends.freshness(NOW, NOW) == 1.0
    assert trends.freshness(NOW - timedelta(days=14), NOW) == pytest.approx(0.5)
    assert trends.freshness(NOW - timedelta(days=28), NOW) == pytest.approx(0.25)
    assert trends.freshness(NOW + timedelta(hours=1), NOW) == 1.0  # a clock ahead: just run
    assert trends.freshness(None, NOW) == 0.0


def test_the_score_is_the_mean_of_freshness_times_pass_rate_over_every_experiment():
    fresh = figures("fresh", passed=3, failed=1, last_run_at=NOW, last_run_outcome="passed")
    older = figures("older", passed=2, failed=0, last_run_at=NOW - timedelta(days=14),
                    last_run_outcome="passed")
    never = figures("never")
    found = trends.gather([], [fresh, older, never], NOW)
    # (1 × 0.75 + 0.5 × 1 + 0 × 0) / 3
    assert found.score.value == pytest.approx(100 * 1.25 / 3)
    assert found.score.experiments == 3
    assert found.score.worked == "100 × (0.75 + 0.50 + 0.00) ÷ 3 = 42"
    assert "0.5 ^ (days since the experiment's last run ÷ 14)" in found.score.formula
    assert [e.id for e in found.experiments] == ["fresh", "older", "never"]
    assert [round(e.contribution, 2) for e in found.experiments] == [0.75, 0.5, 0.0]


def test_the_score_decays_as_experiments_go_unrun():
    def score_at(now: datetime) -> float:
        ran = figures(passed=4, last_run_at=NOW, last_run_outcome="passed")
        if now - NOW > timedelta(days=trends.WINDOW_DAYS):
            ran = figures(last_run_at=NOW, last_run_outcome="passed")  # out of the window
        return trends.gather([], [ran], now).score.value

    assert score_at(NOW) == 100.0
    assert score_at(NOW + timedelta(days=14)) == pytest.approx(50.0)
    assert score_at(NOW + timedelta(days=42)) == pytest.approx(12.5)  # its last run passed


def test_an_experiment_with_no_verdict_in_the_window_counts_its_last_runs():
    passed_long_ago = trends.experiment_trend(
        figures(last_run_at=NOW - timedelta(days=40), last_run_outcome="passed"), NOW)
    assert passed_long_ago.pass_rate is None and passed_long_ago.rate_counted == 1.0
    assert passed_long_ago.contribution == pytest.approx(0.5 ** (40 / 14))
    stopped = trends.experiment_trend(
        figures(stopped=1, last_run_at=NOW, last_run_outcome="interrupted"), NOW)
    assert stopped.rate_counted == 0.0 and stopped.contribution == 0.0


def test_no_experiment_no_score():
    found = trends.gather([], [], NOW)
    assert found.score.value is None and found.score.experiments == 0
    assert found.days and found.flips == [] and found.stale == []


def test_stale_experiments_are_those_unrun_for_thirty_days_never_run_first():
    found = trends.gather([], [
        figures("recent", last_run_at=NOW - timedelta(days=29), last_run_outcome="passed"),
        figures("old", last_run_at=NOW - timedelta(days=31), last_run_outcome="passed"),
        figures("older", last_run_at=NOW - timedelta(days=90), last_run_outcome="deviated"),
        figures("never")], NOW)
    assert [e.id for e in found.stale] == ["never", "older", "old"]
    assert round(found.stale[1].days_since_run) == 90


def test_a_flip_is_a_failed_latest_verdict_right_after_a_pass_in_the_window():
    since = trends.window_start(NOW)
    flipped = figures("flipped", latest_verdicts=[ref("deviated", 1), ref("passed", 2)])
    assert trends.flip_of(flipped, since).failed.outcome == "deviated"
    assert trends.flip_of(flipped, since).passed.execution_id == "passed-2"
    for latest in ([ref("passed", 1), ref("deviated", 2)],  # recovered
                   [ref("deviated", 1), ref("probe-error", 2)],  # failing already
                   [ref("deviated", 1)],  # nothing before it
                   [ref("baseline-not-met", 31), ref("passed", 32)]):  # before the window
        assert trends.flip_of(figures(latest_verdicts=latest), since) is None, latest
    found = trends.gather([], [
        figures("a", latest_verdicts=[ref("probe-error", 3), ref("passed", 4)]),
        figures("b", latest_verdicts=[ref("baseline-not-met", 1), ref("passed", 5)])], NOW)
    assert [f.id for f in found.flips] == ["b", "a"]  # newest flip first


def test_the_chart_outcomes_run_from_best_to_worst_with_totals():
    rows = [DayCount(day=date(2026, 3, 15), outcome=o, count=1)
            for o in ("interrupted", "passed", "deviated")]
    found = trends.gather(rows, [], NOW)
    assert found.outcomes == ["passed", "deviated", "interrupted"]
    assert found.totals == {"passed": 1, "deviated": 1, "interrupted": 1}


def test_the_runs_chart_stacks_each_days_outcomes_best_at_the_bottom():
    from chaoshub.experiment import chart

    rows = [DayCount(day=date(2026, 3, 15), outcome="passed", count=2),
            DayCount(day=date(2026, 3, 15), outcome="deviated", count=2),
            DayCount(day=date(2026, 3, 14), outcome="passed", count=1)]
    found = trends.gather(rows, [], NOW)
    drawn = chart.runs_by_day_chart(found.days, found.outcomes, {"passed": "Passed"})
    assert len(drawn["columns"]) == 30 and drawn["tallest"] == 4
    today, yesterday = drawn["columns"][-1], drawn["columns"][-2]
    assert [s["outcome"] for s in today["segments"]] == ["passed", "deviated"]
    passed, deviated = today["segments"]
    full = chart.DAY_BASELINE - chart.PLOT_TOP
    assert passed["height"] == deviated["height"] == full / 2
    assert passed["y"] + passed["height"] == chart.DAY_BASELINE  # stands on the axis
    assert deviated["y"] + deviated["height"] == passed["y"]  # on top of it
    assert yesterday["segments"][0]["height"] == full / 4
    assert today["x"] > yesterday["x"] and drawn["columns"][0]["segments"] == []
    assert drawn["columns"][0]["title"] == "2026-02-14: no runs"
    assert today["title"] == "2026-03-15: 4 runs (Passed: 2, deviated: 2)"
    assert "from 2026-02-14 to 2026-03-15 (UTC)" in drawn["label"]
    assert "In all: Passed: 3, deviated: 2." in drawn["label"]
