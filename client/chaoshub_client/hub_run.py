"""`chaoshub hub-run`: run an experiment on the hub's workers, follow it, and gate CI on it.

Exit codes: 0 the run passed; 1 it deviated or failed (steady state not met before or after
the method, a probe that errored, an activity that failed); 2 it could not run or its end is
unknown (refused by policy or the kill switch, aborted, interrupted, no answer in --timeout, a
hub that cannot be reached, bad arguments, an experiment not found).
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import click
import requests
import yaml

from chaoshub_client.tokens import hidden, trimmed
from chaoshub_client.yaml_errors import yaml_problem

USER_AGENT = "chaoshub-hub-run/1"
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 30.0
# Each poll asks the hub to hold the answer this long at most: short enough for any proxy and
# for a hub served by sync workers, long enough not to ask often.
POLL_WAIT = 20
SETTLE_PAUSE = 2.0  # when the hub answered at once (it had no thread to wait in)
NETWORK_RETRIES = 5  # transient failures in a row before the hub is taken as unreachable
FAILED_OUTCOMES = ("deviated", "baseline-not-met", "probe-error")
ID_PATTERN = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

PASSED, FAILED, NOT_RUN = 0, 1, 2


class CannotRun(click.ClickException):
    """The run could not be started or followed to its end: exit code 2."""

    exit_code = NOT_RUN


class TimedOut(CannotRun):
    """The run had not ended by --timeout."""


class Stopped(BaseException):
    """The command was interrupted (Ctrl+C, or SIGTERM from a CI job being cancelled)."""


class Hub:
    """The hub the saved login names, spoken to with its token."""

    def __init__(self, url: str, token: str):
        self.url = url.rstrip("/")
        self.token = token
        self.http = requests.Session()
        self.http.headers.update({"Authorization": f"Bearer {token}",
                                  "Accept": "application/json", "User-Agent": USER_AGENT})

    def call(self, method: str, path: str, read_timeout: float = READ_TIMEOUT,
             **kwargs: Any) -> requests.Response:
        """One request; CannotRun when the hub cannot be reached."""
        try:
            return self.http.request(method, self.url + path, allow_redirects=False,
                                     timeout=(CONNECT_TIMEOUT, read_timeout), **kwargs)
        except requests.RequestException as exc:
            raise CannotRun(f"cannot reach {self.url}: {hidden(str(exc), self.token)}") \
                from exc

    def json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        """A request that must answer 2xx JSON; CannotRun saying what the hub said otherwise."""
        answer = self.call(method, path, **kwargs)
        if not 200 <= answer.status_code < 300:
            raise CannotRun(f"{method} {path}: {answer.status_code} {message(answer)}")
        try:
            body = answer.json()
        except ValueError as exc:
            raise CannotRun(f"{self.url}{path} did not answer with JSON: is this the hub's "
                            "address?") from exc
        if not isinstance(body, dict):
            raise CannotRun(f"{self.url}{path} did not answer as a ChaosHub does")
        return body


def message(answer: requests.Response) -> str:
    """What an error answer says, short."""
    try:
        body = answer.json()
        text = str(body.get("message") or body.get("error") or answer.reason)
        details = body.get("details")
        if isinstance(details, list) and details:
            text += " (" + "; ".join(str(d.get("message", d)) if isinstance(d, dict) else str(d)
                                     for d in details[:5]) + ")"
        return text[:500]
    except (ValueError, AttributeError):
        return str(answer.reason or "")[:200]


def answer_json(answer: requests.Response, doing: str) -> dict[str, Any]:
    """A 2xx answer's JSON object; CannotRun (exit 2, not 1: nothing says the run failed) when
    something else answered, such as a proxy's page."""
    try:
        body = answer.json()
    except ValueError as exc:
        raise CannotRun(f"{doing}: the hub did not answer with JSON "
                        f"({answer.status_code})") from exc
    if not isinstance(body, dict):
        raise CannotRun(f"{doing}: the hub did not answer as a ChaosHub does")
    return body


