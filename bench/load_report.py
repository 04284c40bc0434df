"""The load bench's figures: each scenario beside its ceiling, then the targets with PASS/MISS."""

from __future__ import annotations

import os
from dataclasses import dataclass

from listing_query import QueryTiming
from wrk_runner import LoadResult

READ_SHARE_TARGET = 0.5
PUBLISH_P99_TARGET_MS = 50.0
LISTING_GROWTH_TARGET = 1.5


@dataclass(frozen=True)
class Measured:
    """A scenario's figures and those of the ceiling (bare Flask) measured just before it."""

    label: str
    result: LoadResult
    ceiling: LoadResult

    @property
    def share(self) -> float:
        """The scenario's req/s as a share of the ceiling's."""
        return self.result.rps / self.ceiling.rps

    @property
    def p50_times(self) -> float:
        """How many times the ceiling's median latency the scenario's is."""
        return self.result.p50_ms / self.ceiling.p50_ms

    @property
    def p99_times(self) -> float:
        """How many times the ceiling's p99 latency the scenario's is."""
        return self.result.p99_ms / self.ceiling.p99_ms


def short(count: int) -> str:
    """10000 -> '10k', 1000000 -> '1M'."""
    return f"{count // 1_000_000}M" if count >= 1_000_000 else f"{count // 1000}k"


def print_report(results: dict[str, Measured], queries: dict[int, QueryTiming],
                 sizes: tuple[int, int], setup: str) -> None:
    """Print every scenario beside its ceiling, the listing query's timings, and the targets."""
    print()
    print(f"{setup}; load average now {os.getloadavg()[0]:.1f} (other work on the machine "
          "skews every figure, which is why each scenario has a ceiling measured just before it)")
    print(f"{'':<40}{'--------- scenario ---------':>37}  {'------ ceiling ------':>25}"
          f"  {'--- ratio to ceiling ---':>24}")
    print(f"{'scenario':<40}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}   "
          f"{'req/s':>9}{'p50 ms':>8}{'p99 ms':>8}   {'req/s':>7}{'p50':>8}{'p99':>8}")
    for measured in results.values():
        r, c = measured.result, measured.ceiling
        print(f"{measured.label:<40}{r.rps:9.1f}{r.p50_ms:9.2f}{r.p99_ms:9.2f}{r.errors:8}   "
              f"{c.rps:9.1f}{c.p50_ms:8.2f}{c.p99_ms:8.2f}   {measured.share:7.0%}"
              f"{measured.p50_times:7.1f}x{measured.p99_times:7.1f}x")
    print()
    print("listing query in process (store.latest_executions: the 50 newest, one client)")
    for size, query in queries.items():
        print(f"  {short(size):>4} executions: median {query.median_ms:6.2f} ms, p99 "
              f"{query.p99_ms:6.2f} ms, best {query.best_ms:5.2f} ms; in PostgreSQL "
              f"{query.server_ms:.2f} ms, {query.buffers} pages: {query.plan}")
    print()
    _print_targets(results, queries, sizes)
    if any(m.result.errors or m.ceiling.errors for m in results.values()):
        print("WARNING: some requests failed (non-2xx/3xx answers or socket errors): see errors")


def _print_targets(results: dict[str, Measured], queries: dict[int, QueryTiming],
                   sizes: tuple[int, int]) -> None:
    print("targets")
    read = results["read"]
    _target(f"read experiment (warm cache) >= {READ_SHARE_TARGET:.0%} of ceiling req/s",
            f"{read.share:.0%}", read.share >= READ_SHARE_TARGET)
    publish = results["publish journal"].result
    _target(f"publish 20 KB journal p99 < {PUBLISH_P99_TARGET_MS:.0f} ms (its clients)",
            f"{publish.p99_ms:.1f} ms", publish.p99_ms < PUBLISH_P99_TARGET_MS)
    small, large = sizes
    growth = f"list executions at {short(large)} <= {LISTING_GROWTH_TARGET}x at {short(small)}"
    for suffix, how in (("", "HTTP, warm cache"), (" uncached", "HTTP, query")):
        at_small, at_large = results[f"list {small}{suffix}"], results[f"list {large}{suffix}"]
        # Each compared through its own ceiling, so that the machine's load between the two
        # runs (the seeding takes minutes) does not pass for the database's growth.
        slower = at_small.share / at_large.share
        p50 = at_large.p50_times / at_small.p50_times
        _target(f"{growth} ({how})", f"{slower:.2f}x req/s, {p50:.2f}x p50",
                max(slower, p50) <= LISTING_GROWTH_TARGET)
    # The best time of many: what the query costs when nothing else takes the CPU from it.
    best = queries[large].best_ms / queries[small].best_ms
    pages = queries[large].buffers / queries[small].buffers
    _target(f"{growth} (query in process)", f"{best:.2f}x best, {pages:.2f}x pages",
            best <= LISTING_GROWTH_TARGET)
    if large < 1_000_000:
        print("  (--quick seeds 100k, not 1M: run without --quick for the target as written)")


def _target(what: str, figure: str, met: bool) -> None:
    print(f"  {what:<66} {figure:>24}  {'PASS' if met else 'MISS'}")
