"""Fixed-window counts of failed (or costly) attempts, in the cache, so shared by every process
on Redis."""

from __future__ import annotations

from chaoshub.core.cache import cache
from chaoshub.core.errors import RateLimited


def failures_key(service: str, what: str, who: str) -> str:
    """The cache key counting the failures of `who` at `what`."""
    return cache().key(service, "failures", what, who)


def attempts(service: str, what: str, who: str) -> int:
    """How many failures `who` has had at `what` in the current window."""
    raw = cache().backend.get(failures_key(service, what, who))
    return int(raw) if raw is not None else 0


def refuse_when_over(service: str, what: str, who: str, limit: int, window: int) -> None:
    """RateLimited (429) once `who` has failed `limit` times within `window` seconds."""
    refuse_at(attempts(service, what, who), limit, window)


def refuse_at(count: object, limit: int, window: int) -> None:
    """RateLimited (429) when `count` (failures read from `failures_key`) reached `limit`."""
    if isinstance(count, int) and count >= limit:
        raise RateLimited(f"too many failed attempts; try again in {window} seconds",
                          retry_after=window)


def take_attempt(service: str, what: str, who: str, limit: int, window: int) -> None:
    """Count an attempt before it is checked, RateLimited (429) when it is past `limit`
    within `window` seconds; `clear` it when it succeeds. Attempts sent at once each take
    their own place in the count, so a burst gets no more than `limit` checked."""
    count = cache().hit(failures_key(service, what, who), window)
    if isinstance(count, int) and count > limit:
        raise RateLimited(f"too many failed attempts; try again in {window} seconds",
                          retry_after=window)


def record_failure(service: str, what: str, who: str, window: int) -> None:
    """Count one more failure; the count starts over `window` seconds after the first."""
    cache().hit(failures_key(service, what, who), window)


def clear(service: str, what: str, who: str) -> None:
    """Forget the failures of `who` (after a success)."""
    cache().forget(failures_key(service, what, who))