def saved_login(settings_path: str) -> tuple[str, str]:
    """The hub's URL and token: CHAOSHUB_URL and CHAOSHUB_TOKEN when set (as the control reads
    them), else those `chaoshub login` saved."""
    url, token = os.environ.get("CHAOSHUB_URL"), os.environ.get("CHAOSHUB_TOKEN")
    if url and token:
        return url, trimmed(token)
    path = Path(settings_path).expanduser()
    try:
        settings = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise CannotRun(f"no login saved at {path}: run `chaoshub login` first") from exc
    except yaml.YAMLError as exc:
        raise CannotRun(f"{path} is not valid YAML: {yaml_problem(exc)}") from exc
    hub = (settings.get("vendor") or {}).get("chaoshub") if isinstance(settings, dict) else None
    if not isinstance(hub, dict) or not hub.get("hub_url") or not hub.get("token"):
        raise CannotRun(f"{path} holds no ChaosHub login: run `chaoshub login` first")
    return url or str(hub["hub_url"]), trimmed(token or str(hub["token"]))


def parse_target(target: str) -> tuple[str, str, str]:
    """org, workspace and experiment (an id or a title, which may hold slashes)."""
    parts = target.split("/", 2)
    if len(parts) != 3 or not all(p.strip() for p in parts):
        raise click.BadParameter("name it as ORG/WORKSPACE/EXPERIMENT (an id or its title)",
                                 param_hint="TARGET")
    return parts[0], parts[1], parts[2]


def parse_var(text: str) -> tuple[str, str | int | float | bool]:
    """A configuration value `key=value`; numbers and true/false are sent as such."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise click.BadParameter(f"{text!r}: write it as key=value", param_hint="--var")
    try:
        parsed = json.loads(value)
    except ValueError:
        return key, value
    return key, parsed if isinstance(parsed, (bool, int, float)) else value


def find_experiment(hub: Hub, org: str, workspace: str, name: str) -> dict[str, Any]:
    """The experiment `name` (its id, or its exact title) in org/workspace; CannotRun when
    there is none or the title fits several."""
    if ID_PATTERN.match(name.lower()):
        answer = hub.call("GET", f"/api/v1/experiments/{name.lower()}")
        if answer.status_code == 200:
            return answer_json(answer, f"reading the experiment {name}")
    base = f"/api/v1/orgs/{quote(org, safe='')}/workspaces/{quote(workspace, safe='')}"
    found: list[dict[str, Any]] = []
    cursor = None
    for _ in range(100):  # at most 10,000 experiments looked through
        params: dict[str, Any] = {"search": name, "limit": 100}
        if cursor:
            params["cursor"] = cursor
        answer = hub.call("GET", f"{base}/experiments", params=params)
        if answer.status_code == 404:
            raise CannotRun(f"{org}/{workspace}: no such workspace that this token may see "
                            f"({message(answer)})")
        if answer.status_code != 200:
            raise CannotRun(f"listing the experiments of {org}/{workspace}: "
                            f"{answer.status_code} {message(answer)}")
        page = answer_json(answer, f"listing the experiments of {org}/{workspace}")
        found += [e for e in page.get("experiments", []) if e.get("title") == name]
        cursor = page.get("next_cursor")
        if not cursor:
            break
    if not found:
        raise CannotRun(f"{org}/{workspace} has no experiment titled or numbered {name!r}")
    if len(found) > 1:
        listed = "\n".join(f"  {e['id']}  (updated {e.get('updated_at', '?')})" for e in found)
        raise CannotRun(f"{len(found)} experiments of {org}/{workspace} are titled {name!r}: "
                        f"name one by its id\n{listed}")
    return found[0]


def verdict(hub: Hub, run: dict[str, Any]) -> tuple[int, str]:
    """The exit code an ended run gives, and why."""
    execution = run.get("execution")
    status = run.get("status")
    reason = f": {run['reason']}" if run.get("reason") else ""
    if status != "finished" or not execution:
        return NOT_RUN, f"the run ended {status}{reason}"
    outcome = execution.get("outcome")
    if outcome in FAILED_OUTCOMES:
        return FAILED, f"the run {outcome_text(outcome)}"
    if outcome != "passed":
        return NOT_RUN, f"the run ended {outcome}{reason}"
    detail = hub.call("GET", f"/api/v1/executions/{execution['id']}")
    activities = (answer_json(detail, f"reading the execution {execution['id']}")
                  .get("activities", []) if detail.status_code == 200 else [])
    failed = [a.get("name", "?") for a in activities if a.get("status") == "failed"]
    if execution.get("status") == "failed" or failed:
        return FAILED, "the run failed: " + (", ".join(failed) or "chaostoolkit says failed")
    return PASSED, "the run passed"


def outcome_text(outcome: str) -> str:
    """How an outcome reads in a sentence."""
    return {"deviated": "deviated: the steady state was not met after the method",
            "baseline-not-met": "failed: the steady state was not met before the method",
            "probe-error": "failed: a probe of the steady state errored"}.get(outcome, outcome)


def describe(event: dict[str, Any]) -> str:
    """A run event as a line of progress."""
    kind = event.get("type", "?")
    bits = [kind]
    if event.get("name"):
        bits.append(str(event["name"]))
    if event.get("phase") and kind.startswith("hypothesis"):
        bits.append(f"({event['phase']})")
    if kind == "activity-completed" and event.get("status"):
        bits.append(f"-> {event['status']}")
    if event.get("tolerance_met") is False:
        bits.append("(tolerance not met)")
    return "  " + " ".join(bits)


class Follower:
    """Prints a run's status changes and new events as its answers come in."""

    def __init__(self) -> None:
        self.status: str | None = None
        self.seen = 0

    def show(self, run: dict[str, Any]) -> None:
        """Print what changed since the last answer."""
        if run.get("status") != self.status:
            self.status = run.get("status")
            click.echo(f"run {run['id']}: {self.status}")
        for event in run.get("events") or []:
            if isinstance(event.get("seq"), int) and event["seq"] > self.seen:
                self.seen = event["seq"]
                click.echo(describe(event))


