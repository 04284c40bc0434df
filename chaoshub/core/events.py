"""Domain events: what one service tells the services above it, without calling up to them.

An emitter writes each event into its own `outbox_events` table in the same transaction as the
change it reports (`Outbox.emit`). A subscriber pulls the events it has not acknowledged from
the emitter's public functions `pending_events` and `ack_events` (over /internal/rpc in split
mode, so calls still go only downward), handles each in its own transaction together with a row
in its `handled_events` table (the event id is the key: a redelivered event is skipped), then
acknowledges them. The emitter keeps an event until the subscriber acknowledges it: nothing is
lost while a subscriber is down.

Delivery happens right after an emitting commit for the subscribers hosted in the same process,
on start-up, and every EVENTS_POLL_SECONDS in a background thread, backing off on failure.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
import uuid
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Flask, current_app, has_app_context
from sqlalchemy import JSON, Integer, String, event, exists, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column

from chaoshub.core.db import transaction
from chaoshub.core.errors import Forbidden
from chaoshub.core.models import UTCDateTime, utcnow
from chaoshub.core.process_thread import ProcessThread
from chaoshub.core.schemas import Frozen

log = logging.getLogger(__name__)

EXTENSION = "chaoshub.events"
BATCH = 100  # events per pending_events answer
MAX_BACKOFF = 60.0  # seconds between two attempts of a failing subscription, at most
_AFTER_COMMIT = "chaoshub.after_commit"
_WOKEN = "chaoshub.events_woken"
_delivering = threading.local()


# The shape ---------------------------------------------------------------------------------


class Subject(Frozen):
    """What an event is about: a kind ("account", "org", "workspace"...) and its id."""

    kind: str
    id: str


class Event(Frozen):
    """A domain event, the same for every subscriber (later: notifications and webhooks too).

    `version` is the version of the payload's shape for this type: a change that would break a
    subscriber comes as a new version, never as a silent change of the old one.
    """

    id: str  # a UUID, unique across services
    type: str  # "<subject kind>.<what happened>", e.g. "workspace.deleted"
    version: int = 1
    occurred_at: datetime
    actor: str | None  # the account that made it happen, if any
    subject: Subject
    payload: dict[str, Any]


# Tables: each service maps them on its own DeclarativeBase, named after itself (two services
# may share a database: their tables must not share a name) ---------------------------------


class OutboxEventColumns:
    """An emitter's `<service>_outbox_events`: its events, kept until acknowledged."""

    # The order events are offered in (a UUID has none).
    position: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(36), unique=True)
    type: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(Integer)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str | None] = mapped_column(String(36), nullable=True)
    subject_kind: Mapped[str] = mapped_column(String(40))
    subject_id: Mapped[str] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)

    def as_event(self) -> Event:
        """The event this row holds."""
        return Event(id=self.id, type=self.type, version=self.version,
                     occurred_at=self.occurred_at, actor=self.actor,
                     subject=Subject(kind=self.subject_kind, id=self.subject_id),
                     payload=self.payload)


class OutboxAckColumns:
    """An emitter's `<service>_outbox_acks`: which subscriber has handled which event."""

    event_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    subscriber: Mapped[str] = mapped_column(String(40), primary_key=True)
    acked_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class HandledEventColumns:
    """A subscriber's `<service>_handled_events`: one row per event applied, in the same
    transaction as its effect."""

    event_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    handled_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


# Emitting ----------------------------------------------------------------------------------


