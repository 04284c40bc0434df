"""Seed executions straight into the experiment database, fast (INSERT ... SELECT generate_series).

Usage: .venv/bin/python bench/seed_executions.py --database-url URL --experiment ID --count N
       [--start K] [--hot-share 0.1]

What a real hub holds: many experiments in a workspace, most run now and then by hand, a few run
on a schedule by CI, and those few gather most executions. So the seeded executions go one in
ten (`--hot-share`) to the experiment named by `--experiment` (the busy, scheduled one that a
bench lists) and the rest evenly over the workspace's other experiments, one every 30 seconds
going back from now (a million is about a year of a busy hub). At 10k the listed experiment has
1k executions, at 1M it has 100k: its listing is compared with both the table and its own history
grown a hundredfold.

Each execution gets its execution_journals row and its execution_activities rows, as publishing
would store them (the activities of the sample journal in ../shared/samples). The journals are
short (status, times, node, the experiment's title): the listing never reads them, and journals
of full size would make a million of them tens of gigabytes rather than a few minutes' work.
Each experiment's last run (the columns publishing keeps on its row) is brought up to date.
Rows numbered `--start`+1 onwards are made, so a second call with a larger start adds to the
first.

`seed_through_app` makes the same rows through SQLAlchemy on an app's experiment database, any
database the hub takes: the load bench seeds SQLite with it (tens of thousands of rows a minute,
not the millions of the single statement above).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from flask import Flask
from psycopg.types.json import Json
from sqlalchemy import insert, select, update

from chaoshub.core import db
from chaoshub.experiment import journals, store
from chaoshub.experiment.models import Execution, ExecutionActivity, ExecutionJournal, Experiment

SAMPLE_JOURNAL = Path(__file__).resolve().parents[2] / "shared" / "samples" / "journal.json"
BATCH = 200_000
APP_BATCH = 2_000  # rows per transaction through SQLAlchemy: a short lock on SQLite
STEP_SECONDS = 30
# (status, deviated, outcome) by n % 20: mostly passing runs, as on a hub that is used.
OUTCOME_MIX = ([("completed", False, "passed")] * 14 + [("completed", True, "deviated")] * 3
               + [("completed", False, "baseline-not-met"), ("failed", False, "probe-error"),
                  ("interrupted", False, "interrupted")])

# One statement per batch writes the three tables, so a batch is all there or not at all.
SEED_SQL = """
WITH picked AS (
    SELECT n,
           md5(%(tag)s || n)::uuid::text AS id,
           CASE WHEN cardinality(%(others)s::text[]) = 0 OR n %% %(hot_every)s = 0
                THEN %(hot)s
                ELSE (%(others)s::text[])[1 + n %% cardinality(%(others)s::text[])] END
             AS experiment_id,
           %(now)s::timestamptz - n * make_interval(secs => %(step)s) AS ended_at,
           5.0 + n %% 50 + (n %% 1000) / 1000.0 AS duration
    FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS n
), mix (k, status, deviated, outcome) AS (
    SELECT * FROM jsonb_to_recordset(%(mix)s::jsonb)
        AS m(k int, status text, deviated boolean, outcome text)
), added AS (
    INSERT INTO executions (id, experiment_id, workspace_id, version, status, deviated, outcome,
                            started_at, ended_at, duration, node, published_by,
                            published_by_name, content_hash, idempotency_key, created_at)
    SELECT p.id, x.id, x.workspace_id, x.version, m.status, m.deviated, m.outcome,
           p.ended_at - make_interval(secs => p.duration), p.ended_at, p.duration,
           'ci-runner-' || p.n %% 8, x.created_by, %(publisher)s,
           encode(sha256(convert_to(p.id, 'UTF8')), 'hex'), NULL,
           p.ended_at + interval '1 second'
    FROM picked p
    JOIN experiments x ON x.id = p.experiment_id
    JOIN mix m ON m.k = p.n %% 20
    RETURNING id, status, deviated, started_at, ended_at, duration, node, experiment_id
), journaled AS (
    INSERT INTO execution_journals (execution_id, journal)
    SELECT a.id, json_build_object(
               'chaoslib-version', '1.45.1', 'node', a.node, 'status', a.status,
               'deviated', a.deviated, 'start', a.started_at, 'end', a.ended_at,
               'duration', a.duration,
               'experiment', json_build_object('title', x.title, 'version', '1.0.0'))
    FROM added a JOIN experiments x ON x.id = a.experiment_id
)
INSERT INTO execution_activities (execution_id, position, phase, name, type, status, duration,
                                  tolerance_met)