def follow(hub: Hub, run: dict[str, Any], deadline: float | None) -> dict[str, Any]:
    """Ask after the run with short waits until it has ended; CannotRun past the deadline."""
    follower = Follower()
    follower.show(run)
    failures = 0
    while not run.get("ended"):
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            raise TimedOut("the run had not ended within --timeout")
        wait = POLL_WAIT if left is None else max(1, min(POLL_WAIT, int(left)))
        asked = time.monotonic()
        try:
            answer = hub.call("GET", f"/api/v1/runs/{run['id']}", params={"wait": wait},
                              read_timeout=wait + READ_TIMEOUT)
        except CannotRun:
            failures += 1
            if failures >= NETWORK_RETRIES:
                raise
            time.sleep(SETTLE_PAUSE)
            continue
        if answer.status_code >= 500 or answer.status_code == 429:
            failures += 1
            if failures >= NETWORK_RETRIES:
                raise CannotRun(f"the hub keeps answering {answer.status_code}: "
                                f"{message(answer)}")
            time.sleep(SETTLE_PAUSE)
            continue
        if answer.status_code not in (200, 202):
            raise CannotRun(f"following run {run['id']}: {answer.status_code} "
                            f"{message(answer)}")
        failures = 0
        run = {**run, **answer_json(answer, f"following run {run['id']}")}
        follower.show(run)
        if not run.get("ended") and time.monotonic() - asked < 1:
            time.sleep(SETTLE_PAUSE)  # answered at once: the hub had no thread to wait in
    return run


def followed(hub: Hub, run: dict[str, Any], deadline: float | None,
             keep_running: bool) -> dict[str, Any]:
    """The run followed to its end; past the deadline, or when the command is stopped, it is
    aborted on the hub (unless `keep_running`) and CannotRun says so."""
    where = run.get("page_url") or run["id"]
    # A cancelled CI job gets SIGTERM: the run it started must not go on injecting faults.
    previous = signal.signal(signal.SIGTERM, _stopped)
    try:
        return follow(hub, run, deadline)
    except TimedOut as exc:
        raise CannotRun(exc.message + "; " + _left(hub, run, where, keep_running)) from None
    except (KeyboardInterrupt, Stopped):
        raise CannotRun("stopped; " + _left(hub, run, where, keep_running)) from None
    finally:
        signal.signal(signal.SIGTERM, previous)


def _stopped(_signal: int, _frame: Any) -> None:
    raise Stopped()


def _left(hub: Hub, run: dict[str, Any], where: str, keep_running: bool) -> str:
    # What became of the run the command stops following.
    if keep_running:
        return f"it goes on at {where}"
    try:
        answer = hub.call("POST", f"/api/v1/runs/{run['id']}/abort", json={"rollbacks": True})
    except CannotRun as exc:
        return f"it could not be aborted ({exc.message}): abort it at {where}"
    if answer.status_code == 200:
        return f"it was aborted, its rollbacks played: {where}"
    if answer.status_code == 409:
        return f"it ended meanwhile: {where}"
    return (f"it could not be aborted ({answer.status_code} {message(answer)}): "
            f"abort it at {where}")


