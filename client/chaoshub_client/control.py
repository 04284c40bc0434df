"""The ChaosHub control for the Chaos Toolkit: `chaos run` reports each run to a hub.

Declare it in `~/.chaostoolkit/settings.yaml` (`chaoshub login` writes this) or in an
experiment's `controls`:

    controls:
      chaoshub:
        provider: {type: python, module: chaoshub_client.control}

At the start of the run it opens a run on the hub (`POST /api/v1/runs`), streams the run's
lifecycle events as they happen (the vocabulary of `chaos run --events-file`), and at the end
publishes the journal (`PUT /api/v1/runs/{id}/journal`). All of that goes through a background
thread, so the experiment never waits on the network, except for the journal at the very end,
which is sent with a few retries. When the hub cannot be reached the run goes on, and the
journal is kept in a spool folder and sent at the start of the next run.

The hub, token, org and workspace come from CHAOSHUB_URL, CHAOSHUB_TOKEN, CHAOSHUB_ORG and
CHAOSHUB_WORKSPACE, else from the settings' `vendor.chaoshub` (`hub_url`, `token`,
`organization`, `workspace`); the token also from the settings' `auths` entry of the hub. The
token is never read from the experiment and never written into the journal or the spool.

With CHAOSHUB_RUN_ID (a run the hub started, executed as a Kubernetes Job), the control reports
into that run instead of opening one: its events and journal go there, no spooled journal of
another run is sent with its token, and a journal the hub does not take is kept, never sent
later to open another run. The hub stops such a run itself (it deletes the Job); the control's
own reading of the run's state is then the fallback, for when that stop does not arrive.

This module runs on users' machines inside `chaos run`: it needs only chaoslib, requests and the
standard library, and nothing of the hub's server side. chaoslib is not a dependency of this
package: `chaos run`, the only caller, comes with it.
"""

from __future__ import annotations

import enum
import itertools
import json
import logging
import os
import platform
import queue
import signal
import threading
import time
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlparse

import requests
import yaml

try:
    from chaoslib.run import RunEventHandler
except ImportError:  # `chaoshub spool` where chaostoolkit is not installed: it sends, no more
    RunEventHandler = object

from chaoshub_client.link import HUB_EXTENSION, LoadedSource, link_file, loaded_source
from chaoshub_client.tokens import trimmed
from chaoshub_client.yaml_errors import yaml_problem

__all__ = ["after_loading_experiment_control", "configure_control", "HubReporter",
           "HubSettings", "load_hub_settings"]

logger = logging.getLogger("chaostoolkit")

MAX_OUTPUT_SIZE = 4096  # bytes of an activity's serialised output sent as an event (the CLI's)
ATTEMPTS = 4  # per request, the first included
BACKOFF = 0.25  # seconds before the first retry, doubled each time
TIMEOUT = (3.05, 15)  # connect, read
BATCH = 50  # events per request
DRAIN_SECONDS = 10.0  # how long the end of a run waits for queued events to go out
STATE_SECONDS = 2.0  # how often the run asks the hub whether it should stop
# How the hub's wishes stop the run: chaoslib turns SIGTERM into an interruption (rollbacks
# played under the "always" strategy) and SIGUSR2 into one without rollbacks.
STOP_SIGNALS = {"abort": signal.SIGTERM, "abort-now": signal.SIGUSR2}
# A run the hub executes is stopped by the hub (SIGTERM to the pod): the control waits this
# long before it stops the run itself, since a second SIGTERM would cut the rollbacks short.
STOP_HANDOFF_SECONDS = 10.0
SPOOL_SUFFIX = ".journal.json"  # waiting: sent again at the start of the next run
REJECTED_SUFFIX = ".rejected.json"  # sent again only when asked (`chaoshub spool send`)
# Refusals whose reason may go away (a new token, a scope or role granted, a workspace made):
# the journal waits and is sent again, instead of being set aside.
PASSING_REFUSALS = (401, 403, 404)
USER_AGENT = "chaoshub-control/1"


