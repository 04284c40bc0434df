"""The unit of work a write runs in: its last writes go into its transaction, and the stale cache
keys and the steps that wait for the commit follow the commit; none of it when the write fails."""

from __future__ import annotations

import pytest

from chaoshub.core.cache import MISSING, cache
from chaoshub.core.db import transaction
from chaoshub.core.unit_of_work import UnitOfWork
from chaoshub.dashboard.models import Profile


def profile(account_id: str) -> Profile:
    return Profile(account_id=account_id, username=account_id, display_name=account_id)


def stored(account_id: str) -> bool:
    with transaction("dashboard") as session:
        return session.get(Profile, account_id) is not None


def test_a_unit_applies_what_it_collected_around_its_commit(app):
    with app.app_context():
        key = cache().key("dashboard", "test", "stale")
        cache().put(key, "old")
        seen = []
        with UnitOfWork.open("dashboard", "uma") as work:
            work.session.add(profile("uma"))
            # A last write sees the change, in the same transaction, before anyone else does.
            work.write_last(lambda session: seen.append(
                ("last write", session.get(Profile, "uma") is not None, stored("uma"))))
            work.forget(key)
            work.after_commit(lambda: seen.append(
                ("after commit", stored("uma"), cache().peek(key)[0] is MISSING)))
            assert seen == [] and cache().peek(key) == ["old"]
        assert seen == [("last write", True, False), ("after commit", True, True)]


def test_a_failed_write_leaves_nothing_behind(app):
    with app.app_context():
        key = cache().key("dashboard", "test", "kept")
        cache().put(key, "current")
        seen = []
        with pytest.raises(RuntimeError), UnitOfWork.open("dashboard", "vic") as work:
            work.session.add(profile("vic"))
            work.write_last(lambda session: seen.append("last write"))
            work.forget(key)
            work.after_commit(lambda: seen.append("after commit"))
            raise RuntimeError("refused halfway")
        assert seen == [] and not stored("vic") and cache().peek(key) == ["current"]


def test_a_unit_joining_a_delivery_waits_for_its_commit(app):
    with app.app_context():
        key = cache().key("dashboard", "test", "joined")
        cache().put(key, "old")
        seen = []
        with transaction("dashboard") as session:
            with UnitOfWork.joining(session, "wes") as work:
                session.add(profile("wes"))
                work.write_last(lambda s: seen.append("last write"))
                work.forget(key)
                work.after_commit(lambda: seen.append("after commit"))
            # The unit is closed, the delivery's transaction is not: its last writes are in,
            # what follows the commit waits.
            assert seen == ["last write"] and cache().peek(key) == ["old"]
        assert seen == ["last write", "after commit"] and cache().peek(key) == [MISSING]
        assert stored("wes")


def test_a_unit_without_an_outbox_emits_no_event(app):
    with app.app_context(), UnitOfWork.open("dashboard") as work, \
            pytest.raises(TypeError, match="no outbox"):
        work.emit("thing.happened", ("thing", "1"), {})
