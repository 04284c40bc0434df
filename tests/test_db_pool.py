"""PostgreSQL's pooled connections: one the server closed is replaced before it is handed out,
without a round trip on every checkout."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import event, text

from chaoshub.core import db
from tests.conftest import POSTGRES_URL

# SQLite has no server to close a connection.
pytestmark = pytest.mark.parametrize("backend", ["postgresql"])


@pytest.fixture
def engine(app):
    with app.app_context():
        yield db.database("experiment").engine


def backend_pid(engine) -> int:
    with engine.connect() as connection:
        return connection.scalar(text("SELECT pg_backend_pid()"))


def statements(engine) -> list[str]:
    seen: list[str] = []
    event.listen(engine, "before_cursor_execute",
                 lambda _c, _cur, statement, *_: seen.append(statement))
    return seen


def test_a_connection_the_server_ended_is_replaced_when_checked_out(engine):
    first = backend_pid(engine)
    assert backend_pid(engine) == first  # the same pooled connection, while it is well
    with psycopg.connect(f"{POSTGRES_URL}/postgres", autocommit=True) as admin:
        # Ends it by a signal, and waits until it is gone: the socket is closed by then.
        assert admin.execute("SELECT pg_terminate_backend(%s, 5000)", (first,)).fetchone()[0]
    # As after a restart of the server: the next checkout gets a new connection, no error.
    replaced = backend_pid(engine)
    assert replaced != first
    assert backend_pid(engine) == replaced


def test_a_recently_used_connection_is_not_pinged(engine, monkeypatch):
    backend_pid(engine)
    pinged = []
    real = db._readable
    monkeypatch.setattr(db, "_readable", lambda c: pinged.append("socket") or real(c))
    seen = statements(engine)
    backend_pid(engine)
    assert pinged == ["socket"]
    assert seen == ["SELECT pg_backend_pid()"]  # no SELECT 1 before it


def test_a_connection_idle_for_long_is_pinged_first(engine, monkeypatch):
    first = backend_pid(engine)
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", -1.0)  # every connection idle "long"
    pings = []
    real = psycopg.Cursor.execute

    def execute(cursor, query, *args, **kwargs):
        pings.append(query) if query == "SELECT 1" else None
        return real(cursor, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "execute", execute)
    assert backend_pid(engine) == first
    assert pings == ["SELECT 1"]
