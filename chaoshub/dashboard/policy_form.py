"""A workspace's run policy as its settings form shows and sends it."""

from __future__ import annotations

from typing import get_args

from pydantic import ValidationError
from werkzeug.datastructures import MultiDict

from chaoshub.core.errors import ValidationFailed, pydantic_problems
from chaoshub.dashboard.schemas import RunPolicy

# The choices of the provider types' checkboxes and of the executor: all the policy knows.
PROVIDER_TYPES: tuple[str, ...] = get_args(
    get_args(RunPolicy.model_fields["provider_types"].annotation)[0])
EXECUTORS: tuple[str, ...] = get_args(RunPolicy.model_fields["executor"].annotation)
LISTS = ("python_modules", "process_paths", "http_hosts")  # one a line in their text areas
NUMBERS = ("max_duration_seconds", "max_concurrent_runs")
SWITCHES = ("dry_run_first", "allow_runtime_python", "allow_vault")  # checkboxes


def policy_fields(policy: RunPolicy) -> dict:
    """A run policy as its form shows it: lists one a line, numbers as text."""
    fields = policy.model_dump(mode="json")
    return {**fields, **{name: "\n".join(fields[name]) for name in LISTS},
            **{name: str(fields[name]) for name in NUMBERS}}


def submitted_policy(form: MultiDict, current: RunPolicy) -> dict:
    """The run policy form as it was sent, shaped as `policy_fields` shapes a policy; what the
    form does not hold is the `current` policy's."""
    return {**policy_fields(current),
            "provider_types": form.getlist("provider_types"),
            **{name: form.get(name, "") for name in LISTS},
            **{name: form.get(name, "").strip() for name in NUMBERS},
            **{name: form.get(name) == "on" for name in SWITCHES},
            **({"executor": form["executor"]} if "executor" in form else {})}


def policy_from(shown: dict) -> RunPolicy:
    """The policy a submitted form asks for; ValidationFailed, with each field's pointer, when
    it is not a valid one."""
    lines = {name: [line.strip() for line in shown[name].splitlines() if line.strip()]
             for name in LISTS}
    try:
        return RunPolicy(**{**shown, **lines})
    except ValidationError as error:
        raise ValidationFailed("the run policy is not valid",
                               pydantic_problems(error)) from error