class Outbox:
    """An emitter's outbox: its two tables, the events it adds, and what subscribers ask of it."""

    def __init__(self, service: str, events: type, acks: type, subscribers: tuple[str, ...]):
        self.service = service
        self.events = events
        self.acks = acks
        self.subscribers = frozenset(subscribers)

    def emit(self, session: Session, type: str, actor: str | None,
             subject: tuple[str, str], payload: dict[str, Any], version: int = 1) -> Event:
        """Add an event inside the caller's transaction; local delivery follows its commit."""
        kind, subject_id = subject
        found = Event(id=str(uuid.uuid4()), type=type, version=version, occurred_at=utcnow(),
                      actor=actor, subject=Subject(kind=kind, id=subject_id), payload=payload)
        session.add(self.events(id=found.id, type=type, version=version,
                                occurred_at=found.occurred_at, actor=actor, subject_kind=kind,
                                subject_id=subject_id, payload=payload))
        woken = session.info.setdefault(_WOKEN, set())
        if self.service not in woken:
            woken.add(self.service)
            after_commit(session, functools.partial(wake, self.service))
        return found

    def pending(self, subscriber: str, types: list[str], limit: int = BATCH) -> list[Event]:
        """The events of `types` that `subscriber` has not acknowledged, oldest first."""
        self._check(subscriber)
        acked = select(self.acks.event_id).where(self.acks.event_id == self.events.id,
                                                 self.acks.subscriber == subscriber)
        query = (select(self.events).where(self.events.type.in_(types), ~exists(acked))
                 .order_by(self.events.position).limit(max(1, min(limit, BATCH))))
        with transaction(self.service) as session:
            return [row.as_event() for row in session.scalars(query)]

    def ack(self, subscriber: str, ids: list[str]) -> None:
        """Record that `subscriber` has handled these events: they are not offered again."""
        self._check(subscriber)
        with transaction(self.service) as session:
            known = session.scalars(select(self.events.id).where(self.events.id.in_(ids)))
            rows = [{"event_id": i, "subscriber": subscriber, "acked_at": utcnow()}
                    for i in known]
            if rows:
                # Two deliveries may acknowledge the same event: the second changes nothing.
                insert_new(session, self.acks, rows)

    def _check(self, subscriber: str) -> None:
        if subscriber not in self.subscribers:
            raise Forbidden(f"{subscriber!r} does not subscribe to {self.service}'s events")


def after_commit(session: Session, callback: Callable[[], Any]) -> None:
    """Run `callback` once the session's outermost transaction commits (never on rollback)."""
    session.info.setdefault(_AFTER_COMMIT, []).append(callback)
    if not event.contains(session, "after_commit", _run_after_commit):
        event.listen(session, "after_commit", _run_after_commit)


def _run_after_commit(session: Session) -> None:
    # Releasing a savepoint fires after_commit too: only the real commit counts.
    if session.in_nested_transaction():
        return
    session.info.pop(_WOKEN, None)
    for callback in session.info.pop(_AFTER_COMMIT, []):
        try:
            callback()
        except Exception:  # the commit stands: what follows it must not undo it
            log.exception("a step after a commit failed")


def insert_new(session: Session, model: type, rows: list[dict[str, Any]]) -> int:
    """Insert the rows whose keys are not there yet; how many went in (SQLite, PostgreSQL)."""
    # Counted from RETURNING: on PostgreSQL the row count of this statement comes back as -1.
    return len(inserted_keys(session, model, rows))


def inserted_keys(session: Session, model: type, rows: list[dict[str, Any]],
                  key: Any = None) -> list[Any]:
    """Insert, in one statement, the rows whose unique keys are not there yet; the `key`
    column's values (default: the primary key's) of those that went in."""
    dialect = {"sqlite": sqlite, "postgresql": postgresql}[session.get_bind().dialect.name]
    table = model.__table__
    if key is None:
        key = table.primary_key.columns.values()[0]
    # One statement compiled once (and cached), whatever the number of rows: SQLAlchemy sends
    # them as one multi-row INSERT ("insertmanyvalues") and gathers what RETURNING gives.
    session.flush()
    statement = dialect.insert(table).on_conflict_do_nothing().returning(key)
    return list(session.execute(statement, rows).scalars())


# Subscribing -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Subscription:
    """A service's interest in some event types of a service below it, and what it does."""

    subscriber: str
    types: tuple[str, ...]
    handler: Callable[[Session, Event], None]  # runs in the subscriber's transaction
    handled: type  # the subscriber's model of handled_events
    pending: Any  # the emitter's public pending_events(subscriber, types, limit)
    ack: Any  # the emitter's public ack_events(subscriber, ids)

    @property
    def emitter(self) -> str:
        """The service whose events these are."""
        return self.pending.service


class Dispatcher:
    """One app's subscriptions, and the thread that polls for them."""

    def __init__(self, poll_seconds: float):
        self.subscriptions: list[Subscription] = []
        self.poll_seconds = poll_seconds
        self.poller = ProcessThread(
            "chaoshub-events", lambda app_ref, stopped: _poll(app_ref, poll_seconds, stopped))


