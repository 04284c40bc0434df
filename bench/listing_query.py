"""The executions listing's query alone, in process: its time, and its plan with the pages read.

The pages (buffers) a query touches do not depend on what else the machine is doing, so they
show whether the listing's work grows with the table even when timings are noisy. PostgreSQL
tells them; on SQLite only the plan is shown.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import event
from timing import median_p99, timed

from chaoshub.core import db
from chaoshub.experiment import store


@dataclass(frozen=True)
class QueryTiming:
    """How long the listing's query took, and what PostgreSQL did for it."""

    median_ms: float
    p99_ms: float
    best_ms: float
    plan: str
    buffers: int | None  # None on SQLite
    server_ms: float | None


def measure(experiment_id: str, limit: int, samples: int) -> QueryTiming:
    """Time the query of the listing's first page of `limit` (store.executions_after, in an app
    context) and explain it."""
    def first_page():
        # One row more than the page, as the service asks, to know whether a next page exists.
        return store.executions_after(experiment_id, None, limit + 1)

    first_page()  # connect and warm up first
    took = timed(first_page, samples)
    median, p99 = median_p99(took)
    statement = _statement(first_page)
    timing = {"median_ms": median, "p99_ms": p99, "best_ms": min(took)}
    if db.database(store.SERVICE).engine.dialect.name != "postgresql":
        return QueryTiming(**timing, plan=" > ".join(_sqlite_plan(statement)), buffers=None,
                           server_ms=None)
    plan = _explain(statement)
    return QueryTiming(**timing, plan=" > ".join(_nodes(plan["Plan"])),
                       buffers=plan["Plan"].get("Shared Hit Blocks", 0)
                       + plan["Plan"].get("Shared Read Blocks", 0),
                       server_ms=plan["Execution Time"])


def _statement(query) -> tuple[str, dict]:
    # The very statement the store sends (not a copy of it, which could drift from it).
    engine = db.database(store.SERVICE).engine
    sent: list[tuple[str, dict]] = []

    def keep(_connection, _cursor, statement, parameters, _context, _many):
        sent.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", keep)
    try:
        query()
    finally:
        event.remove(engine, "before_cursor_execute", keep)
    return sent[-1]


def _explain(sent: tuple[str, dict]) -> dict:
    statement, parameters = sent
    with db.database(store.SERVICE).engine.connect() as connection:
        explained = connection.exec_driver_sql(
            "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + statement, parameters).scalar()
    return explained[0]


def _sqlite_plan(sent: tuple[str, dict]) -> list[str]:
    statement, parameters = sent
    with db.database(store.SERVICE).engine.connect() as connection:
        rows = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
        return [row[-1] for row in rows]


def _nodes(node: dict) -> list[str]:
    index = f" ({node['Index Name']})" if "Index Name" in node else ""
    scan = " Backward" if node.get("Scan Direction") == "Backward" else ""
    names = [f"{node['Node Type']}{scan}{index}"]
    for child in node.get("Plans", []):
        names += _nodes(child)
    return names
