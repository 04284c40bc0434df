"""Experiment's feed outbox: entries written with their change, delivered to dashboard after
the answer, in batches, once each, and kept while dashboard is away."""

from __future__ import annotations

import fcntl
import itertools
import json
import threading
import time

import pytest
from flask import has_request_context
from sqlalchemy import event, func, select

from chaoshub import create_app
from chaoshub.core import db
from chaoshub.core.db import database, transaction
from chaoshub.core.errors import ServiceUnavailable, ValidationFailed
from chaoshub.dashboard import service as dashboard
from chaoshub.experiment import feed_outbox
from chaoshub.experiment.models import FeedOutboxEntry
from tests.conftest import csrf, post_json, signed_up_client
from tests.experiment_data import create, journal
from tests.test_invitations import claim_for


def publish(browser, experiment_id: str) -> dict:
    run = journal()
    run["start"] = f"2026-11-23T08:57:40.{next(_seconds):06d}+00:00"  # a new run each time
    response = browser.post(f"/api/v1/experiments/{experiment_id}/executions", json=run,
                            headers={"X-CSRF-Token": csrf(browser)})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


_seconds = itertools.count()


def published_entries(browser) -> list[dict]:
    entries = browser.get("/api/v1/orgs/team/activity").get_json()["entries"]
    return [e for e in entries if e["kind"] == "execution.published"]


