"""The load bench's figures: each scenario beside its ceiling, then the targets with PASS/MISS."""

from __future__ import annotations

import os
from dataclasses import dataclass

from listing_query import QueryTiming
from wrk_runner import LoadResult

READ_SHARE_TARGET = 0.5
PAIRS_TARGET = 210.0
PAIR_P99_TARGET_MS = 50.0
RSS_IDLE_TARGET_MB = 150.0
RSS_LOADED_TARGET_MB = 250.0
LISTING_GROWTH_TARGET = 1.5


@dataclass(frozen=True)
class Measured:
    """A scenario's figures and those of the ceiling (bare Flask) measured just before it, with
    the CPU time each server's processes spent per request."""

    label: str
    result: LoadResult
    ceiling: LoadResult
    cpu_ms: float
    ceiling_cpu_ms: float

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


@dataclass(frozen=True)
class Memory:
    """The resident memory of each of the hub's workers, in MB: idle, and after all the load."""

    idle_mb: list[float]
    loaded_mb: list[float]


def short(count: int) -> str:
    """10000 -> '10k', 1000000 -> '1M'."""
    return f"{count // 1_000_000}M" if count >= 1_000_000 else f"{count // 1000}k"


def print_report(title: str, results: dict[str, Measured], queries: dict[int, QueryTiming],
                 memory: Memory, setup: str) -> None:
    """Print every scenario beside its ceiling, the listing query's timings, the workers'
    memory, and the targets."""
    print()
    print(f"== {title}")
    print(f"{setup}; load average now {os.getloadavg()[0]:.1f} (other work on the machine "
          "skews every figure, which is why each scenario has a ceiling measured just before it)")
    print(f"{'':<40}{'-------------- scenario --------------':>47}  "
          f"{'--------- ceiling ---------':>33}  {'--- ratio to ceiling ---':>24}")
    print(f"{'scenario':<40}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'cpu ms':>12}   "
          f"{'req/s':>9}{'p50 ms':>8}{'p99 ms':>8}{'cpu ms':>8}   {'req/s':>7}{'p50':>8}{'p99':>8}")
    for measured in results.values():
        r, c = measured.result, measured.ceiling
        print(f"{measured.label:<40}{r.rps:9.1f}{r.p50_ms:9.2f}{r.p99_ms:9.2f}{r.errors:8}"
              f"{measured.cpu_ms:12.2f}   {c.rps:9.1f}{c.p50_ms:8.2f}{c.p99_ms:8.2f}"
              f"{measured.ceiling_cpu_ms:8.2f}   {measured.share:7.0%}"
              f"{measured.p50_times:7.1f}x{measured.p99_times:7.1f}x")
    print("cpu ms: CPU time (user + system) of the server's gunicorn master and workers per "
          "request wrk completed; the database's and Redis's own processes are not counted")
    pair = results["publish pair"].result
    print(f"publish pair: {pair.rps / 2:.1f} pairs/s (a repeat publish of the experiment and a "
          "new journal each)")
    print()
    print("listing query in process (store.executions_after: the first page of 50, one client)")
    for size, query in queries.items():
        where = ("" if query.buffers is None else
                 f"; in PostgreSQL {query.server_ms:.2f} ms, {query.buffers} pages")
        print(f"  {short(size):>4} executions: median {query.median_ms:6.2f} ms, p99 "
              f"{query.p99_ms:6.2f} ms, best {query.best_ms:5.2f} ms{where}: {query.plan}")
    print()
    print(f"hub workers' memory (RSS): idle {_sizes(memory.idle_mb)}, "
          f"after all the load {_sizes(memory.loaded_mb)}")
    print()
    _print_targets(results, queries, memory)
    if any(m.result.errors or m.ceiling.errors for m in results.values()):
        print("WARNING: some requests failed (non-2xx/3xx answers or socket errors): see errors")


def _print_targets(results: dict[str, Measured], queries: dict[int, QueryTiming],
                   memory: Memory) -> None:
    print("targets")
    read = results["read"]
    _target(f"read experiment >= {READ_SHARE_TARGET:.0%} of ceiling req/s",
            f"{read.share:.0%}", read.share >= READ_SHARE_TARGET)
    pair = results["publish pair"].result
    _target(f"publish pair >= {PAIRS_TARGET:.0f} pairs/s", f"{pair.rps / 2:.1f} pairs/s",
            pair.rps / 2 >= PAIRS_TARGET)
    _target(f"publish pair p99 < {PAIR_P99_TARGET_MS:.0f} ms (its requests, either kind)",
            f"{pair.p99_ms:.1f} ms", pair.p99_ms < PAIR_P99_TARGET_MS)
    # NaN when no worker was found: a MISS, not a crash.
    idle = max(memory.idle_mb, default=float("nan"))
    loaded = max(memory.loaded_mb, default=float("nan"))
    _target(f"RSS per worker idle <= {RSS_IDLE_TARGET_MB:.0f} MB", f"{idle:.0f} MB (largest)",
            idle <= RSS_IDLE_TARGET_MB)
    _target(f"RSS per worker after load <= {RSS_LOADED_TARGET_MB:.0f} MB",
            f"{loaded:.0f} MB (largest)", loaded <= RSS_LOADED_TARGET_MB)
    sizes = list(queries)
    if len(sizes) < 2:
        print(f"  (listing growth: only {short(sizes[0])} executions seeded in this pass, "
              "nothing to compare)")
        return
    small, large = sizes[0], sizes[-1]
    growth = f"list executions at {short(large)} <= {LISTING_GROWTH_TARGET}x at {short(small)}"
    at_small, at_large = results[f"list {small}"], results[f"list {large}"]
    # Each compared through its own ceiling, so that the machine's load between the two runs
    # (the seeding takes minutes) does not pass for the database's growth.
    slower = at_small.share / at_large.share
    p50 = at_large.p50_times / at_small.p50_times
    _target(f"{growth} (HTTP)", f"{slower:.2f}x req/s, {p50:.2f}x p50",
            max(slower, p50) <= LISTING_GROWTH_TARGET)
    # The best time of many: what the query costs when nothing else takes the CPU from it.
    best = queries[large].best_ms / queries[small].best_ms
    pages = ("" if queries[large].buffers is None else
             f", {queries[large].buffers / queries[small].buffers:.2f}x pages")
    _target(f"{growth} (query in process)", f"{best:.2f}x best{pages}",
            best <= LISTING_GROWTH_TARGET)
    if large < 1_000_000:
        print("  (--quick seeds 100k, not 1M: run without --quick for the target as written)")


def _sizes(megabytes: list[float]) -> str:
    return ", ".join(f"{mb:.0f} MB" for mb in megabytes) or "(no workers found)"


def _target(what: str, figure: str, met: bool) -> None:
    print(f"  {what:<66} {figure:>24}  {'PASS' if met else 'MISS'}")
