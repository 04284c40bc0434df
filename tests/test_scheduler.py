"""The scheduler's ticks at chosen moments: a firing on time starts one run as the schedule's
owner; missed firings (the hub was down) are skipped or run once; a previous run still going
skips, queues or aborts; the allowed windows, the kill switch and an owner who left skip."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from chaoshub.core.db import transaction
from chaoshub.experiment import hub_runs, scheduler, schedules
from chaoshub.experiment.models import Run, Schedule, ScheduleFiring
from tests.conftest import post_json, signed_up_client
from tests.experiment_data import create
from tests.run_data import runnable, wait_for

TICK = 5.0


@pytest.fixture
def alice(app):
    return signed_up_client(app, "alice")


def schedule(browser, experiment_id: str, **body) -> dict:
    made = post_json(browser, f"/api/v1/experiments/{experiment_id}/schedules",
                     {"cron": "* * * * *", "time_zone": "Asia/Kolkata", **body})
    assert made.status_code == 201, made.get_json()
    return made.get_json()


def first_time(made: dict) -> datetime:
    return datetime.fromisoformat(made["next_fire_times"][0])


def tick(app, now: datetime) -> int:
    # A fresh app context a tick, as the scheduler's thread has.
    with app.app_context():
        return scheduler.tick(now, TICK)


def firings(browser, made: dict) -> list[dict]:
    answer = browser.get(f"/api/v1/schedules/{made['id']}/firings")
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()["firings"]


def runs_of(app, experiment_id: str) -> list[Run]:
    with app.app_context(), transaction("experiment") as session:
        rows = list(session.scalars(select(Run).where(Run.experiment_id == experiment_id)
                                    .order_by(Run.created_at)))
        session.expunge_all()
        return rows


def test_a_firing_on_time_starts_one_run_as_its_owner_and_only_once(app, alice):
    saved = create(alice, document=runnable())
    made = schedule(alice, saved["id"], dry="activities")
    at = first_time(made)
    assert at.utcoffset() == timedelta(hours=5, minutes=30)
    assert tick(app, at + timedelta(seconds=2)) == 1
    assert tick(app, at + timedelta(seconds=3)) == 0  # recorded once, whoever ticks again
    [firing] = firings(alice, made)
    assert (firing["outcome"], datetime.fromisoformat(firing["fire_at"])) == ("started", at)
    [run] = runs_of(app, saved["id"])
    assert (run.id, run.status, run.origin, run.version) == (firing["run_id"], "queued", "hub", 1)
    assert run.options["dry"] == "activities" and run.options["schedule_id"] == made["id"]
    assert run.created_by_name == "alice"
    feed = alice.get("/api/v1/orgs/alice/activity").get_json()["entries"]
    assert "A schedule of alice started a run of Run me (version 1)" in [
        e["summary"] for e in feed]
    # Its preview moved on a minute.
    assert first_time(alice.get(f"/api/v1/schedules/{made['id']}").get_json()) == \
        at + timedelta(minutes=1)


def test_a_one_off_schedule_fires_once_and_is_then_shown_done(app, alice):
    saved = create(alice, document=runnable())
    made = post_json(alice, f"/api/v1/experiments/{saved['id']}/schedules",
                     {"kind": "once", "at": "2099-06-01T09:00", "time_zone": "Europe/Paris"})
    assert made.status_code == 201, made.get_json()
    at = first_time(made.get_json())
    assert tick(app, at + timedelta(seconds=1)) == 1
    assert tick(app, at + timedelta(days=1)) == 0
    [firing] = firings(alice, made.get_json())
    assert firing["outcome"] == "started" and len(runs_of(app, saved["id"])) == 1
    # Done: disabled, nothing to come (not "enabled" forever with no time ahead).
    after = alice.get(f"/api/v1/schedules/{made.get_json()['id']}").get_json()
    assert (after["enabled"], after["next_fire_times"]) == (False, [])
    # Enabled again, it needs a time to come: its own has passed.
    url = f"/api/v1/schedules/{after['id']}"
    headers = {"X-CSRF-Token": alice.get_cookie("chaoshub_csrf").value}
    with app.app_context(), transaction("experiment") as session:
        # Its time passed (the tick above only pretended it had).
        session.get(Schedule, after["id"]).once_at = datetime.now(at.tzinfo) - \
            timedelta(hours=1)
    again = alice.patch(url, json={"enabled": True}, headers=headers)
    assert again.status_code == 422, again.get_json()
    assert again.get_json()["details"][0]["pointer"] == "/at"
    later = alice.patch(url, json={"enabled": True, "at": "2099-07-01T09:00"}, headers=headers)
    assert later.status_code == 200, later.get_json()
    assert later.get_json()["next_fire_times"] == ["2099-07-01T09:00:00+02:00"]


def test_more_schedules_due_at_once_than_a_batch_all_fire_in_the_tick(app, alice,
                                                                        monkeypatch):
    # A batch of two stands for the hundred: the third due at 09:00 must not wait for the
    # next tick (with enough of them, later than the grace, and skipped as missed). Three:
    # the workspace's policy runs three at once at most.
    monkeypatch.setattr(scheduler, "BATCH", 2)
    made = [schedule(alice, create(alice, document=runnable(f"Daily {n}"))["id"],
                     cron="0 9 * * *") for n in range(3)]
    at = first_time(made[0])
    assert tick(app, at + timedelta(seconds=1)) == 3
    for one in made:
        assert [(f["outcome"], f["reason"]) for f in firings(alice, one)] == [("started", "")]


def test_missed_firings_are_skipped_or_run_once_on_recovery(app, alice):
    skipping = create(alice, document=runnable("Skips"))
    catching = create(alice, document=runnable("Catches up"))
    skip = schedule(alice, skipping["id"], cron="0 * * * *", missed="skip")
    run_once = schedule(alice, catching["id"], cron="0 * * * *", missed="run_once")
    at = first_time(skip)
    assert (at.minute, at.astimezone(datetime.fromisoformat("2000-01-01T00:00Z").tzinfo)
            .minute) == (0, 30)  # on the hour in Kolkata: half past in UTC
    # The hub was down for three hours and ten minutes: four firings are owed, the last of
    # them ten minutes late.
    back = at + timedelta(hours=3, minutes=10)
    assert tick(app, back) == 2
    [skipped] = firings(alice, skip)
    assert skipped["outcome"] == "skipped" and skipped["run_id"] is None
    assert "missed while no scheduler ran (4 firings since" in skipped["reason"]
    assert runs_of(app, skipping["id"]) == []
    [caught] = firings(alice, run_once)
    assert caught["outcome"] == "started" and "run once on recovery" in caught["reason"]
    assert [r.id for r in runs_of(app, catching["id"])] == [caught["run_id"]]
    # Both count on from now: the next firing is the coming hour, not an owed one.
    for made in (skip, run_once):
        upcoming = first_time(alice.get(f"/api/v1/schedules/{made['id']}").get_json())
        assert upcoming == at + timedelta(hours=4)
    assert tick(app, back + timedelta(seconds=1)) == 0


def test_firings_missed_just_before_one_on_time_are_told_of_as_one_skip(app, alice):
    saved = create(alice, document=runnable())
    made = schedule(alice, saved["id"], missed="run_once")
    at = first_time(made)
    assert tick(app, at + timedelta(minutes=10, seconds=30)) == 1
    started, skipped = firings(alice, made)
    assert started["outcome"] == "started" and started["reason"] == ""
    assert datetime.fromisoformat(started["fire_at"]) == at + timedelta(minutes=10)
    assert "missed while no scheduler ran (10 firings since" in skipped["reason"]
    assert len(runs_of(app, saved["id"])) == 1


def test_a_previous_run_still_going_skips_queues_or_is_aborted(app, alice):
    skips = create(alice, document=runnable("Overlap skip"))
    queues = create(alice, document=runnable("Overlap queue"))
    aborts = create(alice, document=runnable("Overlap abort"))
    # Every two hours: made within the same two hours, the three fire at the same times.
    made = {name: schedule(alice, saved["id"], overlap=name, cron="0 */2 * * *")
            for name, saved in (("skip", skips), ("queue", queues), ("abort", aborts))}
    at = first_time(made["skip"])
    assert tick(app, at + timedelta(seconds=1)) == 3  # each starts its first run
    first_runs = {name: runs_of(app, saved["id"])[0].id
                  for name, saved in (("skip", skips), ("queue", queues), ("abort", aborts))}
    assert tick(app, at + timedelta(hours=2, seconds=1)) == 3

    # skip: the run still queued, the firing skipped.
    assert [f["outcome"] for f in firings(alice, made["skip"])] == ["skipped", "started"]
    assert firings(alice, made["skip"])[0]["reason"] == "the previous run is still going"
    assert len(runs_of(app, skips["id"])) == 1
    # abort: the previous run aborted, a new one queued.
    aborted, fresh = runs_of(app, aborts["id"])
    assert (aborted.id, aborted.status) == (first_runs["abort"], "aborted")
    assert "aborted for the next firing of its schedule" in aborted.reason
    assert fresh.status == "queued"
    assert firings(alice, made["abort"])[0]["run_id"] == fresh.id
    # queue: the firing waits, a third is skipped, and it starts once the first run ended.
    assert firings(alice, made["queue"])[0]["outcome"] == "waiting"
    assert tick(app, at + timedelta(hours=4, seconds=1)) >= 1
    waiting, skipped = firings(alice, made["queue"])[1], firings(alice, made["queue"])[0]
    assert (waiting["outcome"], skipped["outcome"]) == ("waiting", "skipped")
    assert "a firing waits for it already" in skipped["reason"]
    assert len(runs_of(app, queues["id"])) == 1
    with app.app_context():
        assert hub_runs.end(first_runs["queue"], "finished")
    tick(app, at + timedelta(hours=4, seconds=10))
    started = firings(alice, made["queue"])[1]
    assert started["outcome"] == "started" and started["run_id"]
    assert [r.id for r in runs_of(app, queues["id"])][1] == started["run_id"]


def test_an_aborting_firing_starts_its_run_once_the_aborted_one_played_its_rollbacks(app,
                                                                                    alice):
    saved = create(alice, document=runnable())
    made = schedule(alice, saved["id"], overlap="abort", cron="0 */2 * * *")
    at = first_time(made)
    assert tick(app, at + timedelta(seconds=1)) == 1
    [first] = runs_of(app, saved["id"])
    with app.app_context():
        assert hub_runs.claim(first.id, "a-worker") is not None  # running
    assert tick(app, at + timedelta(hours=2, seconds=1)) == 1
    # Asked to stop with its rollbacks; the next run waits for them to be played, not beside
    # them (nor past the workspace's runs at once).
    [aborting] = runs_of(app, saved["id"])
    assert (aborting.status, aborting.desired) == ("running", "abort")
    assert firings(alice, made)[0]["outcome"] == "waiting"
    tick(app, at + timedelta(hours=2, seconds=10))
    assert len(runs_of(app, saved["id"])) == 1
    with app.app_context():
        assert hub_runs.end(first.id, "aborted", worker="a-worker")
    assert tick(app, at + timedelta(hours=2, seconds=20)) == 1
    started = firings(alice, made)[0]
    assert started["outcome"] == "started"
    assert [r.id for r in runs_of(app, saved["id"])] == [first.id, started["run_id"]]


def test_a_firing_that_waits_does_not_start_once_its_schedule_is_disabled(app, alice):
    saved = create(alice, document=runnable())
    made = schedule(alice, saved["id"], overlap="queue", cron="0 */2 * * *")
    at = first_time(made)
    assert tick(app, at + timedelta(seconds=1)) == 1
    assert tick(app, at + timedelta(hours=2, seconds=1)) == 1
    assert firings(alice, made)[0]["outcome"] == "waiting"
    disabled = alice.patch(f"/api/v1/schedules/{made['id']}", json={"enabled": False},
                           headers={"X-CSRF-Token": alice.get_cookie("chaoshub_csrf").value})
    assert disabled.status_code == 200, disabled.get_json()
    [first] = runs_of(app, saved["id"])
    with app.app_context():
        assert hub_runs.end(first.id, "finished")
    assert tick(app, at + timedelta(hours=2, seconds=30)) == 1
    waited = firings(alice, made)[0]
    assert (waited["outcome"], waited["run_id"]) == ("skipped", None)
    assert waited["reason"] == "the schedule was disabled"
    assert [r.id for r in runs_of(app, saved["id"])] == [first.id]


def test_a_firing_outside_the_allowed_windows_is_skipped_and_inside_it_runs(app, alice):
    saved = create(alice, document=runnable())
    made = schedule(alice, saved["id"], overlap="queue")
    at = first_time(made).astimezone(datetime.now().astimezone().tzinfo)
    url = "/api/v1/orgs/alice/workspaces/Personal/policy"
    headers = {"X-CSRF-Token": alice.get_cookie("chaoshub_csrf").value}
    utc = at.astimezone(datetime.fromisoformat("2000-01-01T00:00+00:00").tzinfo)
    days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    later = {"days": days, "start": (utc + timedelta(hours=2)).strftime("%H:%M"),
             "end": (utc + timedelta(hours=3)).strftime("%H:%M")}
    assert alice.put(url, json={"allowed_windows": [later], "windows_time_zone": "UTC"},
                     headers=headers).status_code == 200
    assert tick(app, at + timedelta(seconds=1)) == 1
    [skipped] = firings(alice, made)
    assert skipped["outcome"] == "skipped"
    assert skipped["reason"].startswith("outside the allowed windows")
    # An overnight window that holds the next firing.
    around = {"days": days, "start": (utc - timedelta(hours=1)).strftime("%H:%M"),
              "end": (utc + timedelta(hours=1)).strftime("%H:%M")}
    assert alice.put(url, json={"allowed_windows": [later, around],
                                "windows_time_zone": "UTC"}, headers=headers).status_code == 200
    assert tick(app, at + timedelta(minutes=1, seconds=1)) == 1
    assert firings(alice, made)[0]["outcome"] == "started"


def test_the_kill_switch_pauses_the_schedules_of_the_org_and_nothing_is_owed_after(app,
                                                                                    alice):
    saved = create(alice, document=runnable())
    made = schedule(alice, saved["id"], missed="run_once")
    at = first_time(made)
    switch = "/api/v1/orgs/alice/kill-switch"
    assert post_json(alice, switch, {"engaged": True, "reason": "incident"}).status_code == 200
    assert tick(app, at + timedelta(seconds=1)) == 1
    assert tick(app, at + timedelta(minutes=1, seconds=1)) == 1
    assert [f["reason"] for f in firings(alice, made)] == ["kill switch engaged"] * 2
    assert post_json(alice, switch, {"engaged": False}).status_code == 200
    # Released: the next firing runs, and the paused ones are not run once after it.
    assert tick(app, at + timedelta(minutes=2, seconds=1)) == 1
    latest = firings(alice, made)
    assert [f["outcome"] for f in latest] == ["started", "skipped", "skipped"]
    assert latest[0]["reason"] == ""
    assert len(runs_of(app, saved["id"])) == 1


def test_a_firing_whose_owner_may_no_longer_run_there_is_skipped(app, alice):
    bob = signed_up_client(app, "bob")
    post_json(alice, "/api/v1/orgs", {"name": "team"})
    post_json(alice, "/api/v1/orgs/team/workspaces", {"name": "ops"})
    assert post_json(alice, "/api/v1/orgs/team/members",
                     {"username": "bob", "role": "member"}).status_code == 201
    saved = create(alice, "team", "ops", runnable())
    made = schedule(bob, saved["id"])
    assert made["created_by_name"] == "bob"
    removed = alice.delete("/api/v1/orgs/team/members/bob",
                           headers={"X-CSRF-Token": alice.get_cookie("chaoshub_csrf").value})
    assert removed.status_code == 204, removed.get_json()
    assert tick(app, first_time(made) + timedelta(seconds=1)) == 1
    [skipped] = firings(alice, made)
    assert skipped["outcome"] == "skipped"
    assert skipped["reason"].startswith(
        "its owner may no longer run experiments in this workspace")
    assert "paused" not in skipped["reason"]  # once may be a call to another process failing
    assert alice.get(f"/api/v1/schedules/{made['id']}").get_json()["enabled"] is True
    assert tick(app, first_time(made) + timedelta(minutes=1, seconds=1)) == 1
    again = firings(alice, made)[0]
    assert "refused twice in a row" in again["reason"]
    assert "paused until someone who may run it here enables it again" in again["reason"]
    assert runs_of(app, saved["id"]) == []
    # Paused, not skipping every firing to come.
    paused = alice.get(f"/api/v1/schedules/{made['id']}").get_json()
    assert paused["enabled"] is False and paused["next_fire_times"] == []
    # The org hears of it: its feed and its audit log, once.
    [told] = [e for e in alice.get("/api/v1/orgs/team/activity").get_json()["entries"]
              if e["kind"] == "schedule.paused"]
    assert told["summary"] == (f"A schedule of {saved['title']} was paused: bob, whom it runs "
                               "as, may no longer run experiments here")
    [audited] = [e for e in alice.get("/api/v1/orgs/team/audit").get_json()["entries"]
                 if e["event"] == "schedule.paused"]
    assert audited["details"]["schedule_id"] == made["id"]
    assert (audited["details"]["enabled"], audited["details"]["runs_as"]) == (False, "bob")
    assert tick(app, first_time(made) + timedelta(hours=1)) == 0
    assert len(firings(alice, made)) == 2
    # Whoever enables it again runs it as themselves.
    resumed = alice.patch(f"/api/v1/schedules/{made['id']}", json={"enabled": True},
                          headers={"X-CSRF-Token": alice.get_cookie("chaoshub_csrf").value})
    assert resumed.status_code == 200, resumed.get_json()
    assert resumed.get_json()["created_by_name"] == "alice"
    # The audit log tells who it acts as from now on.
    taken = alice.get("/api/v1/orgs/team/audit").get_json()["entries"]
    assert [e["details"]["runs_as"] for e in taken if e["event"] == "schedule.changed"] == [
        "alice"]
    # A few firings on: the first may be the minute already skipped (the ticks run ahead of
    # the clock here).
    later = datetime.fromisoformat(resumed.get_json()["next_fire_times"][-1])
    assert tick(app, later + timedelta(seconds=1)) == 1
    [run] = runs_of(app, saved["id"])
    assert run.created_by_name == "alice"


def test_a_waiting_firing_refused_after_a_refusal_pauses_its_schedule(app, alice):
    bob = signed_up_client(app, "bob")
    post_json(alice, "/api/v1/orgs", {"name": "team"})
    post_json(alice, "/api/v1/orgs/team/workspaces", {"name": "ops"})
    post_json(alice, "/api/v1/orgs/team/members", {"username": "bob", "role": "member"})
    saved = create(alice, "team", "ops", runnable())
    made = schedule(bob, saved["id"], overlap="queue", cron="0 */2 * * *")
    at = first_time(made)
    assert tick(app, at + timedelta(seconds=1)) == 1
    assert tick(app, at + timedelta(hours=2, seconds=1)) == 1
    assert firings(alice, made)[0]["outcome"] == "waiting"
    alice.delete("/api/v1/orgs/team/members/bob",
                 headers={"X-CSRF-Token": alice.get_cookie("chaoshub_csrf").value})
    assert tick(app, at + timedelta(hours=4, seconds=1)) == 1  # refused once: skipped
    assert alice.get(f"/api/v1/schedules/{made['id']}").get_json()["enabled"] is True
    [first] = runs_of(app, saved["id"])
    with app.app_context():
        assert hub_runs.end(first.id, "finished")
    # The waiting firing is refused too, right after: the schedule is paused, and said so.
    assert tick(app, at + timedelta(hours=4, seconds=10)) == 1
    waited = firings(alice, made)[1]
    assert waited["outcome"] == "skipped" and "refused twice in a row" in waited["reason"]
    assert alice.get(f"/api/v1/schedules/{made['id']}").get_json()["enabled"] is False
    kinds = [e["kind"] for e in alice.get("/api/v1/orgs/team/activity").get_json()["entries"]]
    assert kinds.count("schedule.paused") == 1
    assert [r.id for r in runs_of(app, saved["id"])] == [first.id]


def test_a_skipped_firing_owes_the_workspaces_webhooks_a_schedule_skipped(app, alice):
    from chaoshub.experiment.models import WebhookDelivery

    app.config.update(ALLOW_PRIVATE_TARGETS=True)
    hook = post_json(alice, "/api/v1/orgs/alice/workspaces/Personal/webhooks",
                     {"url": "http://127.0.0.1:9/hook", "events": ["schedule.skipped"]})
    assert hook.status_code == 201, hook.get_json()
    saved = create(alice, document=runnable())
    made = schedule(alice, saved["id"])
    assert post_json(alice, "/api/v1/orgs/alice/kill-switch",
                     {"engaged": True, "reason": "incident"}).status_code == 200
    assert tick(app, first_time(made) + timedelta(seconds=1)) == 1
    with app.app_context(), transaction("experiment") as session:
        owed = [(d.type, d.payload) for d in session.scalars(select(WebhookDelivery))]
    assert [t for t, _ in owed] == ["schedule.skipped"]
    payload = owed[0][1]
    assert payload["reason"] == "kill switch engaged"
    assert payload["schedule"]["id"] == made["id"]
    assert payload["experiment"]["id"] == saved["id"]


def test_the_scheduler_thread_backs_off_and_logs_once_while_the_database_is_away(
        app, tmp_path, signing_key_file, caplog):
    from chaoshub import create_app
    from tests.helpers import free_port

    # Nobody listens on this port: every tick's first query is refused.
    dead = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nowhere"
    away = create_app({
        "CHAOSHUB_INSTANCE_PATH": str(tmp_path), "CHAOSHUB_SIGNING_KEY_FILE":
        str(signing_key_file), "SECRET_KEY": "test-secret", "REDIS_URL": "",
        "EVENTS_POLL_SECONDS": 0,
        **{f"{s}_DATABASE_URL": dead for s in ("AUTH", "DASHBOARD", "EXPERIMENT")}})
    caplog.set_level("INFO", logger="chaoshub.experiment.scheduler")
    failures = 0
    for _ in range(4):
        failures = scheduler._round(away, TICK, failures)
    assert failures == 4
    logged = [r for r in caplog.records if r.name == "chaoshub.experiment.scheduler"]
    assert len(logged) == 1 and logged[0].exc_info  # the first failure, with its cause
    # Longer waits, never past half a firing's minute of grace; back to the tick after.
    assert [scheduler._pause(TICK, n) for n in range(5)] == [5, 10, 20, 30, 30]
    assert scheduler._pause(120.0, 3) == 120.0
    assert scheduler._round(app, TICK, failures) == 0
    assert "work again after 4 failed" in caplog.records[-1].getMessage()


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_a_firing_whose_job_redis_lost_gets_one_at_a_workers_next_maintenance(
        app, alice, monkeypatch):
    from chaoshub.experiment import queue, worker
    from tests.helpers import free_port

    saved = create(alice, document=runnable())
    made = schedule(alice, saved["id"])
    reachable = app.config["REDIS_URL"]
    # Redis away as it fires: the run is queued in the database, its job is not.
    app.config["REDIS_URL"] = f"redis://127.0.0.1:{free_port()}/0"
    assert tick(app, first_time(made) + timedelta(seconds=1)) == 1
    app.config["REDIS_URL"] = reachable
    [run] = runs_of(app, saved["id"])
    with app.app_context():
        runs_queue = queue.queue(app.config)
        assert runs_queue.fetch_job(f"run-{run.id}") is None
    # Without it, the run would stay queued until a worker restarted, and with overlap
    # "skip" every later firing would be skipped for it.
    monkeypatch.setattr(worker, "_app", app)
    worker.RunWorker([runs_queue], connection=runs_queue.connection).run_maintenance_tasks()
    assert runs_queue.fetch_job(f"run-{run.id}") is not None
    assert runs_queue.job_ids == [f"run-{run.id}"]
    worker.RunWorker([runs_queue], connection=runs_queue.connection).run_maintenance_tasks()
    assert runs_queue.job_ids == [f"run-{run.id}"]  # once



def test_firings_come_a_page_at_a_time_newest_first(app, alice):
    saved = create(alice, "alice", "Personal", runnable())
    made = schedule(alice, saved["id"], overlap="skip")
    for minute in range(3):
        assert tick(app, first_time(made) + timedelta(minutes=minute, seconds=1)) == 1
    url = f"/api/v1/schedules/{made['id']}/firings"
    first = alice.get(f"{url}?limit=2").get_json()
    assert len(first["firings"]) == 2 and first["next_cursor"]
    rest = alice.get(f"{url}?limit=2&cursor={first['next_cursor']}").get_json()
    assert rest["next_cursor"] is None
    times = [f["fire_at"] for f in first["firings"] + rest["firings"]]
    assert len(times) == 3 and times == sorted(times, reverse=True)
    assert alice.get(f"{url}?limit=2&cursor=nonsense").status_code == 400


def test_firings_past_their_days_go_but_each_schedules_latest_and_one_waiting(
        app, alice, monkeypatch):
    monkeypatch.setattr(schedules, "PRUNE_BATCH", 2)  # batch after batch
    # Due once a year: none fires while the thread ticks below.
    made = {title: schedule(alice, create(alice, document=runnable(title))["id"],
                            cron="0 0 1 1 *") for title in ("Busy", "Queued", "Rare")}
    now = datetime.now(UTC)
    kept = {"Busy": [1], "Queued": [50], "Rare": [45]}  # days ago
    with app.app_context(), transaction("experiment") as session:
        for title, ages in {"Busy": [40, 35, 31, 1], "Queued": [60, 50], "Rare": [45]}.items():
            for days in ages:
                waits = title == "Queued" and days == 50
                session.add(ScheduleFiring(
                    schedule_id=made[title]["id"], fire_at=now - timedelta(days=days),
                    outcome="waiting" if waits else "skipped", reason="", recorded_at=now))
    with app.app_context():
        assert schedules.prune_firings(now) == 4
    for title, ages in kept.items():
        assert [datetime.fromisoformat(f["fire_at"]) for f in firings(alice, made[title])] == [
            now - timedelta(days=days) for days in ages]
    # A worker's scheduler thread does it on its own, once an hour from its first tick on.
    with app.app_context(), transaction("experiment") as session:
        session.add(ScheduleFiring(schedule_id=made["Busy"]["id"], outcome="skipped",
                                   fire_at=now - timedelta(days=90), reason="", recorded_at=now))
    app.config["SCHEDULER_TICK_SECONDS"] = 0.1
    assert scheduler.start(app)
    try:
        wait_for(lambda: len(firings(alice, made["Busy"])) == 1, 10, "the thread's prune")
    finally:
        scheduler.stop(app)
