"""A minute of the soak (bench/soak.py runs ten): mixed reads, journal publishes and hub runs at
32 clients against a gunicorn hub on PostgreSQL and Redis with a worker: no error, memory flat,
p99 stable."""

from __future__ import annotations

import pytest

from bench.soak import soak

pytestmark = pytest.mark.faults


def test_a_minute_of_mixed_load_costs_no_error_no_memory_and_no_latency(tmp_path):
    figures = soak(tmp_path, seconds=60, clients=32)
    print("\n" + "\n".join(figures.lines()))
    assert len(figures.report) > 1000  # a real load, not a trickle
    assert figures.runs_started >= 3  # hub runs were part of it
    assert figures.errors == 0
    assert figures.rss_growth < 0.10
    assert figures.p99_ratio <= 1.5
