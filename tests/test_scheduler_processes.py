"""Schedules fired by real processes: two `chaoshub worker` processes tick on PostgreSQL and
Redis, and each firing of a schedule starts exactly one run, in the schedule's time zone."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from chaoshub.core.db import transaction
from chaoshub.experiment.models import Run, ScheduleFiring
from tests.conftest import post_json, signed_up_client
from tests.experiment_data import create
from tests.helpers import BIN, clean_env, start, stop
from tests.run_data import runnable, wait_for

# It starts worker processes but times nothing: it waits for a minute of the clock to come, so
# it runs beside the fast tests rather than alone with those that time leases and outages.
pytestmark = pytest.mark.clock

KOLKATA = ZoneInfo("Asia/Kolkata")  # +05:30: a zone misread shows as a half-hour miss


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_two_schedulers_start_one_run_per_firing_in_the_schedules_zone(app, settings,
                                                                       tmp_path, backend):
    env = clean_env(**{k: str(v) for k, v in settings.items()}, SCHEDULER_TICK_SECONDS="1",
                    LOG_LEVEL="INFO")
    workers = [start([str(BIN / "chaoshub"), "worker"], tmp_path, env, tmp_path / f"w{n}.log")
               for n in range(2)]
    try:
        alice = signed_up_client(app, "alice")
        every = create(alice, document=runnable("Every minute"))
        once_a_day = create(alice, document=runnable("At a minute of Kolkata"))
        minutely = post_json(alice, f"/api/v1/experiments/{every['id']}/schedules",
                             {"cron": "* * * * *", "time_zone": "Asia/Kolkata"}).get_json()
        # A minute of the day on Kolkata's clock: it fires only if the zone is read right. The
        # first minute starting 20 s from now or later, so that both schedules exist before it.
        target = (datetime.now(KOLKATA) + timedelta(seconds=80)).replace(second=0,
                                                                         microsecond=0)
        daily = post_json(alice, f"/api/v1/experiments/{once_a_day['id']}/schedules",
                          {"cron": f"{target.minute} {target.hour} * * *",
                           "time_zone": "Asia/Kolkata"}).get_json()
        assert datetime.fromisoformat(daily["next_fire_times"][0]) == target
        first = datetime.fromisoformat(minutely["next_fire_times"][0])
        assert first.utcoffset() == timedelta(hours=5, minutes=30)

        def fired(schedule: dict, at: datetime) -> list[ScheduleFiring]:
            with app.app_context(), transaction("experiment") as session:
                rows = list(session.scalars(select(ScheduleFiring).where(
                    ScheduleFiring.schedule_id == schedule["id"],
                    ScheduleFiring.fire_at == at)))
                session.expunge_all()
                return rows

        def runs_of(experiment_id: str) -> list[Run]:
            with app.app_context(), transaction("experiment") as session:
                rows = list(session.scalars(select(Run).where(
                    Run.experiment_id == experiment_id)))
                session.expunge_all()
                return rows

        # Both schedules fire at `target` (the minutely one may fire once before it, too).
        for at in sorted({first, target}):
            [firing] = wait_for(lambda at=at: fired(minutely, at), 150,
                                f"the firing at {at.isoformat()}")
            assert firing.outcome == "started", firing.reason
            # Within its minute.
            assert at <= firing.recorded_at < at + timedelta(seconds=60)
        [daily_firing] = wait_for(lambda: fired(daily, target), 150, "the Kolkata firing")
        assert daily_firing.outcome == "started", daily_firing.reason
        # No more firings while the runs are counted.
        csrf = alice.get_cookie("chaoshub_csrf").value
        for schedule in (minutely, daily):
            assert alice.patch(f"/api/v1/schedules/{schedule['id']}", json={"enabled": False},
                               headers={"X-CSRF-Token": csrf}).status_code == 200

        for schedule, experiment in ((minutely, every), (daily, once_a_day)):
            done = wait_for(lambda e=experiment: (rows := runs_of(e["id"])) and all(
                r.status == "finished" for r in rows) and rows, 90, "the runs finished")
            with app.app_context(), transaction("experiment") as session:
                started = list(session.scalars(select(ScheduleFiring.run_id).where(
                    ScheduleFiring.schedule_id == schedule["id"],
                    ScheduleFiring.outcome == "started")))
            # One run per firing that started one, and no other.
            assert sorted(r.id for r in done) == sorted(started)
            assert all(r.origin == "hub" and r.created_by_name == "alice" for r in done)
        assert len(runs_of(once_a_day["id"])) == 1
    finally:
        stop(*workers)
        for n in range(2):
            print((tmp_path / f"w{n}.log").read_text()[-3000:])
