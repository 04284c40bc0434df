"""A workspace's run policy as its settings form shows and sends it."""

from __future__ import annotations

from typing import get_args

from pydantic import ValidationError
from werkzeug.datastructures import MultiDict

from chaoshub.core.errors import ValidationFailed, pydantic_problems
from chaoshub.dashboard.schemas import WEEKDAYS, AllowedWindow, RunPolicy

# The choices of the provider types' checkboxes and of the executor: all the policy knows.
PROVIDER_TYPES: tuple[str, ...] = get_args(
    get_args(RunPolicy.model_fields["provider_types"].annotation)[0])
EXECUTORS: tuple[str, ...] = get_args(RunPolicy.model_fields["executor"].annotation)
LISTS = ("python_modules", "process_paths", "http_hosts")  # one a line in their text areas
NUMBERS = ("max_duration_seconds", "max_concurrent_runs")
SWITCHES = ("dry_run_first", "allow_runtime_python", "allow_vault")  # checkboxes
WINDOWS = "allowed_windows"  # one window a line: "mon-fri 09:00-17:00"
WINDOW_RULE = ('one window a line: days and hours, such as "mon-fri 09:00-17:00" or '
               '"sat,sun 22:00-06:00" (overnight)')


def window_line(window: AllowedWindow) -> str:
    """A window as its line in the form: "mon-fri 09:00-17:00"."""
    days = [WEEKDAYS.index(day) for day in window.days]
    runs: list[list[int]] = []
    for day in sorted(set(days)):
        if runs and day == runs[-1][-1] + 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    named = ",".join(WEEKDAYS[r[0]] if len(r) == 1 else f"{WEEKDAYS[r[0]]}-{WEEKDAYS[r[-1]]}"
                     for r in runs)
    return f"{named} {window.start}-{window.end}"


def window_of(line: str) -> dict:
    """The window a line of the form says; ValueError when it says none."""
    parts = line.lower().split()
    if len(parts) != 2 or parts[1].count("-") != 1:
        raise ValueError(WINDOW_RULE)
    days: list[str] = []
    for named in parts[0].split(","):
        first, _, last = named.partition("-")
        if first not in WEEKDAYS or (last and last not in WEEKDAYS):
            raise ValueError(WINDOW_RULE)
        start, end = WEEKDAYS.index(first), WEEKDAYS.index(last or first)
        span = range(start, end + 1) if start <= end else [*range(start, 7), *range(0, end + 1)]
        days += [WEEKDAYS[d] for d in span if WEEKDAYS[d] not in days]
    start, end = parts[1].split("-")
    return {"days": days, "start": start, "end": end}


def policy_fields(policy: RunPolicy) -> dict:
    """A run policy as its form shows it: lists one a line, numbers as text."""
    fields = policy.model_dump(mode="json")
    return {**fields, **{name: "\n".join(fields[name]) for name in LISTS},
            **{name: str(fields[name]) for name in NUMBERS},
            WINDOWS: "\n".join(window_line(w) for w in policy.allowed_windows)}


def submitted_policy(form: MultiDict, current: RunPolicy) -> dict:
    """The run policy form as it was sent, shaped as `policy_fields` shapes a policy; what the
    form does not hold is the `current` policy's."""
    return {**policy_fields(current),
            "provider_types": form.getlist("provider_types"),
            **{name: form.get(name, "") for name in LISTS},
            **{name: form.get(name, "").strip() for name in NUMBERS},
            **{name: form.get(name) == "on" for name in SWITCHES},
            **({"executor": form["executor"]} if "executor" in form else {}),
            **({WINDOWS: form[WINDOWS]} if WINDOWS in form else {}),
            **({"windows_time_zone": form["windows_time_zone"].strip()}
               if "windows_time_zone" in form else {})}


def policy_from(shown: dict) -> RunPolicy:
    """The policy a submitted form asks for; ValidationFailed, with each field's pointer, when
    it is not a valid one."""
    lines = {name: [line.strip() for line in shown[name].splitlines() if line.strip()]
             for name in LISTS}
    windows = []
    for number, line in enumerate(ln.strip() for ln in shown[WINDOWS].splitlines()
                                  if ln.strip()):
        try:
            windows.append(window_of(line))
        except ValueError as error:
            raise ValidationFailed("the run policy is not valid", [
                {"pointer": f"/{WINDOWS}", "message": f"line {number + 1}: {error}"}]) from error
    try:
        return RunPolicy(**{**shown, **lines, WINDOWS: windows})
    except ValidationError as error:
        raise ValidationFailed("the run policy is not valid",
                               pydantic_problems(error)) from error