SELECT a.id, s.position, s.phase, s.name, s.type, s.status, s.duration, s.tolerance_met
FROM added a
CROSS JOIN jsonb_to_recordset(%(activities)s::jsonb) AS s(
    position int, phase text, name text, type text, status text, duration float8,
    tolerance_met boolean)
"""

# What publishing keeps on each experiment row (last_runs.record): its newest execution.
LAST_RUN_SQL = """
UPDATE experiments x
SET last_execution_id = latest.id, last_run_at = latest.created_at,
    last_run_outcome = latest.outcome
FROM experiments w
CROSS JOIN LATERAL (
    SELECT e.id, e.created_at, e.outcome FROM executions e
    WHERE e.experiment_id = w.id ORDER BY e.created_at DESC, e.id DESC LIMIT 1
) AS latest
WHERE w.workspace_id = %(workspace)s AND x.id = w.id
"""


def libpq_url(url: str) -> str:
    """A SQLAlchemy URL (postgresql+psycopg://...) as libpq reads it."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def sample_activities() -> list[dict]:
    """The activity rows publishing the sample journal makes, with their positions."""
    sample = json.loads(SAMPLE_JOURNAL.read_text())
    return [{"position": i, **a} for i, a in enumerate(journals.activities(sample))]


def seed(database_url: str, experiment_id: str, count: int, start: int = 0,
         hot_share: float = 0.1, progress=print) -> float:
    """Add `count` executions (numbered after `start`); returns the seconds it took."""
    began = time.perf_counter()
    hot_every = max(1, round(1 / hot_share)) if hot_share > 0 else 0
    with psycopg.connect(libpq_url(database_url), autocommit=True) as connection:
        hot = connection.execute("SELECT workspace_id FROM experiments WHERE id = %s",
                                 (experiment_id,)).fetchone()
        if hot is None:
            raise SystemExit(f"no experiment {experiment_id} in that database")
        others = [row[0] for row in connection.execute(
            "SELECT id FROM experiments WHERE workspace_id = %s AND id <> %s ORDER BY id",
            (hot[0], experiment_id))] if hot_every != 1 else []
        params = {
            # Ids and content hashes derive from the tag and n: unique, and no read-back.
            "tag": f"seed:{experiment_id}:", "hot": experiment_id, "others": others,
            "hot_every": hot_every or count + start + 1, "step": STEP_SECONDS,
            "now": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "publisher": "seed", "mix": Json([{"k": k, "status": s, "deviated": d, "outcome": o}
                                               for k, (s, d, o) in enumerate(OUTCOME_MIX)]),
            "activities": Json(sample_activities()),
        }
        connection.execute("SET TimeZone = 'UTC'")
        # Every row is made consistent here; skipping the per-row foreign-key triggers for
        # this session (as pg_restore does) makes loading several times faster.
        connection.execute("SET session_replication_role = replica")
        done = start
        while done < start + count:
            last = min(done + BATCH, start + count)
            with connection.transaction():
                connection.execute(SEED_SQL, {**params, "first": done + 1, "last": last})
            done = last
            progress(f"  seeded {done - start:>9,} / {count:,} executions "
                     f"({time.perf_counter() - began:5.1f} s)")
        connection.execute("SET session_replication_role = origin")
        if _has_last_run(connection):
            connection.execute(LAST_RUN_SQL, {"workspace": hot[0]})
        # What autovacuum would have done on a hub that grew slowly: fresh statistics.
        connection.execute("VACUUM ANALYZE executions, execution_journals, execution_activities")
        # The seeded pages written out now rather than by a checkpoint that may fall in the middle
        # of a measured publish run.
        try:
            connection.execute("CHECKPOINT")
        except psycopg.errors.InsufficientPrivilege:
            progress("  (no CHECKPOINT: the bench's database user may not ask for one)")
    return time.perf_counter() - began


def seed_through_app(app: Flask, experiment_id: str, count: int, start: int = 0,
                     hot_share: float = 0.1, progress=print) -> float:
    """Add `count` executions (numbered after `start`) as `seed` does, through `app`'s
    experiment database; returns the seconds it took."""
    began = time.perf_counter()
    hot_every = max(1, round(1 / hot_share)) if hot_share > 0 else 0
    with app.app_context():
        engine = db.database(store.SERVICE).engine
        with engine.connect() as connection:
            workspace = connection.scalar(
                select(Experiment.workspace_id).where(Experiment.id == experiment_id))
            if workspace is None:
                raise SystemExit(f"no experiment {experiment_id} in that database")
            experiments = {row.id: row for row in connection.execute(
                select(Experiment.id, Experiment.workspace_id, Experiment.version,
                       Experiment.created_by, Experiment.title)
                .where(Experiment.workspace_id == workspace).order_by(Experiment.id))}
        others = [e for e in experiments if e != experiment_id] if hot_every != 1 else []
        activities = sample_activities()
        now = datetime.now(UTC).replace(microsecond=0)
        done = start
        while done < start + count:
            last = min(done + APP_BATCH, start + count)
            rows = [_seeded_row(n, experiment_id, others, hot_every, now, experiments)
                    for n in range(done + 1, last + 1)]
            with engine.begin() as connection:
                connection.execute(insert(Execution), [r["execution"] for r in rows])
                connection.execute(insert(ExecutionJournal), [
                    {"execution_id": r["execution"]["id"], "journal": r["journal"]}
                    for r in rows])
                connection.execute(insert(ExecutionActivity), [
                    {"execution_id": r["execution"]["id"], **a} for r in rows
                    for a in activities])
            done = last
            if (done - start) % (APP_BATCH * 5) == 0 or done == start + count:
                progress(f"  seeded {done - start:>9,} / {count:,} executions "
                         f"({time.perf_counter() - began:5.1f} s)")
        with engine.begin() as connection:
            for experiment in experiments:
                latest = connection.execute(
                    select(Execution.id, Execution.created_at, Execution.outcome)
                    .where(Execution.experiment_id == experiment)
                    .order_by(Execution.created_at.desc(), Execution.id.desc()).limit(1)).first()
                if latest is not None:
                    connection.execute(
                        update(Experiment).where(Experiment.id == experiment).values(
                            last_execution_id=latest.id, last_run_at=latest.created_at,
                            last_run_outcome=latest.outcome))
    return time.perf_counter() - began


def _seeded_row(n: int, hot: str, others: list[str], hot_every: int, now: datetime,
                experiments: dict) -> dict:
    # Row n as SEED_SQL makes it: the same experiment, times, outcome and derived ids.
    experiment = experiments[hot if not others or (hot_every and n % hot_every == 0)
                             else others[n % len(others)]]
    status, deviated, outcome = OUTCOME_MIX[n % 20]
    execution_id = str(uuid.UUID(hashlib.md5(f"seed:{hot}:{n}".encode()).hexdigest()))
    ended = now - timedelta(seconds=n * STEP_SECONDS)
    duration = 5.0 + n % 50 + (n % 1000) / 1000.0
    started = ended - timedelta(seconds=duration)
    node = f"ci-runner-{n % 8}"
    return {
        "execution": {
            "id": execution_id, "experiment_id": experiment.id,
            "workspace_id": experiment.workspace_id, "version": experiment.version,
            "status": status, "deviated": deviated, "outcome": outcome, "started_at": started,
            "ended_at": ended, "duration": duration, "node": node,
            "published_by": experiment.created_by, "published_by_name": "seed",
            "content_hash": hashlib.sha256(execution_id.encode()).hexdigest(),
            "idempotency_key": None, "created_at": ended + timedelta(seconds=1),
        },
        "journal": {
            "chaoslib-version": "1.45.1", "node": node, "status": status, "deviated": deviated,
            "start": started.isoformat(), "end": ended.isoformat(), "duration": duration,
            "experiment": {"title": experiment.title, "version": "1.0.0"},
        },
    }


def _has_last_run(connection: psycopg.Connection) -> bool:
    # Databases migrated before experiment_0004 have no last-run columns to keep.
    return connection.execute(
        "SELECT 1 FROM information_schema.columns WHERE table_name = 'experiments' "
        "AND column_name = 'last_execution_id'").fetchone() is not None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True,
                        help="EXPERIMENT_DATABASE_URL (PostgreSQL)")
    parser.add_argument("--experiment", required=True, help="the busy experiment's id")
    parser.add_argument("--count", type=int, required=True, help="executions to add")
    parser.add_argument("--start", type=int, default=0, help="executions seeded before")
    parser.add_argument("--hot-share", type=float, default=0.1,
                        help="share of executions given to --experiment (1 = all of them)")
    args = parser.parse_args()
    took = seed(args.database_url, args.experiment, args.count, args.start, args.hot_share,
                progress=lambda line: print(line, file=sys.stderr))
    print(f"{args.count:,} executions in {took:.1f} s")


if __name__ == "__main__":
    main()