class HubSettings:
    """Where and as whom to report runs."""

    def __init__(self, url: str, token: str, org: str, workspace: str,
                 run_id: str | None = None):
        self.url = url.rstrip("/")
        self.token = token
        self.org = org
        self.workspace = workspace
        self.run_id = run_id  # the hub's run to report into; None: open a new one

    def __repr__(self) -> str:
        # The token stays out of logs and tracebacks.
        return f"HubSettings(url={self.url!r}, org={self.org!r}, " \
               f"workspace={self.workspace!r}, run_id={self.run_id!r})"


def load_hub_settings(settings: dict | None, experiment: dict | None = None,
                      arguments: dict | None = None) -> HubSettings | None:
    """The hub settings from the environment, else the experiment's `chaoshub` extension (org
    and workspace only), else the settings, else the control's arguments (never the token);
    None when something is missing."""
    settings = settings if isinstance(settings, dict) else {}
    vendor = _dict(_dict(settings.get("vendor")).get("chaoshub"))
    extension = _hub_extension(experiment)
    arguments = arguments or {}
    url = _first(os.environ.get("CHAOSHUB_URL"), vendor.get("hub_url"), arguments.get("hub_url"),
                 arguments.get("url"))
    if not url:
        return None
    token = _first(os.environ.get("CHAOSHUB_TOKEN"), vendor.get("token"),
                   _auths_token(settings, url))
    # A CI secret read from a file ends in a line end, which no HTTP header may carry.
    token = trimmed(token) if isinstance(token, str) else token
    org = _first(os.environ.get("CHAOSHUB_ORG"), extension.get("organization"),
                 vendor.get("organization"), arguments.get("organization"))
    workspace = _first(os.environ.get("CHAOSHUB_WORKSPACE"), extension.get("workspace"),
                       vendor.get("workspace"), arguments.get("workspace"))
    if not (token and org and workspace):
        return None
    # Only the environment names a run to report into: the hub that started it sets it.
    return HubSettings(url, token, org, workspace, _first(os.environ.get("CHAOSHUB_RUN_ID")))


# The local file this process's `chaos run` loaded its experiment from, if it was one.
_loaded: LoadedSource | None = None


def after_loading_experiment_control(context: Any = None, state: Any = None,
                                     **kwargs: Any) -> None:
    """Note the local file chaoslib loaded the experiment from (`context` is the source it was
    given: a path or a URL), to link it to its experiment on the hub once the run is opened."""
    global _loaded
    try:
        _loaded = loaded_source(context)
    except Exception:  # a reporting problem must never stop an experiment
        logger.debug("ChaosHub: the experiment's source could not be read", exc_info=True)


def _source() -> LoadedSource | None:
    """The local file the experiment came from: noted by the loader hook (a control declared in
    the settings), else named by the `chaos run` command line (one declared in the experiment,
    which chaoslib sets up only after loading)."""
    if _loaded is not None:
        return _loaded
    import click

    context = click.get_current_context(silent=True)
    return loaded_source(context.params.get("source")) if context is not None else None


def configure_control(experiment: dict | None = None, settings: dict | None = None,
                      event_registry: Any = None, configuration: dict | None = None,
                      secrets: dict | None = None, **kwargs: Any) -> None:
    """Register the handler that reports this run to the hub; does nothing when not set up."""
    try:
        if event_registry is None:
            logger.warning("ChaosHub: this chaostoolkit-lib has no event registry: "
                           "the run is not reported")
            return
        if any(isinstance(h, HubReporter) for h in getattr(event_registry, "handlers", [])):
            return  # declared both in the settings and in the experiment: report once
        if settings is None:
            # chaoslib does not hand the settings to controls declared in an experiment.
            from chaoslib.settings import get_loaded_settings

            settings = get_loaded_settings()
        hub = load_hub_settings(settings, experiment, kwargs)
        if hub is None:
            logger.warning("ChaosHub: no hub URL, token, org and workspace (run `chaoshub "
                           "login` or set CHAOSHUB_URL, CHAOSHUB_TOKEN, CHAOSHUB_ORG and "
                           "CHAOSHUB_WORKSPACE): the run is not reported")
            return
        event_registry.register(HubReporter(hub, source=_source()))
    except Exception:  # a reporting problem must never stop an experiment
        logger.debug("ChaosHub: the control could not be set up", exc_info=True)


