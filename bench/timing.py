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


def report(name: str, samples: list[float]) -> None:
    """Print the median and p99 of `samples` (milliseconds)."""
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    print(f"{name:<52} median {statistics.median(ordered):7.3f} ms   p99 {p99:7.3f} ms"
          f"   (n={len(ordered)})")