def wait_for(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def pending(app) -> int:
    with app.app_context():
        return feed_outbox.pending()


def team_of(app) -> tuple:
    """Olga's browser with the org team and its workspace lab, and an experiment there."""
    olga = signed_up_client(app, "olga")
    assert post_json(olga, "/api/v1/orgs", {"name": "team"}).status_code == 201
    assert post_json(olga, "/api/v1/orgs/team/workspaces", {"name": "lab"}).status_code == 201
    return olga, create(olga, "team", "lab")


@pytest.fixture
def threaded_app(settings):
    """A hub that delivers from its thread, as servers do."""
    hub = create_app({**settings, "FEED_DELIVERY_SECONDS": 0.1})
    yield hub
    feed_outbox.stop(hub)
    db.dispose(hub)


@pytest.fixture
def place(app):
    """An org's workspace and its owner's account id, for entries put in the outbox as they
    are."""
    with app.app_context():
        olga = claim_for("olga")
        dashboard.create_org(olga, "team")
        ws = dashboard.create_workspace(olga, "team", "lab")
        owner = dashboard.list_members(olga, "team")[0].account_id
    return ws.org_id, ws.id, owner


def put(rows: list[dict]) -> None:
    """Entries into the outbox in a transaction of their own, as a write that was not
    followed by its delivery (the process died) leaves them."""
    with transaction("experiment") as session:
        feed_outbox.add(session, rows)


def outbox_rows() -> list[dict]:
    with transaction("experiment") as session:
        return [dict(row._mapping) for row in session.execute(
            select(FeedOutboxEntry.__table__).order_by(FeedOutboxEntry.created_at))]


def counts(claim: str, org: str = "team") -> tuple[int, int]:
    """The org's activity entries and audit entries."""
    feed = dashboard.org_activity(claim, org, limit=100).entries
    return len(feed), len(dashboard.audit_log(claim, org))


# When ------------------------------------------------------------------------------------------


def test_a_publish_answers_before_its_entry_is_delivered(threaded_app, monkeypatch):
    olga, made = team_of(threaded_app)
    assert wait_for(lambda: pending(threaded_app) == 0, 5)  # the experiment's entry went
    real, release, calls = dashboard.record_activities, threading.Event(), []

    def held(entries):
        calls.append([e.kind for e in entries])
        release.wait(10)  # dashboard slow: the answer must not wait for it
        return real(entries)

    monkeypatch.setattr(dashboard, "record_activities", held)
    started = time.monotonic()
    ran = publish(olga, made["id"])
    assert time.monotonic() - started < 5
    # Answered, and its entry waits in the outbox, not in the feed yet.
    assert pending(threaded_app) == 1
    assert published_entries(olga) == []
    release.set()
    assert wait_for(lambda: published_entries(olga), 1.0)
    assert published_entries(olga)[0]["url"].endswith(f"/execution/{ran['id']}")
    # Dashboard commits the entry before the outbox's delete is committed: a moment apart.
    assert wait_for(lambda: pending(threaded_app) == 0, 1.0)
    assert calls == [["execution.published"]]


def test_in_a_busy_process_many_entries_go_in_one_call(threaded_app, monkeypatch):
    olga, made = team_of(threaded_app)
    assert wait_for(lambda: pending(threaded_app) == 0, 5)
    real, calls = dashboard.record_activities, []
    monkeypatch.setattr(dashboard, "record_activities",
                        lambda entries: calls.append(len(entries)) or real(entries))
    monkeypatch.setattr(threaded_app.extensions[feed_outbox.EXTENSION], "every", 1.0)
    for _ in range(5):  # within the second the thread waits after the first woke it
        publish(olga, made["id"])
    assert wait_for(lambda: len(published_entries(olga)) == 5, 5)
    assert sum(calls) == 5 and len(calls) < 5, calls


def test_with_no_thread_the_entry_is_in_the_feed_when_the_answer_is_closed(app, monkeypatch):
    olga, made = team_of(app)
    real, where = feed_outbox.deliver, []
    monkeypatch.setattr(feed_outbox, "deliver",
                        lambda *a: where.append(has_request_context()) or real(*a))
    ran = publish(olga, made["id"])
    # Delivered by the time the client has the whole answer, but after the request.
    assert where == [False]
    assert pending(app) == 0
    assert [e["url"] for e in published_entries(olga)] == [
        f"/team/lab/experiment/{made['id']}/execution/{ran['id']}"]


def test_entries_a_process_left_behind_go_in_when_another_starts(threaded_app, place):
    org_id, workspace_id, owner = place
    with threaded_app.app_context():
        put([feed_outbox.entry(owner, org_id, "run.started", "olga started a run",
                               workspace_id, "executions")])
    threaded_app.test_client().get("/status/live")  # its first request starts the thread
    with threaded_app.app_context():
        assert wait_for(lambda: feed_outbox.pending() == 0, 2)
        olga = claim_for("olga")
        assert dashboard.org_activity(olga, "team").entries[0].summary == "olga started a run"


def hold_delivery_lock(app):
    """The SQLite outbox's delivery lock, taken as another process delivering holds it."""
    with app.app_context():
        path = database("experiment").sqlite_file()
    lock = open(path.with_name(path.name + ".feed-lock"), "a")
    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return lock


@pytest.mark.parametrize("backend", ["sqlite"])  # PostgreSQL locks rows
def test_on_sqlite_one_process_delivers_at_a_time(app, place, monkeypatch):
    org_id, workspace_id, owner = place
    calls = []
    real = dashboard.record_activities
    monkeypatch.setattr(dashboard, "record_activities",
                        lambda entries: calls.append(len(entries)) or real(entries))
    lock = hold_delivery_lock(app)  # another process is delivering
    with app.app_context():
        put([feed_outbox.entry(owner, org_id, "run.started", "olga started a run",
                               workspace_id, "executions")])
        with pytest.raises(feed_outbox.Busy):
            feed_outbox.deliver()
        assert calls == [] and feed_outbox.pending() == 1  # left to the one delivering
        lock.close()  # it ended
        assert feed_outbox.deliver() == 1
        assert calls == [1] and feed_outbox.pending() == 0


@pytest.mark.parametrize("backend", ["sqlite"])  # PostgreSQL locks rows
def test_the_thread_comes_back_for_entries_another_process_was_delivering(threaded_app, place):
    org_id, workspace_id, owner = place
    threaded_app.test_client().get("/status/live")  # the thread runs
    lock = hold_delivery_lock(threaded_app)
    with threaded_app.app_context():
        put([feed_outbox.entry(owner, org_id, "run.started", "olga started a run",
                               workspace_id, "executions")])
        feed_outbox.committed()
        time.sleep(0.5)  # several of its rounds: each found the other process delivering
        assert feed_outbox.pending() == 1
        lock.close()
        # Not RETRY_SECONDS later: the thread keeps looking while the other one delivers.
        assert wait_for(lambda: feed_outbox.pending() == 0, 1)


# Dashboard away --------------------------------------------------------------------------------


def test_entries_wait_in_the_outbox_while_dashboard_is_away(app, monkeypatch, caplog):
    olga, made = team_of(app)
    real = dashboard.record_activities

    def away(entries):
        raise ServiceUnavailable("a database is not answering right now")

    monkeypatch.setattr(dashboard, "record_activities", away)
    publish(olga, made["id"])
    publish(olga, made["id"])  # the write stands, its entry waits
    assert pending(app) == 2
    assert published_entries(olga) == []
    assert sum("stay in the outbox" in r.getMessage() for r in caplog.records) == 2
    monkeypatch.setattr(dashboard, "record_activities", real)
    publish(olga, made["id"])  # dashboard is back: the next delivery takes them all
    assert pending(app) == 0
    assert len(published_entries(olga)) == 3


def test_the_thread_retries_until_dashboard_answers_again(threaded_app, monkeypatch):
    olga, made = team_of(threaded_app)
    assert wait_for(lambda: pending(threaded_app) == 0, 5)
    real, refused = dashboard.record_activities, []

    def away_a_while(entries):
        if len(refused) < 3:  # dashboard's database restarting
            refused.append(len(entries))
            raise ServiceUnavailable("a database is not answering right now")
        return real(entries)

    monkeypatch.setattr(dashboard, "record_activities", away_a_while)
    publish(olga, made["id"])
    assert wait_for(lambda: len(refused) == 3, 5)
    assert wait_for(lambda: pending(threaded_app) == 0, feed_outbox.RETRY_SECONDS + 2)
    assert len(published_entries(olga)) == 1


# Once each, in one transaction -----------------------------------------------------------------


def test_a_batch_delivered_again_adds_no_second_entry_nor_audit_entry(app, place):
    org_id, workspace_id, owner = place
    with app.app_context():
        put([feed_outbox.entry(owner, org_id, "run.started", f"olga started run {n}",
                               workspace_id, "executions", f"a run {n} was started",
                               {"run_id": f"r{n}"}, f"run:e1:r{n}") for n in range(3)])
        batch = outbox_rows()
        olga = claim_for("olga")  # signed in once: a sign-in is audited too
        before = counts(olga)
        assert feed_outbox.deliver() == 3
        after = counts(olga)
        assert after == (before[0] + 3, before[1] + 3)
        # The delete of the delivered rows was lost: the same rows are delivered again.
        put(batch)
        assert feed_outbox.deliver() == 0
        assert counts(olga) == after and feed_outbox.pending() == 0
        assert dashboard.verify_audit_chains() == []


def test_a_batch_of_many_entries_is_one_dashboard_transaction(app, place, monkeypatch):
    org_id, workspace_id, owner = place
    calls = []
    real = dashboard.record_activities
    monkeypatch.setattr(dashboard, "record_activities",
                        lambda entries: calls.append(len(entries)) or real(entries))

    def delivered(count: int) -> tuple[int, int]:
        """Commits and statements on dashboard's database for `count` entries."""
        put([feed_outbox.entry(owner, org_id, "note", f"note {n}", workspace_id)
             for n in range(count)])
        seen = {"commits": 0, "statements": 0}
        engine = database("dashboard").engine
        on_commit = lambda *a: seen.update(commits=seen["commits"] + 1)  # noqa: E731
        on_statement = lambda *a: seen.update(statements=seen["statements"] + 1)  # noqa: E731
        event.listen(engine, "commit", on_commit)
        event.listen(engine, "before_cursor_execute", on_statement)
        try:
            assert feed_outbox.deliver() == count
        finally:
            event.remove(engine, "commit", on_commit)
            event.remove(engine, "before_cursor_execute", on_statement)
        return seen["commits"], seen["statements"]

    with app.app_context():
        few, many = delivered(3), delivered(90)
        assert few[0] == many[0] == 1
        assert many[1] == few[1]  # the same statements, however many entries
        assert calls == [3, 90]
        # Past a batch, one call (and transaction) per BATCH entries, oldest first.
        calls.clear()
        put([feed_outbox.entry(owner, org_id, "note", f"late {n}", workspace_id)
             for n in range(feed_outbox.BATCH + 5)])
        assert feed_outbox.deliver() == feed_outbox.BATCH + 5
        assert calls == [feed_outbox.BATCH, 5]
        with transaction("experiment") as session:
            assert session.scalar(select(func.count()).select_from(FeedOutboxEntry)) == 0
        olga = claim_for("olga")
        newest = dashboard.org_activity(olga, "team", limit=2).entries
        assert [e.summary for e in newest] == [f"late {feed_outbox.BATCH + 4}",
                                               f"late {feed_outbox.BATCH + 3}"]


def test_an_entry_dashboard_refuses_holds_back_no_other(app, place, caplog):
    org_id, workspace_id, owner = place
    with app.app_context():
        put([feed_outbox.entry(owner, org_id, "note", "fine", workspace_id),
             feed_outbox.entry(owner, "no-such-org", "note", "lost", workspace_id),
             feed_outbox.entry(owner, org_id, "note", "fine too", workspace_id)])
        assert feed_outbox.deliver() == 2
        assert feed_outbox.pending() == 0  # no retry would mend it
        olga = claim_for("olga")
        assert [e.summary for e in dashboard.org_activity(olga, "team").entries][:2] == [
            "fine too", "fine"]
    assert any("not recorded: no such workspace in this org" in r.getMessage()
               for r in caplog.records)


def test_a_call_holds_what_one_body_may_carry_and_a_refused_one_spoils_no_other(
        app, place, monkeypatch, caplog):
    org_id, workspace_id, owner = place
    real, calls = dashboard.record_activities, []

    def picky(entries):
        calls.append(entries)
        if any(e.summary == "poison" for e in entries):  # refused whatever else it holds
            raise ValidationFailed("the call's arguments are not valid", [])
        return real(entries)

    monkeypatch.setattr(dashboard, "record_activities", picky)
    big = {"names": ["é" * 1000] * 2}  # about 12 KiB of JSON, escaped
    with app.app_context():
        put([feed_outbox.entry(owner, org_id, "environment.changed", f"big {n}", workspace_id,
                               "members", audited=big) for n in range(8)])
        assert feed_outbox.deliver() == 8
        assert [len(c) for c in calls] == [3, 3, 2]
        for call in calls:  # each within what one body may carry
            body = json.dumps([e.model_dump(mode="json") for e in call])
            assert len(body) <= feed_outbox.CALL_BYTES
        calls.clear()
        put([feed_outbox.entry(owner, org_id, "note", summary, workspace_id)
             for summary in ("first", "poison", "last")])
        assert feed_outbox.deliver() == 2
        assert [[e.summary for e in c] for c in calls] == [
            ["first", "poison", "last"], ["first"], ["poison"], ["last"]]
        assert feed_outbox.pending() == 0
        olga = claim_for("olga")
        assert [e.summary for e in dashboard.org_activity(olga, "team").entries][:2] == [
            "last", "first"]
    assert any("dropped, dashboard refuses it" in r.getMessage() for r in caplog.records)
