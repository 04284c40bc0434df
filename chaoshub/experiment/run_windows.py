"""A workspace's allowed windows (its run policy's days and hours in a time zone): whether a run
may start at a moment, and when the next window opens.

A window's days are the days it starts on: one from 22:00 to 06:00 on "fri" takes Friday night
into Saturday morning. Minutes count, seconds do not.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from chaoshub.dashboard.service import AllowedWindow, RunPolicy

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
OUTSIDE = "outside the allowed windows"


def _minutes(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


def _inside(window: AllowedWindow, local: datetime) -> bool:
    start, end = _minutes(window.start), _minutes(window.end)
    now = local.hour * 60 + local.minute
    today = WEEKDAYS[local.weekday()]
    if start < end:
        return today in window.days and start <= now < end
    yesterday = WEEKDAYS[(local.weekday() - 1) % 7]
    return (today in window.days and now >= start) or (yesterday in window.days and now < end)


def allowed_at(policy: RunPolicy, when: datetime) -> bool:
    """True when the policy lets a run start at `when` (always, without windows)."""
    if not policy.allowed_windows:
        return True
    local = when.astimezone(ZoneInfo(policy.windows_time_zone))
    return any(_inside(window, local) for window in policy.allowed_windows)


def next_opening(policy: RunPolicy, when: datetime) -> datetime | None:
    """When the next window opens after `when`, in the policy's time zone (`when` itself while
    one is open; None without windows)."""
    if not policy.allowed_windows:
        return None
    zone = ZoneInfo(policy.windows_time_zone)
    local = when.astimezone(zone)
    if allowed_at(policy, when):
        return local
    found = []
    for ahead in range(8):
        day = local.date() + timedelta(days=ahead)
        for window in policy.allowed_windows:
            if WEEKDAYS[day.weekday()] not in window.days:
                continue
            start = _minutes(window.start)
            # Built as a wall clock time and normalised through UTC: a start the clocks skip
            # (spring forward) opens at the first moment after it.
            opens = datetime.combine(day, time(start // 60, start % 60), tzinfo=zone)
            opens = opens.astimezone(ZoneInfo("UTC")).astimezone(zone)
            if opens > local:
                found.append(opens)
    return min(found) if found else None


def refusal(policy: RunPolicy, when: datetime) -> str:
    """Why a run may not start at `when` for the windows ("" when it may)."""
    if allowed_at(policy, when):
        return ""
    opens = next_opening(policy, when)
    then = f": the next opens {opens.isoformat(timespec='minutes')}" if opens else ""
    return f"{OUTSIDE} of the workspace's run policy{then}"