class HubReporter(RunEventHandler):
    """Reports one run: opens it, streams its events, publishes its journal."""

    def __init__(self, hub: HubSettings, spool_dir: Path | None = None,
                 source: LoadedSource | None = None):
        self.hub = hub
        self.spool_dir = spool_dir or spool_folder()
        self.source = source  # the local file the experiment came from, to link it
        self.run_id: str | None = None
        self.experiment_id: str | None = None  # the hub's experiment the run reports to
        self.experiment: dict | None = None
        self._seq = itertools.count(1)
        self._seq_lock = threading.Lock()
        self._queue: queue.Queue = queue.Queue()
        self._sender: threading.Thread | None = None
        self._opened = threading.Event()  # set once opening the run succeeded or gave up
        self._finished = threading.Event()  # set when the run ends: the state watch stops
        self._interrupted = threading.Event()  # set once chaoslib is stopping the run
        self._refused = False  # the hub answered, and will not take this run as it is
        self._refusal = ""  # what the hub said when it did not open the run
        self._session = requests.Session()
        self._session.headers.update({"Authorization": f"Bearer {hub.token}",
                                      "Accept": "application/json",
                                      "User-Agent": USER_AGENT})

    # Lifecycle: `running` is the first hook a control's handler sees (chaoslib fires
    # `started` before controls are set up).

    def running(self, experiment, journal, configuration, secrets, schedule, settings) -> None:
        self._guard(self._start, experiment)

    def finish(self, journal) -> None:
        self._guard(self._finish, journal)

    def interrupted(self, experiment, journal) -> None:
        self._interrupted.set()
        self._emit("run-interrupted")

    def signal_exit(self) -> None:
        self._interrupted.set()
        self._emit("run-signal-exit")

    def start_hypothesis_before(self, experiment) -> None:
        self._emit("hypothesis-started", phase="before")

    def hypothesis_before_completed(self, experiment, state, journal) -> None:
        self._emit("hypothesis-completed", phase="before", **_state(state))

    def start_hypothesis_after(self, experiment) -> None:
        self._emit("hypothesis-started", phase="after")

    def hypothesis_after_completed(self, experiment, state, journal) -> None:
        self._emit("hypothesis-completed", phase="after", **_state(state))

    def start_continuous_hypothesis(self, frequency) -> None:
        self._emit("hypothesis-started", phase="during", frequency=frequency)

    def continuous_hypothesis_iteration(self, iteration_index, state) -> None:
        self._emit("hypothesis-completed", phase="during", iteration=iteration_index,
                   **_state(state))

    def start_method(self, experiment) -> None:
        self._emit("method-started")

    def method_completed(self, experiment, state=None) -> None:
        self._emit("method-completed")

    def start_rollbacks(self, experiment) -> None:
        self._emit("rollbacks-started")

    def rollbacks_completed(self, experiment, journal) -> None:
        self._emit("rollbacks-completed")

    def start_activity(self, activity) -> None:
        self._emit("activity-started", name=_dict(activity).get("name"),
                   activity_type=_dict(activity).get("type"),
                   background=bool(_dict(activity).get("background", False)))

    def activity_completed(self, activity, run) -> None:
        run = _dict(run)
        payload = {"name": _dict(activity).get("name"),
                   "activity_type": _dict(activity).get("type"),
                   "status": run.get("status"), "duration": run.get("duration"),
                   **bounded_output(run.get("output"))}
        if run.get("exception"):
            payload["error"] = "".join(str(line) for line in run["exception"]).strip()[-4096:]
        self._emit("activity-completed", **payload)

    # The work -----------------------------------------------------------------------------

    def _start(self, experiment) -> None:
        self.experiment = plain(experiment)
        self._emit("run-started", title=_dict(experiment).get("title"))
        self._sender = threading.Thread(target=self._send_all, name="chaoshub-sender",
                                        daemon=True)
        self._sender.start()

    def _finish(self, journal) -> None:
        self._finished.set()
        self._emit("run-finished", status=_dict(journal).get("status"),
                   deviated=_dict(journal).get("deviated", False))
        self._queue.put(None)
        if self._sender is not None:
            self._sender.join(DRAIN_SECONDS)
        body = plain(journal)
        if self.hub.run_id is not None:
            self._finish_hub_run(body)
            return
        if self.run_id is None and not self._opened.is_set() and self._sender is not None:
            # The sender is still busy (a slow hub): the journal goes to the spool unharmed.
            self._spool(body, reason="the hub answered too slowly")
            return
        if self.run_id is None and not self._refused:
            self.run_id = self._open(body.get("experiment") or self.experiment)
            if self.run_id is not None:
                self._guard(self._link_source)
        if self.run_id is None:
            # A run refused for what it is is kept too, but not sent again by itself: it
            # would be refused again.
            self._spool(body, reason=self._refusal or "the run could not be opened on the hub",
                        rejected=self._refused)
            return
        outcome, reason = self._put_journal(self.run_id, body)
        if outcome == "sent":
            logger.info(f"ChaosHub: journal published ({self.hub.url}/api/v1/runs/"
                        f"{self.run_id})")
        elif outcome == "gone":
            # The run vanished from the hub (deleted meanwhile): the next run opens a new one.
            self.run_id = None
            self._spool(body, reason="the hub no longer knows the run")
        elif outcome in ("retry", "parked"):
            self._spool(body, reason=reason)
        else:
            self._spool(body, reason=reason, rejected=True)

    def _finish_hub_run(self, journal: dict) -> None:
        """Publish the journal of the run the hub started; kept when the hub does not take
        it, never sent later to open another run."""
        self.run_id = self.hub.run_id
        outcome, reason = self._put_journal(self.hub.run_id, journal)
        if outcome == "sent":
            logger.info(f"ChaosHub: journal published ({self.hub.url}/api/v1/runs/"
                        f"{self.hub.run_id})")
        else:
            self._spool(journal, reason=f"the hub did not take the journal of its run "
                        f"{self.hub.run_id} ({reason})", rejected=True, hub_run=True)

    def _send_all(self) -> None:
        try:
            if self.hub.run_id is not None:
                self.run_id = self.hub.run_id  # the hub opened it: report into it
            else:
                self.run_id = self._open(self.experiment)
        finally:
            self._opened.set()
        if self.run_id is not None:
            threading.Thread(target=self._watch_state, name="chaoshub-state",
                             daemon=True).start()
            self._guard(self._link_source)
            if self.hub.run_id is None:
                self._guard(self._send_spooled)
        finished = False
        while not finished:
            batch = [self._queue.get()]
            while len(batch) < BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if None in batch:
                finished = True
                batch = [e for e in batch if e is not None]
            if batch and self.run_id is not None:
                self._guard(self._post_events, batch)

    def _open(self, experiment: dict | None) -> str | None:
        """Open a run of `experiment` on the hub; its id, or None when it cannot be."""
        body = {"org": self.hub.org, "workspace": self.hub.workspace,
                "experiment": experiment or {}, "node": platform.node()}
        # One key for every attempt: a retry after an answer lost on the way opens no second run.
        response = self._request("POST", "/api/v1/runs", body,
                                 idempotency_key=str(uuid.uuid4()))
        if response is None:
            logger.warning(f"ChaosHub: {self.hub.url} cannot be reached: the run goes on, "
                           "and its journal will be sent later")
            return None
        if response.status_code != 201:
            # A token, scope, role or workspace may be fixed, a busy hub do better later; a
            # document the hub finds wrong will stay wrong.
            self._refused = response.status_code not in (*PASSING_REFUSALS, 408, 429)
            self._refusal = (f"the hub refused the run ({response.status_code}: "
                             f"{_message(response)})")
            logger.warning(f"ChaosHub: {self._refusal}")
            return None
        opened = response.json()
        logger.info(f"ChaosHub: reporting this run to {opened.get('execution_url')}")
        if isinstance(opened.get("experiment_id"), str):
            self.experiment_id = opened["experiment_id"]
        return opened.get("id")

    def _link_source(self) -> None:
        """Write the experiment the run reports to into the local file it came from (its
        `chaoshub` extension), so that the file, edited, becomes a new version of it."""
        if self.source is None or self.experiment_id is None or self.hub.run_id is not None:
            return
        page = "/".join(quote(part, safe="") for part in (
            self.hub.org, self.hub.workspace, "experiment", self.experiment_id))
        extension = {"name": HUB_EXTENSION, "experiment": self.experiment_id,
                     "self": f"{self.hub.url}/{page}", "organization": self.hub.org,
                     "workspace": self.hub.workspace}
        try:
            outcome = link_file(self.source, extension)
        except (OSError, ValueError, yaml.YAMLError) as exc:
            logger.warning(f"ChaosHub: could not write the experiment's link into "
                           f"{self.source.path}: {yaml_problem(exc)}")
            return
        if outcome == "linked":
            logger.info(f"ChaosHub: {self.source.path} now names its experiment on the hub "
                        f"({extension['self']}): run it again once edited, and it becomes a "
                        "new version of that experiment")
        elif outcome == "changed":
            logger.warning(f"ChaosHub: {self.source.path} changed during the run: the link to "
                           f"its experiment on the hub ({extension['self']}) was not written")

    def _watch_state(self) -> None:
        """Ask the hub every few seconds whether it wants the run stopped (an abort, or the
        org's kill switch), and stop it the way chaoslib stops on a signal, once, unless it
        is stopping already."""
        asked_at: float | None = None
        while not self._finished.wait(STATE_SECONDS):
            try:
                response = self._session.get(f"{self.hub.url}/api/v1/runs/{self.run_id}/state",
                                             timeout=TIMEOUT)
                desired = response.json().get("desired") if response.ok else None
            except (requests.RequestException, ValueError):
                continue  # the hub is away: the run goes on
            if desired not in STOP_SIGNALS:
                continue
            if self._interrupted.is_set():
                return  # chaoslib is stopping it already (the hub's own signal came first)
            asked_at = time.monotonic() if asked_at is None else asked_at
            if self.hub.run_id is not None and desired == "abort" and \
                    time.monotonic() - asked_at < STOP_HANDOFF_SECONDS:
                continue  # the hub stops its own runs: give its SIGTERM the time to arrive
            logger.warning(f"ChaosHub: the hub asked this run to stop ({desired})")
            os.kill(os.getpid(), STOP_SIGNALS[desired])
            return

    def _post_events(self, batch: list[dict]) -> None:
        response = self._request("POST", f"/api/v1/runs/{self.run_id}/events", batch)
        if response is not None and response.status_code >= 400:
            logger.debug(f"ChaosHub: events refused ({response.status_code}: "
                         f"{_message(response)})")

    def _put_journal(self, run_id: str, journal: dict) -> tuple[str, str]:
        """Send a run's journal: the outcome, "sent", "retry" (the hub is away or busy),
        "parked" (refused for a reason that may go away), "gone" (no such run) or "refused"
        (for what it is), and what the hub said."""
        response = self._request("PUT", f"/api/v1/runs/{run_id}/journal", journal)
        if response is None:
            return "retry", f"{self.hub.url} cannot be reached, or is too busy"
        said = f"{response.status_code}: {_message(response)}"
        if response.status_code >= 500 or response.status_code in (408, 429):
            return "retry", f"the hub did not take the journal ({said})"
        if response.status_code in (200, 201):
            return "sent", "published"
        if response.status_code == 404:
            return "gone", f"the hub no longer knows the run ({said})"
        logger.warning(f"ChaosHub: the hub refused the journal ({said})")
        if response.status_code in PASSING_REFUSALS:
            return "parked", f"the hub refused the journal ({said})"
        return "refused", f"the hub refused the journal ({said})"

    def _request(self, method: str, path: str, body: Any,
                 idempotency_key: str | None = None) -> requests.Response | None:
        """One call with bounded retries and exponential backoff; None when the hub never
        answered (or only with 5xx or 429). With `idempotency_key`, every attempt carries it
        (Idempotency-Key), so that the hub does the work once."""
        data = json.dumps(body, ensure_ascii=False, default=_encode).encode()
        headers = {"Content-Type": "application/json"}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        delay = BACKOFF
        for attempt in range(1, ATTEMPTS + 1):
            try:
                response = self._session.request(
                    method, self.hub.url + path, data=data, timeout=TIMEOUT, headers=headers)
                if response.status_code < 500 and response.status_code != 429:
                    return response
                logger.debug(f"ChaosHub: {method} {path}: {response.status_code}")
            except requests.RequestException as exc:
                logger.debug(f"ChaosHub: {method} {path}: {exc.__class__.__name__}")
            if attempt < ATTEMPTS:
                time.sleep(delay)
                delay *= 2
        return None

    # The spool ----------------------------------------------------------------------------

    def _spool(self, journal: dict, reason: str, rejected: bool = False,
               hub_run: bool = False) -> None:
        record = {"hub_url": self.hub.url, "org": self.hub.org,
                  "workspace": self.hub.workspace, "run_id": self.run_id,
                  "spooled_at": datetime.now(UTC).isoformat(), "reason": reason,
                  "journal": journal}
        if hub_run:
            record["hub_run"] = True  # the hub's own run: its journal goes there or nowhere
        try:
            path = write_spool(self.spool_dir, record, rejected)
        except OSError as exc:
            logger.error(f"ChaosHub: {reason}, and the journal could not be kept in "
                         f"{self.spool_dir}: {exc}")
            return
        if rejected:
            logger.warning(f"ChaosHub: {reason}; it is kept in {path} (`chaoshub spool send` "
                           "sends it again)")
        else:
            logger.warning(f"ChaosHub: {reason}; the journal is kept in {path} and will be "
                           "sent at the start of the next run (or by `chaoshub spool send`)")

    def _send_spooled(self) -> None:
        """Send the journals earlier runs could not send to this hub, oldest first."""
        for path in sorted(self.spool_dir.glob(f"*{SPOOL_SUFFIX}")):
            outcome, _ = self.resend(path)
            if outcome == "sent":
                logger.info(f"ChaosHub: sent the journal of an earlier run ({path.name})")
            elif outcome == "retry":
                return  # the hub is struggling: the rest waits for another run

    def resend(self, path: Path) -> tuple[str, str]:
        """Send a parked journal of this hub again, and file it by the outcome: gone when
        sent, waiting again when the reason may pass, set aside when refused for what it is.
        The outcome ("sent", "retry", "parked", "refused", or "skipped": another hub's, or
        being sent by another process) and what happened."""
        claimed = path.with_name(f"{path.name}.sending-{os.getpid()}")
        try:
            # Renamed first: two runs starting together never send the same journal.
            path.rename(claimed)
            record = json.loads(claimed.read_text(encoding="utf-8"))
        except OSError:
            return "skipped", "being sent by another process"
        except ValueError:
            claimed.rename(path)
            return "skipped", "not a journal this client wrote"
        if _dict(record).get("hub_url") != self.hub.url:
            claimed.rename(path)
            return "skipped", f"kept for {_dict(record).get('hub_url')}"
        outcome, reason = self._send_record(record)
        stem = path.name.removesuffix(SPOOL_SUFFIX).removesuffix(REJECTED_SUFFIX)
        if outcome == "sent":
            claimed.unlink(missing_ok=True)
        elif outcome == "retry":
            claimed.rename(path)  # as it was: the hub said nothing about the journal
        else:
            suffix = REJECTED_SUFFIX if outcome == "refused" else SPOOL_SUFFIX
            try:
                refile(claimed, path.with_name(stem + suffix), {**record, "reason": reason})
            except OSError as exc:  # a full disk: it waits as it was
                claimed.rename(path)
                return "retry", f"{reason}; it could not be filed again here: {exc}"
        return outcome, reason

    def _send_record(self, record: dict) -> tuple[str, str]:
        journal = _dict(record.get("journal"))
        run_id = record.get("run_id")
        if isinstance(run_id, str):
            outcome, reason = self._put_journal(run_id, journal)
            if outcome != "gone":
                return outcome, reason
            if record.get("hub_run"):
                return "refused", reason  # the hub's own run: never opened again elsewhere
        reporter = HubReporter(HubSettings(self.hub.url, self.hub.token,
                                           record.get("org") or self.hub.org,
                                           record.get("workspace") or self.hub.workspace),
                               self.spool_dir)
        reporter._session = self._session
        run_id = reporter._open(journal.get("experiment"))
        if run_id is None:
            if reporter._refused:
                return "refused", reporter._refusal
            if reporter._refusal:
                return "parked", reporter._refusal
            return "retry", f"{self.hub.url} cannot be reached, or is too busy"
        outcome, reason = self._put_journal(run_id, journal)
        return ("refused", reason) if outcome == "gone" else (outcome, reason)

    # Helpers ------------------------------------------------------------------------------

    def _emit(self, event_type: str, **payload: Any) -> None:
        if self._sender is None and event_type != "run-started":
            return  # the run was never started here (no `running` hook): nothing to report
        try:
            with self._seq_lock:
                event = {"seq": next(self._seq), "type": event_type,
                         "timestamp": datetime.now(UTC).isoformat(), **plain(payload)}
                self._queue.put(event)
        except Exception:  # reporting must never break the run
            logger.debug("ChaosHub: an event was dropped", exc_info=True)

    @staticmethod
    def _guard(fn, *args) -> None:
        try:
            fn(*args)
        except Exception:  # reporting must never break the run
            logger.debug("ChaosHub: reporting failed", exc_info=True)