def subscribe(app: Flask, subscription: Subscription) -> None:
    """Register a subscription of a service this app hosts (from that service's init_app)."""
    if EXTENSION not in app.extensions:
        app.extensions[EXTENSION] = Dispatcher(float(app.config["EVENTS_POLL_SECONDS"]))
        app.before_request(functools.partial(start_polling, app))
    dispatcher = app.extensions[EXTENSION]
    for other in dispatcher.subscriptions:
        # Acknowledgements are per subscriber service: two subscriptions of one service to
        # one emitter must not share a type, or one would acknowledge for the other.
        if (other.subscriber, other.emitter) == (subscription.subscriber, subscription.emitter) \
                and set(other.types) & set(subscription.types):
            raise ValueError(f"{subscription.subscriber} already subscribes to those types")
    dispatcher.subscriptions.append(subscription)


def subscriptions(app: Flask) -> list[Subscription]:
    """The subscriptions of the services this app hosts."""
    dispatcher = app.extensions.get(EXTENSION)
    return list(dispatcher.subscriptions) if dispatcher else []


def deliver(subscription: Subscription) -> int:
    """Fetch, handle and acknowledge what the emitter holds for this subscriber; how many
    events were applied (not counting those handled before). Raises what a handler raises."""
    applied = 0
    while True:
        batch = subscription.pending(subscriber=subscription.subscriber,
                                     types=list(subscription.types), limit=BATCH)
        done: list[str] = []
        try:
            # In order, stopping at the first failure: the rest waits for the retry.
            for found in batch:
                applied += _handle(subscription, found)
                done.append(found.id)
        finally:
            if done:
                subscription.ack(subscriber=subscription.subscriber, ids=done)
        if len(batch) < BATCH:
            return applied


def _handle(subscription: Subscription, found: Event) -> int:
    try:
        with transaction(subscription.subscriber) as session:
            row = {"event_id": found.id, "handled_at": utcnow()}
            if not insert_new(session, subscription.handled, [row]):
                return 0  # handled already: its acknowledgement was lost, or two deliveries met
            subscription.handler(session, found)
    except Exception:
        log.warning("event %s (%s from %s) not handled by %s yet", found.id, found.type,
                    subscription.emitter, subscription.subscriber)
        raise
    return 1


def wake(emitter: str) -> None:
    """Deliver `emitter`'s new events to the subscribers hosted here (after its commit)."""
    if not has_app_context():
        return
    wanted = getattr(_delivering, "wanted", None)
    if wanted is not None:
        wanted.add(emitter)  # a handler emitted: the delivery under way takes it next
        return
    _delivering.wanted = wanted = {emitter}
    try:
        while wanted:
            service = wanted.pop()
            for subscription in subscriptions(current_app):
                if subscription.emitter == service:
                    _deliver_or_log(subscription)
    finally:
        _delivering.wanted = None


def _deliver_or_log(subscription: Subscription) -> bool:
    try:
        deliver(subscription)
        return True
    except Exception as exc:  # whatever failed, the event waits for a retry
        log.warning("%s's events for %s stay in its outbox until the next attempt: %s",
                    subscription.emitter, subscription.subscriber, exc)
        return False


# Polling -----------------------------------------------------------------------------------


def backoff(failures: int, every: float) -> float:
    """Seconds to wait after `failures` failed attempts in a row."""
    return min(MAX_BACKOFF, every * 2 ** failures)


def start_polling(app: Flask) -> None:
    """Start this process's polling thread, if the app has subscriptions and polls at all."""
    dispatcher = app.extensions.get(EXTENSION)
    if dispatcher is not None and dispatcher.poll_seconds > 0:
        dispatcher.poller.start(app)


def stop_polling(app: Flask) -> None:
    """Stop this process's polling thread and wait for its round to end."""
    dispatcher = app.extensions.get(EXTENSION)
    if dispatcher is not None:
        dispatcher.poller.stop()


def _poll(app_ref: weakref.ref, every: float, stopped: threading.Event) -> None:
    failures: dict[Subscription, int] = {}
    due: dict[Subscription, float] = {}
    while not stopped.is_set():
        app = app_ref()  # weak: an app that is gone (tests make many) ends its thread
        if app is None:
            return
        for subscription in subscriptions(app):
            if due.get(subscription, 0.0) > time.monotonic():
                continue
            with app.app_context():
                delivered = _deliver_or_log(subscription)
            if delivered:
                failures.pop(subscription, None)
                due.pop(subscription, None)
            else:
                failures[subscription] = failures.get(subscription, 0) + 1
                due[subscription] = time.monotonic() + backoff(failures[subscription], every)
        del app
        stopped.wait(every)