@click.command("hub-run")
@click.argument("target")
@click.option("--wait/--no-wait", default=False,
              help="Wait for the run to end; the exit code then says how it went.")
@click.option("--junit", "junit", type=click.Path(dir_okay=False, writable=True),
              help="Write the execution's JUnit XML here (with --wait).")
@click.option("--timeout", type=click.IntRange(min=1), default=None,
              help="Seconds to wait at most (default: until the run ends; the hub stops runs "
                   "past its own maximum duration).")
@click.option("--keep-running", is_flag=True, default=False,
              help="Leave the run going on the hub when --timeout passes or the command is "
                   "stopped (by default it is aborted there, its rollbacks played).")
@click.option("--var", "variables", multiple=True, metavar="KEY=VALUE",
              help="A configuration value of the experiment (repeatable).")
@click.option("--environment", default=None,
              help="The workspace's environment to run in (its values and secrets).")
@click.option("--version", "version", type=click.IntRange(min=1), default=None,
              help="The experiment's version to run (default: its latest).")
@click.option("--dry", type=click.Choice(["activities", "actions", "probes", "pause"]),
              default=None, help="Skip these activities (as `chaos run --dry`).")
@click.option("--rollback-strategy",
              type=click.Choice(["default", "always", "never", "deviated"]), default=None,
              help="When rollbacks play (as `chaos run --rollback-strategy`).")
@click.option("--settings", "settings_path", default="~/.chaostoolkit/settings.yaml",
              show_default=True, type=click.Path(dir_okay=False),
              help="Where `chaoshub login` saved the hub's address and token.")
def hub_run(target, wait, junit, timeout, keep_running, variables, environment, version, dry,
            rollback_strategy, settings_path) -> None:
    """Run TARGET (ORG/WORKSPACE/EXPERIMENT: its id or its exact title) on the hub's workers.

    With --wait, follow it to its end and exit 0 when it passed, 1 when it deviated or failed,
    2 when it could not run or its end is unknown (refused, aborted, interrupted, timed out,
    hub unreachable, experiment not found).
    """
    if junit and not wait:
        raise click.UsageError("--junit needs --wait: the JUnit XML exists once the run ends")
    if timeout and not wait:
        raise click.UsageError("--timeout goes with --wait")
    if keep_running and not wait:
        raise click.UsageError("--keep-running goes with --wait")
    org, workspace, name = parse_target(target)
    configuration = dict(parse_var(v) for v in variables)
    url, token = saved_login(settings_path)
    hub = Hub(url, token)
    deadline = None if timeout is None else time.monotonic() + timeout
    experiment = find_experiment(hub, org, workspace, name)
    options: dict[str, Any] = {k: v for k, v in (
        ("version", version), ("dry", dry), ("rollback_strategy", rollback_strategy),
        ("environment", environment), ("configuration", configuration or None)) if v}
    # Started with a short wait of its own: a quick run needs no poll at all.
    first_wait = min(POLL_WAIT, timeout or POLL_WAIT) if wait else 0
    run = hub.json("POST", f"/api/v1/experiments/{experiment['id']}/runs", json=options,
                   params={"wait": first_wait}, read_timeout=first_wait + READ_TIMEOUT)
    click.echo(f"started a run of {experiment.get('title', name)!r}: "
               f"{run.get('page_url') or run['id']}")
    if not wait:
        return
    run = followed(hub, run, deadline, keep_running)
    code, why = verdict(hub, run)
    execution = run.get("execution")
    if junit and execution:
        answer = hub.call("GET", f"/api/v1/executions/{execution['id']}/junit",
                          headers={"Accept": "application/xml"})
        if answer.status_code != 200:
            raise CannotRun(f"the run ended but its JUnit XML could not be read: "
                            f"{answer.status_code} {message(answer)}")
        try:
            Path(junit).write_bytes(answer.content)
        except OSError as exc:
            raise CannotRun(f"the run ended but its JUnit XML could not be written: {exc}") \
                from exc
        click.echo(f"wrote the JUnit XML to {junit}")
    if execution:
        click.echo(f"report: {execution.get('page_url') or execution.get('report_url')}")
    click.echo(why, err=code != PASSED)
    sys.exit(code)
