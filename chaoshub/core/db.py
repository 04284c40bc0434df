"""One engine and session factory per service, each built from that service's own URL."""

from __future__ import annotations

import os
import select
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from flask import Flask, current_app
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

EXTENSION = "chaoshub.databases"
# A request waits this long at most for a connection, new (PostgreSQL answering; libpq takes
# no less than 2 s) or from the pool: with PostgreSQL away, it answers 503 (errors.py) within
# 2 s all told, rather than hanging; the pool's wait leaves room for the answer itself.
CONNECT_SECONDS = 2
POOL_WAIT_SECONDS = 1.5
# A pooled connection idle longer than this is pinged (a round trip) before it is handed out;
# one used more recently only has its socket looked at.
PING_AFTER_IDLE_SECONDS = 30.0
_CHECKED_IN = "chaoshub_checked_in"
_ENGINES: weakref.WeakSet[Engine] = weakref.WeakSet()


class ServiceDatabase:
    """The database a single service owns."""

    def __init__(self, service: str, url: str):
        self.service = service
        self.url = url
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    def sqlite_file(self) -> Path | None:
        """The SQLite file this database lives in; None for a server's or an in-memory one."""
        url = self.engine.url
        if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
            return None
        return Path(url.database)

    def ping(self) -> None:
        """Raise if the database does not answer."""
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite gets its folder, foreign keys and a busy timeout."""
    if url.startswith("sqlite"):
        database = url.split("///", 1)[-1]
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 15})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_engine(url, pool_size=5, max_overflow=10, pool_timeout=POOL_WAIT_SECONDS,
                           connect_args={"connect_timeout": CONNECT_SECONDS})
    # A connection PostgreSQL closed (a restart) is replaced, not handed out.
    event.listen(engine, "checkin", _checked_in)
    event.listen(engine, "checkout", _alive_or_replaced)
    _ENGINES.add(engine)
    return engine


def _checked_in(_dbapi_connection, record) -> None:
    record.info[_CHECKED_IN] = time.monotonic()


def _alive_or_replaced(dbapi_connection, record, _proxy) -> None:
    # Instead of pool_pre_ping's SELECT 1 on every checkout (a round trip: 0.25 ms of the
    # hub's CPU and as much of the request's time, per transaction). A server that closed an
    # idle connection (a restart, an idle timeout) has left something on its socket: its
    # goodbye, or the end of the stream; an idle connection that is well has nothing to read.
    # One idle for long is pinged anyway: what lies between may have dropped it silently.
    # A connection just made (never checked in) has answered a moment ago.
    idle = time.monotonic() - record.info.get(_CHECKED_IN, time.monotonic())
    if dbapi_connection.closed or dbapi_connection.broken or _readable(dbapi_connection):
        raise DisconnectionError("the database closed this connection")
    if idle > PING_AFTER_IDLE_SECONDS:
        try:
            with dbapi_connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            dbapi_connection.rollback()  # psycopg opened a transaction for it
        except Exception as exc:
            raise DisconnectionError("the database does not answer on this connection") from exc


def _readable(dbapi_connection) -> bool:
    poller = select.poll()
    poller.register(dbapi_connection.fileno(), select.POLLIN | select.POLLERR | select.POLLHUP)
    return bool(poller.poll(0))


def _forget_pools_in_child() -> None:
    # A forked process (gunicorn's workers, forked after `chaoshub run` migrated and reserved
    # names) must not use its parent's connections: two processes on one socket mix their
    # answers. It drops them without closing them (they are still the parent's).
    for engine in list(_ENGINES):
        engine.dispose(close=False)


os.register_at_fork(after_in_child=_forget_pools_in_child)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


def init_app(app: Flask) -> None:
    """Build the databases of the services this process hosts."""
    app.extensions[EXTENSION] = {
        service: ServiceDatabase(service, app.config[f"{service.upper()}_DATABASE_URL"])
        for service in app.config["CHAOSHUB_SERVICES"]
    }


def database(service: str) -> ServiceDatabase:
    """The database of a service hosted by the current app."""
    return current_app.extensions[EXTENSION][service]


@contextmanager
def transaction(service: str) -> Iterator[Session]:
    """A session in one transaction on `service`'s database: committed, or rolled back."""
    with database(service).sessions.begin() as session:
        yield session


def dispose(app: Flask) -> None:
    """Close every pooled connection (tests and forks call this)."""
    for db in app.extensions.get(EXTENSION, {}).values():
        db.engine.dispose()


def forget_inherited(app: Flask) -> None:
    """In a forked child: drop the parent's pooled connections without closing them (they
    are still the parent's), so that the child opens its own."""
    for db in app.extensions.get(EXTENSION, {}).values():
        db.engine.dispose(close=False)
