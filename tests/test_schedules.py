"""Schedules through the API: made, shown with their next five fire times in their zone, changed,
deleted, refused when their values are wrong, and kept from those who may not see or run
their experiment; the allowed windows of the run policy, and their sums."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from chaoshub.dashboard.service import RunPolicy
from chaoshub.experiment import run_windows, schedules
from tests.conftest import post_json, signed_up_client
from tests.experiment_data import create, make_token
from tests.run_data import runnable

RUNNER = ["experiments:read", "executions:read", "executions:write", "runs:execute"]
POLICY = "/api/v1/orgs/{org}/workspaces/{ws}/policy"
PARIS = ZoneInfo("Europe/Paris")


@pytest.fixture
def alice(app):
    return signed_up_client(app, "alice")


@pytest.fixture
def saved(alice):
    return create(alice, document=runnable())


def schedules_of(experiment_id: str) -> str:
    return f"/api/v1/experiments/{experiment_id}/schedules"


def test_a_cron_schedule_shows_its_next_five_times_in_its_zone(app, alice, saved):
    made = post_json(alice, schedules_of(saved["id"]),
                     {"cron": "30 9 * * mon-fri", "time_zone": "Asia/Kolkata",
                      "environment": None, "dry": "activities", "missed": "run_once",
                      "overlap": "queue"})
    assert made.status_code == 201, made.get_json()
    schedule = made.get_json()
    assert made.headers["Location"] == f"/api/v1/schedules/{schedule['id']}"
    assert (schedule["kind"], schedule["version"], schedule["dry"], schedule["missed"],
            schedule["overlap"], schedule["enabled"]) == (
        "cron", "latest", "activities", "run_once", "queue", True)
    times = [datetime.fromisoformat(t) for t in schedule["next_fire_times"]]
    assert len(times) == 5 and times == sorted(times)
    for moment in times:
        # 09:30 in Kolkata (+05:30), on weekdays: 04:00 UTC.
        assert moment.utcoffset() == timedelta(hours=5, minutes=30)
        assert (moment.hour, moment.minute, moment.weekday() < 5) == (9, 30, True)
        assert moment.astimezone(ZoneInfo("UTC")).strftime("%H:%M") == "04:00"
    assert alice.get(f"/api/v1/schedules/{schedule['id']}").get_json() == schedule
    listed = alice.get(schedules_of(saved["id"])).get_json()
    assert [s["id"] for s in listed["schedules"]] == [schedule["id"]]
    feed = alice.get("/api/v1/orgs/alice/activity").get_json()["entries"]
    assert "alice added a schedule to Run me" in [e["summary"] for e in feed]


def test_a_schedule_owed_since_the_workers_stopped_previews_what_is_to_come(app, alice, saved):
    from sqlalchemy import update

    from chaoshub.core.db import transaction
    from chaoshub.experiment.models import Schedule

    made = post_json(alice, schedules_of(saved["id"]), {"cron": "0 * * * *"}).get_json()
    # No worker for a day: the firing owed is a day old.
    owed = datetime.fromisoformat(made["next_fire_times"][0]) - timedelta(days=1)
    with app.app_context(), transaction("experiment") as session:
        session.execute(update(Schedule).where(Schedule.id == made["id"])
                        .values(next_fire_at=owed))
    now = datetime.now(ZoneInfo("UTC"))
    times = [datetime.fromisoformat(t) for t in
             alice.get(f"/api/v1/schedules/{made['id']}").get_json()["next_fire_times"]]
    # The owed one first (a worker back fires or skips it), then the hours to come, not the
    # day's hours gone by.
    assert times[0] == owed and len(times) == 5
    assert all(t > now for t in times[1:]), times
    upcoming = alice.get("/api/v1/orgs/alice/workspaces/Personal/schedules/upcoming")
    assert [datetime.fromisoformat(u["fire_at"]) for u in upcoming.get_json()["upcoming"]] \
        == times


def test_the_preview_follows_the_zone_across_a_change_of_summer_time():
    # Paris leaves summer time on 2026-10-25: 02:30 comes twice, and fires once.
    after = datetime(2026, 10, 23, 12, tzinfo=PARIS)
    times = schedules.fire_times("cron", "30 2 * * *", None, "Europe/Paris", after)
    assert [t.isoformat() for t in times] == [
        "2026-10-24T02:30:00+02:00", "2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00",
        "2026-10-27T02:30:00+01:00", "2026-10-28T02:30:00+01:00"]
    # And enters it on 2026-03-29: 02:30 does not happen that night; 03:00 stands for it.
    spring = schedules.fire_times("cron", "30 2 * * *", None, "Europe/Paris",
                                  datetime(2026, 3, 27, 12, tzinfo=PARIS), 3)
    assert [t.isoformat() for t in spring] == [
        "2026-03-28T02:30:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"]
    # In UTC the same wall clock time moves by an hour.
    assert {t.astimezone(ZoneInfo("UTC")).hour for t in times} == {0, 1}


def test_a_one_off_schedule_fires_once_and_must_be_to_come(app, alice, saved):
    later = (datetime.now(PARIS) + timedelta(days=2)).replace(microsecond=0)
    naive = later.replace(tzinfo=None).isoformat()
    made = post_json(alice, schedules_of(saved["id"]),
                     {"kind": "once", "at": naive, "time_zone": "Europe/Paris", "version": 1})
    assert made.status_code == 201, made.get_json()
    assert made.get_json()["next_fire_times"] == [later.isoformat()]
    assert made.get_json()["version"] == 1
    past = post_json(alice, schedules_of(saved["id"]),
                     {"kind": "once", "at": "2020-01-01T09:00:00+00:00"})
    assert past.status_code == 422
    assert past.get_json()["details"][0]["pointer"] == "/at"


@pytest.mark.parametrize("body, pointer", [
    ({"cron": "61 * * * *"}, "/cron"),
    ({"cron": "* * * *"}, "/cron"),
    ({"cron": "0 0 30 2 *"}, "/cron"),
    ({"cron": "* * * * *", "time_zone": "Mars/Olympus"}, "/time_zone"),
    ({"cron": "* * * * *", "time_zone": "../../etc/passwd"}, "/time_zone"),
    # The host's own zone: it would differ between the hub's machines, and move with them.
    ({"cron": "* * * * *", "time_zone": "localtime"}, "/time_zone"),
    ({"cron": "* * * * *", "time_zone": "posixrules"}, "/time_zone"),
    ({"kind": "once", "at": "next tuesday"}, "/at"),
    ({"kind": "once", "at": "2030-02-30T10:00"}, "/at"),
    ({"kind": "once"}, "/at"),
    # At the end of the calendar: in UTC, or in the schedule's zone, past year 9999.
    ({"kind": "once", "at": "9999-12-31T23:59", "time_zone": "America/New_York"}, "/at"),
    ({"kind": "once", "at": "9999-12-31T23:00Z", "time_zone": "Pacific/Kiritimati"}, "/at"),
    ({}, "/cron"),
    ({"cron": "* * * * *", "version": 7}, "/version"),
    ({"cron": "* * * * *", "version": 0}, "/version"),
    ({"cron": "* * * * *", "version": "newest"}, "/version"),
    ({"cron": "* * * * *", "environment": "nowhere"}, "/environment"),
    ({"cron": "* * * * *", "overlap": "wait"}, "/overlap"),
    ({"cron": "* * * * *", "missed": True}, "/missed"),
    ({"cron": "* * * * *", "at": "2030-01-01T00:00Z"}, "/cron"),
    ({"kind": "cron", "cron": "* * * * *", "at": "2030-01-01T00:00Z"}, "/at"),
    ({"cron": "* * * * *", "colour": "red"}, "/colour"),
])
def test_bad_values_are_422_problems_and_nothing_is_kept(app, alice, saved, body, pointer):
    answer = post_json(alice, schedules_of(saved["id"]), body)
    assert answer.status_code == 422, answer.get_json()
    assert any(d["pointer"].startswith(pointer) for d in answer.get_json()["details"])
    assert alice.get(schedules_of(saved["id"])).get_json()["schedules"] == []


def test_a_body_that_is_no_object_is_a_400(app, alice, saved):
    answer = alice.post(schedules_of(saved["id"]), data="[1]",
                        content_type="application/json",
                        headers={"X-CSRF-Token": alice.get_cookie("chaoshub_csrf").value
                                 if alice.get_cookie("chaoshub_csrf") else ""})
    assert answer.status_code in (400, 403)


def test_changing_disabling_and_deleting_a_schedule(app, alice, saved):
    made = post_json(alice, schedules_of(saved["id"]), {"cron": "0 * * * *"}).get_json()
    url = f"/api/v1/schedules/{made['id']}"
    headers = {"X-CSRF-Token": alice.get_cookie("chaoshub_csrf").value}
    off = alice.patch(url, json={"enabled": False}, headers=headers)
    assert off.status_code == 200, off.get_json()
    assert (off.get_json()["enabled"], off.get_json()["next_fire_times"]) == (False, [])
    changed = alice.patch(url, json={"enabled": True, "cron": "15 6 * * *",
                                     "time_zone": "America/New_York"}, headers=headers)
    assert changed.status_code == 200, changed.get_json()
    first = datetime.fromisoformat(changed.get_json()["next_fire_times"][0])
    assert (first.hour, first.minute, first.tzinfo is not None) == (6, 15, True)
    assert alice.patch(url, json={"cron": "nope"}, headers=headers).status_code == 422
    assert alice.get(url).get_json()["cron"] == "15 6 * * *"
    assert alice.delete(url, headers=headers).status_code == 204
    assert alice.get(url).status_code == 404
    assert alice.get(f"{url}/firings").status_code == 404
    audit = alice.get("/api/v1/orgs/alice/audit").get_json()
    kinds = [e["event"] for e in audit["entries"]]
    assert {"schedule.created", "schedule.changed", "schedule.deleted"} <= set(kinds)


def test_readers_see_schedules_only_runners_change_them_outsiders_see_nothing(app, alice):
    bob = signed_up_client(app, "bob")
    eve = signed_up_client(app, "eve")
    post_json(alice, "/api/v1/orgs", {"name": "team"})
    post_json(alice, "/api/v1/orgs/team/workspaces", {"name": "ops"})
    assert post_json(alice, "/api/v1/orgs/team/members",
                     {"username": "bob", "role": "viewer"}).status_code == 201
    saved = create(alice, "team", "ops", runnable())
    made = post_json(alice, schedules_of(saved["id"]), {"cron": "0 3 * * *"}).get_json()
    url = f"/api/v1/schedules/{made['id']}"

    # A viewer reads them and their history, and changes nothing.
    assert bob.get(url).status_code == 200
    assert bob.get(f"{url}/firings").get_json() == {"firings": [], "next_cursor": None}
    assert post_json(bob, schedules_of(saved["id"]), {"cron": "* * * * *"}).status_code == 403
    bob_headers = {"X-CSRF-Token": bob.get_cookie("chaoshub_csrf").value}
    assert bob.patch(url, json={"enabled": False}, headers=bob_headers).status_code == 403
    assert bob.delete(url, headers=bob_headers).status_code == 403
    # An outsider of the private workspace: as if there were none.
    assert eve.get(url).status_code == 404
    assert eve.get(schedules_of(saved["id"])).status_code == 404
    assert eve.get(f"{url}/firings").status_code == 404
    assert post_json(eve, schedules_of(saved["id"]), {"cron": "* * * * *"}).status_code == 404
    eve_headers = {"X-CSRF-Token": eve.get_cookie("chaoshub_csrf").value}
    assert eve.delete(url, headers=eve_headers).status_code == 404
    # A token without runs:execute reads, and may not schedule.
    reader = make_token(alice, ["experiments:read", "executions:read"])
    client = app.test_client()
    assert client.get(url, headers={"Authorization": f"Bearer {reader}"}).status_code == 200
    assert client.post(schedules_of(saved["id"]), json={"cron": "* * * * *"},
                       headers={"Authorization": f"Bearer {reader}"}).status_code == 403
    runner = make_token(alice, RUNNER)
    assert client.post(schedules_of(saved["id"]), json={"cron": "* * * * *"},
                       headers={"Authorization": f"Bearer {runner}"}).status_code == 201
    assert alice.get(url).get_json()["enabled"] is True


def test_a_member_cannot_make_a_schedule_run_in_a_protected_environment_by_changing_it(app,
                                                                                      alice):
    bob = signed_up_client(app, "bob")
    post_json(alice, "/api/v1/orgs", {"name": "team"})
    post_json(alice, "/api/v1/orgs/team/workspaces", {"name": "ops"})
    assert post_json(alice, "/api/v1/orgs/team/members",
                     {"username": "bob", "role": "member"}).status_code == 201
    env = post_json(alice, "/api/v1/orgs/team/workspaces/ops/environments",
                    {"name": "prod", "protected": True})
    assert env.status_code == 201, env.get_json()
    saved = create(alice, "team", "ops", runnable())
    made = post_json(alice, schedules_of(saved["id"]),
                     {"cron": "0 3 * * *", "environment": "prod", "enabled": False})
    assert made.status_code == 201, made.get_json()
    url = f"/api/v1/schedules/{made.get_json()['id']}"
    headers = {"X-CSRF-Token": bob.get_cookie("chaoshub_csrf").value}
    # It fires as alice, who may run in prod: bob, who may not, cannot enable or retime it.
    for change in ({"enabled": True}, {"cron": "* * * * *"}, {"version": 1}):
        refused = bob.patch(url, json=change, headers=headers)
        assert refused.status_code == 403, (change, refused.get_json())
        assert "protected" in refused.get_json()["message"]
    kept = alice.get(url).get_json()
    assert (kept["enabled"], kept["cron"], kept["version"]) == (False, "0 3 * * *", "latest")
    # Taking prod out, or only disabling, runs nothing there: that stays his to do.
    assert bob.patch(url, json={"enabled": False}, headers=headers).status_code == 200
    moved = bob.patch(url, json={"environment": None, "enabled": True}, headers=headers)
    assert moved.status_code == 200, moved.get_json()
    assert moved.get_json()["environment"] is None


def test_a_schedule_moved_with_its_experiment_stops_if_it_names_an_environment(app, alice):
    post_json(alice, "/api/v1/orgs", {"name": "team"})
    post_json(alice, "/api/v1/orgs/team/workspaces", {"name": "ops"})
    for ws in ("alice/workspaces/Personal", "team/workspaces/ops"):
        made = post_json(alice, f"/api/v1/orgs/{ws}/environments", {"name": "prod"})
        assert made.status_code == 201, made.get_json()
    saved = create(alice, document=runnable())
    named = post_json(alice, schedules_of(saved["id"]),
                      {"cron": "0 3 * * *", "environment": "prod"}).get_json()
    plain = post_json(alice, schedules_of(saved["id"]), {"cron": "0 4 * * *"}).get_json()
    moved = alice.post(f"/api/v1/experiments/{saved['id']}/move",
                       json={"org": "team", "workspace": "ops"},
                       headers={"X-CSRF-Token": alice.get_cookie("chaoshub_csrf").value})
    assert moved.status_code == 200, moved.get_json()
    # "prod" now names ops's environment, with its own targets and secrets: not what the
    # schedule was made for, so it waits to be looked at and enabled again.
    after = alice.get(f"/api/v1/schedules/{named['id']}").get_json()
    assert (after["enabled"], after["environment"], after["next_fire_times"]) == (
        False, "prod", [])
    assert alice.get(f"/api/v1/schedules/{plain['id']}").get_json()["enabled"] is True


def test_the_upcoming_runs_of_a_workspace_soonest_first(app, alice):
    first = create(alice, document=runnable("First"))
    second = create(alice, document=runnable("Second"))
    post_json(alice, schedules_of(first["id"]), {"cron": "0 */6 * * *"})
    post_json(alice, schedules_of(second["id"]), {"cron": "30 */4 * * *",
                                                  "time_zone": "Asia/Kolkata"})
    found = alice.get("/api/v1/orgs/alice/workspaces/Personal/schedules/upcoming?count=8")
    assert found.status_code == 200, found.get_json()
    upcoming = found.get_json()["upcoming"]
    assert len(upcoming) == 8
    times = [datetime.fromisoformat(u["fire_at"]) for u in upcoming]
    assert times == sorted(times)
    assert {u["experiment_title"] for u in upcoming} == {"First", "Second"}


# The allowed windows ------------------------------------------------------------------------


def policy(*windows: dict, zone: str = "Europe/Paris") -> RunPolicy:
    return RunPolicy(allowed_windows=list(windows), windows_time_zone=zone)


def test_windows_inside_outside_and_overnight():
    office = policy({"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00",
                     "end": "17:00"})
    monday = datetime(2026, 12, 7, tzinfo=PARIS)  # a Monday
    assert run_windows.allowed_at(office, monday.replace(hour=9))
    assert run_windows.allowed_at(office, monday.replace(hour=16, minute=59))
    assert not run_windows.allowed_at(office, monday.replace(hour=17))
    assert not run_windows.allowed_at(office, monday.replace(hour=8, minute=59))
    # In another zone, the same moment: 08:30 UTC is 09:30 in Paris.
    assert run_windows.allowed_at(office, datetime(2026, 12, 7, 8, 30,
                                                   tzinfo=ZoneInfo("UTC")))
    saturday = monday + timedelta(days=5)
    assert not run_windows.allowed_at(office, saturday.replace(hour=10))
    assert run_windows.next_opening(office, saturday.replace(hour=10)) == \
        (monday + timedelta(days=7)).replace(hour=9)
    assert "the next opens 2026-12-14T09:00+01:00" in run_windows.refusal(
        office, saturday.replace(hour=10))

    # Friday night into Saturday morning.
    night = policy({"days": ["fri"], "start": "22:00", "end": "06:00"})
    friday = monday + timedelta(days=4)
    assert run_windows.allowed_at(night, friday.replace(hour=23))
    assert run_windows.allowed_at(night, saturday.replace(hour=5, minute=59))
    assert not run_windows.allowed_at(night, saturday.replace(hour=6))
    assert not run_windows.allowed_at(night, friday.replace(hour=5))  # Thursday's night
    assert not run_windows.allowed_at(night, saturday.replace(hour=23))
    # No windows: always.
    assert run_windows.allowed_at(RunPolicy(), saturday)
    assert run_windows.refusal(RunPolicy(), saturday) == ""


def test_the_policy_api_keeps_windows_and_refuses_bad_ones(app, alice):
    url = POLICY.format(org="alice", ws="Personal")
    headers = {"X-CSRF-Token": alice.get_cookie("chaoshub_csrf").value}
    windows = [{"days": ["mon", "fri"], "start": "22:00", "end": "06:00"}]
    kept = alice.put(url, json={"allowed_windows": windows, "windows_time_zone": "Asia/Tokyo"},
                     headers=headers)
    assert kept.status_code == 200, kept.get_json()
    assert alice.get(url).get_json()["allowed_windows"] == windows
    assert alice.get(url).get_json()["windows_time_zone"] == "Asia/Tokyo"
    for bad, pointer in [({"windows_time_zone": "Nowhere/Land"}, "/windows_time_zone"),
                         ({"allowed_windows": [{"days": ["mon"], "start": "25:00",
                                                "end": "26:00"}]},
                          "/allowed_windows/0/start"),
                         ({"allowed_windows": [{"days": ["someday"], "start": "01:00",
                                                "end": "02:00"}]},
                          "/allowed_windows/0/days/0"),
                         ({"allowed_windows": [{"days": ["mon"], "start": "09:00",
                                                "end": "09:00"}]},
                          "/allowed_windows/0")]:
        refused = alice.put(url, json=bad, headers=headers)
        assert refused.status_code == 422, (bad, refused.get_json())
        assert pointer in [d["pointer"] for d in refused.get_json()["details"]], \
            refused.get_json()


def test_a_manual_run_outside_the_windows_is_refused_saying_when_the_next_opens(app, alice,
                                                                                 saved):
    now = datetime.now(PARIS)
    # A window of one minute, a day ago and so a week from now: closed now.
    gone = now - timedelta(days=1)
    window = {"days": [run_windows.WEEKDAYS[gone.weekday()]],
              "start": gone.strftime("%H:%M"),
              "end": (gone + timedelta(minutes=1)).strftime("%H:%M")}
    url = POLICY.format(org="alice", ws="Personal")
    headers = {"X-CSRF-Token": alice.get_cookie("chaoshub_csrf").value}
    assert alice.put(url, json={"allowed_windows": [window],
                                "windows_time_zone": "Europe/Paris"},
                     headers=headers).status_code == 200
    token = make_token(alice, RUNNER)
    refused = app.test_client().post(f"/api/v1/experiments/{saved['id']}/runs", json={},
                                     headers={"Authorization": f"Bearer {token}"})
    assert refused.status_code == 409, refused.get_json()
    message = refused.get_json()["message"]
    assert "outside the allowed windows" in message and "the next opens" in message
    # Always allowed again with no windows.
    assert alice.put(url, json={}, headers=headers).status_code == 200
    assert app.test_client().post(f"/api/v1/experiments/{saved['id']}/runs", json={},
                                  headers={"Authorization": f"Bearer {token}"}
                                  ).status_code == 202


def test_the_schedule_pages_show_readers_no_forms_and_outsiders_nothing(app, alice):
    bob = signed_up_client(app, "bob")
    eve = signed_up_client(app, "eve")
    post_json(alice, "/api/v1/orgs", {"name": "team"})
    post_json(alice, "/api/v1/orgs/team/workspaces", {"name": "ops"})
    post_json(alice, "/api/v1/orgs/team/members", {"username": "bob", "role": "viewer"})
    saved = create(alice, "team", "ops", runnable())
    made = post_json(alice, schedules_of(saved["id"]),
                     {"cron": "0 6 * * *", "time_zone": "Asia/Kolkata"}).get_json()
    page = f"/team/ops/experiment/{saved['id']}"
    html = {"Accept": "text/html"}
    mine = alice.get(page, headers=html).get_data(as_text=True)
    assert 'data-testid="schedule-form"' in mine and "06:00 (+05:30)" in mine
    theirs = bob.get(page, headers=html).get_data(as_text=True)
    assert "06:00 (+05:30)" in theirs and 'data-testid="schedule-form"' not in theirs
    assert bob.get(f"{page}/schedules/{made['id']}", headers=html).status_code == 200
    upcoming = bob.get("/team/ops/-/schedules?tz=Asia/Kolkata").get_data(as_text=True)
    assert upcoming.count('data-testid="upcoming-run"') == 5 and "06:00" in upcoming
    assert eve.get("/team/ops/-/schedules").status_code == 404
    assert eve.get(f"{page}/schedules/{made['id']}", headers=html).status_code == 404
    # A viewer's form post changes nothing.
    refused = bob.post(f"{page}/schedules", data={"cron": "* * * * *",
                                                  "csrf_token": bob.get_cookie(
                                                      "chaoshub_csrf").value})
    assert refused.status_code == 403
    assert len(alice.get(schedules_of(saved["id"])).get_json()["schedules"]) == 1
