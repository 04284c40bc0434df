"""What the bench scripts share: timing calls and printing their figures."""

from __future__ import annotations

import statistics
import time


def timed(fn, n: int) -> list[float]:
    """Milliseconds each of `n` calls of `fn` took."""
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def median_p99(samples: list[float]) -> tuple[float, float]:
    """The median and the 99th percentile of `samples`."""
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def report(name: str, samples: list[float]) -> None:
    """Print the median and p99 of `samples` (milliseconds)."""
    median, p99 = median_p99(samples)
    print(f"{name:<52} median {median:7.3f} ms   p99 {p99:7.3f} ms   (n={len(samples)})")
