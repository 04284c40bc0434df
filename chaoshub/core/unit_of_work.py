"""One write's unit of work: its transaction, what goes into it last, and what follows its commit.

A write opens a unit around its transaction and adds to it, as it goes, what the change means
besides its own rows: entries written into the same transaction just before the commit (a
service's feed and audit log), domain events (into the emitter's outbox, in the transaction),
the cache keys the change makes stale, and steps that must wait for the commit (a call to another
service). The unit applies them once, in that order; a write that raises leaves none behind.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Self

from sqlalchemy.orm import Session

from chaoshub.core import events
from chaoshub.core.cache import cache
from chaoshub.core.db import transaction


class UnitOfWork:
    """What one write adds to its transaction and does after its commit, on behalf of `actor`."""

    # The emitter's outbox that `emit` writes into (each service's subclass names its own).
    outbox: events.Outbox | None = None

    def __init__(self, session: Session, actor: str | None = None):
        self.session = session
        self.actor = actor
        self._last_writes: list[Callable[[Session], Any]] = []
        self._stale_keys: list[str] = []
        self._after_commit: list[Callable[[], Any]] = []

    @classmethod
    @contextmanager
    def open(cls, service: str, *args: Any, **kwargs: Any) -> Iterator[Self]:
        """A unit in a new transaction on `service`'s database, applied around its commit."""
        with transaction(service) as session:
            work = cls(session, *args, **kwargs)
            yield work
            work._write_last()
        work._committed()

    @classmethod
    @contextmanager
    def joining(cls, session: Session, *args: Any, **kwargs: Any) -> Iterator[Self]:
        """A unit in a transaction someone else commits (an event's delivery)."""
        work = cls(session, *args, **kwargs)
        yield work
        work._write_last()
        events.after_commit(session, work._committed)

    def write_last(self, write: Callable[[Session], Any]) -> None:
        """Run `write` in this unit's transaction once the change is made, before the commit."""
        self._last_writes.append(write)

    def emit(self, type: str, subject: tuple[str, str], payload: dict[str, Any]) -> events.Event:
        """Add a domain event of the actor's to the outbox, in this unit's transaction."""
        if self.outbox is None:
            raise TypeError(f"{self.__class__.__name__} has no outbox to emit into")
        return self.outbox.emit(self.session, type, self.actor, subject, payload)

    def forget(self, *keys: str) -> None:
        """Drop these cache keys once the change is committed (a cached miss included)."""
        self._stale_keys.extend(keys)

    def after_commit(self, step: Callable[[], Any]) -> None:
        """Run `step` once the change is committed and the stale keys forgotten."""
        self._after_commit.append(step)

    def _write_last(self) -> None:
        for write in self._last_writes:
            write(self.session)

    def _committed(self) -> None:
        if self._stale_keys:
            cache().forget(*self._stale_keys)
        for step in self._after_commit:
            step()