def spool_folder() -> Path:
    """Where journals wait for the hub: CHAOSHUB_SPOOL_DIR, else ~/.chaoshub/spool."""
    configured = os.environ.get("CHAOSHUB_SPOOL_DIR")
    return Path(configured).expanduser() if configured else Path.home() / ".chaoshub" / "spool"


def write_spool(folder: Path, record: dict, rejected: bool = False) -> Path:
    """Keep a record in the spool folder, readable by its owner only; returns its path."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    name = f"{stamp}-{uuid.uuid4().hex[:8]}"
    path = folder / (f"{name}{REJECTED_SUFFIX}" if rejected else f"{name}{SPOOL_SUFFIX}")
    partial = folder / f".{name}.partial"
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    # Renamed once whole: the next run never reads half a journal.
    _write_whole(fd, partial, path, record)
    return path


def _write_whole(fd: int, partial: Path, destination: Path, record: dict) -> None:
    """Write the record through `fd` (open on `partial`), then rename it to `destination`;
    on a failure (a full disk), nothing is left behind."""
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(record, out, ensure_ascii=False, default=_encode)
        partial.rename(destination)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def refile(claimed: Path, destination: Path, record: dict) -> None:
    """Write a record anew under `destination` (whole or not at all) and drop `claimed`."""
    partial = destination.with_name(f".{destination.name}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    _write_whole(fd, partial, destination, record)
    claimed.unlink(missing_ok=True)


def parked_journals(folder: Path) -> list[Path]:
    """The journals waiting in the spool folder and those set aside, oldest first."""
    if not folder.is_dir():
        return []
    return sorted([*folder.glob(f"*{SPOOL_SUFFIX}"), *folder.glob(f"*{REJECTED_SUFFIX}")],
                  key=lambda p: p.name)


def bounded_output(output: Any) -> dict[str, Any]:
    """`{"output": ...}` when small enough, else a marker (the journal has it whole)."""
    serialized = json.dumps(output, ensure_ascii=False, default=_encode)
    if len(serialized.encode()) > MAX_OUTPUT_SIZE:
        return {"output_truncated": True, "output_size": len(serialized.encode())}
    return {"output": json.loads(serialized)}


def plain(value: Any) -> Any:
    """`value` as plain JSON data (chaoslib's enums, dates and exceptions as strings)."""
    return json.loads(json.dumps(value, ensure_ascii=False, default=_encode))


def _encode(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (Decimal, uuid.UUID)):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return repr(value)


def _state(state: Any) -> dict[str, Any]:
    state = _dict(state)
    return {"met": state.get("steady_state_met"),
            "probes": [{"name": _dict(_dict(p).get("activity")).get("name"),
                        "status": _dict(p).get("status"),
                        "tolerance_met": _dict(p).get("tolerance_met"),
                        **bounded_output(_dict(p).get("output"))}
                       for p in state.get("probes") or [] if isinstance(p, dict)]}


def _hub_extension(experiment: Any) -> dict[str, Any]:
    for extension in _dict(experiment).get("extensions") or []:
        if isinstance(extension, dict) and extension.get("name") == "chaoshub":
            return extension
    return {}


def _auths_token(settings: dict, url: str) -> str | None:
    entry = _dict(_dict(settings.get("auths")).get(urlparse(url).netloc))
    if entry.get("type", "bearer") == "bearer" and isinstance(entry.get("value"), str):
        return entry["value"]
    return None


def _first(*values: Any) -> str | None:
    return next((v for v in values if isinstance(v, str) and v.strip()), None)


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _message(response: requests.Response) -> str:
    try:
        message = response.json().get("message")
    except (ValueError, AttributeError):
        message = None
    return str(message or getattr(response, "text", "") or "no message")[:200]
