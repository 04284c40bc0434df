"""The control without a hub: where its settings come from, the spool, what it sends."""

from __future__ import annotations

import enum
import json
import stat
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from chaoshub_client import control
from chaoshub_client.control import (
    HubReporter,
    HubSettings,
    bounded_output,
    load_hub_settings,
    plain,
    spool_folder,
    write_spool,
)

URL = "https://hub.example.com"
SETTINGS = {"vendor": {"chaoshub": {"hub_url": URL, "token": "vendor-token",
                                    "organization": "alice", "workspace": "Personal"}}}


@pytest.fixture(autouse=True)
def no_hub_environment(monkeypatch):
    for name in ("CHAOSHUB_URL", "CHAOSHUB_TOKEN", "CHAOSHUB_ORG", "CHAOSHUB_WORKSPACE",
                 "CHAOSHUB_SPOOL_DIR", "CHAOSHUB_RUN_ID"):
        monkeypatch.delenv(name, raising=False)


def test_settings_come_from_the_settings_file():
    hub = load_hub_settings(SETTINGS)
    assert (hub.url, hub.token, hub.org, hub.workspace) == (URL, "vendor-token", "alice",
                                                            "Personal")
    assert "vendor-token" not in repr(hub)


def test_the_environment_comes_first_then_the_experiment_then_the_settings(monkeypatch):
    monkeypatch.setenv("CHAOSHUB_TOKEN", "env-token")
    monkeypatch.setenv("CHAOSHUB_WORKSPACE", "FromEnv")
    experiment = {"extensions": [{"name": "chaoshub", "organization": "team",
                                  "workspace": "FromExperiment", "token": "never-read"}]}
    hub = load_hub_settings(SETTINGS, experiment)
    assert (hub.token, hub.org, hub.workspace) == ("env-token", "team", "FromEnv")


def test_a_token_with_a_line_end_is_trimmed(monkeypatch):
    monkeypatch.setenv("CHAOSHUB_TOKEN", "env-token\n")
    assert load_hub_settings(SETTINGS).token == "env-token"


def test_the_token_may_come_from_the_hubs_auths_entry_but_never_from_arguments():
    settings = {"auths": {"hub.example.com": {"type": "bearer", "value": "auths-token"}}}
    arguments = {"hub_url": URL, "organization": "alice", "workspace": "W", "token": "no"}
    assert load_hub_settings(settings, None, arguments).token == "auths-token"
    assert load_hub_settings({}, None, arguments) is None


@pytest.mark.parametrize("missing", ["hub_url", "token", "organization", "workspace"])
def test_no_settings_when_something_is_missing(missing):
    vendor = {k: v for k, v in SETTINGS["vendor"]["chaoshub"].items() if k != missing}
    assert load_hub_settings({"vendor": {"chaoshub": vendor}}) is None


def test_the_spool_folder_is_private_and_its_files_whole(tmp_path, monkeypatch):
    monkeypatch.setenv("CHAOSHUB_SPOOL_DIR", str(tmp_path / "spool"))
    folder = spool_folder()
    assert folder == tmp_path / "spool"
    kept = write_spool(folder, {"journal": {"status": "completed"}})
    refused = write_spool(folder, {"journal": {}}, rejected=True)
    assert kept.name.endswith(".journal.json") and refused.name.endswith(".rejected.json")
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert json.loads(kept.read_text()) == {"journal": {"status": "completed"}}
    assert sorted(p.name for p in folder.iterdir()) == sorted([kept.name, refused.name])


def test_outputs_are_plain_and_bounded():
    class Status(enum.Enum):
        OK = "succeeded"

    when = datetime(2025, 1, 2, tzinfo=UTC)
    assert plain({"s": Status.OK, "at": when, "t": (1, 2)}) == {
        "s": "succeeded", "at": "2025-01-02T00:00:00+00:00", "t": [1, 2]}
    assert bounded_output("small") == {"output": "small"}
    big = bounded_output("x" * 5000)
    assert big["output_truncated"] is True and big["output_size"] > 4096


class FakeSession:
    """Answers the control's requests from a list of status codes; records what it was sent."""

    def __init__(self, *statuses: int):
        self.statuses = list(statuses)
        self.sent: list[tuple[str, str, dict]] = []
        self.headers: list[dict] = []

    def request(self, method, url, data, timeout, headers):
        self.sent.append((method, url.removeprefix(URL), json.loads(data)))
        self.headers.append(dict(headers))
        status = self.statuses.pop(0)
        body = {"id": "new-run", "experiment_id": "e-1",
                "execution_url": f"{URL}/x"} if status == 201 else {}
        return SimpleNamespace(status_code=status, json=lambda: body, text="")


def reporter(tmp_path, session: FakeSession) -> HubReporter:
    hub = HubReporter(HubSettings(URL, "secret", "alice", "Personal"), tmp_path)
    hub._session = session
    return hub


def test_a_run_of_a_local_file_writes_its_link_into_it_and_one_from_a_url_never(
        tmp_path, monkeypatch):
    monkeypatch.setattr(control, "_loaded", None)
    path = tmp_path / "experiment.json"
    path.write_text('{"title": "t"}')
    control.after_loading_experiment_control(context=str(path), state={"title": "t"})
    hub = HubReporter(HubSettings(URL, "secret", "alice", "My Space"), tmp_path,
                      source=control._source())
    hub._session = FakeSession(201)
    assert hub._open({"title": "t"}) == "new-run"
    hub._link_source()
    assert json.loads(path.read_text())["extensions"] == [{
        "name": "chaoshub", "experiment": "e-1", "organization": "alice",
        "workspace": "My Space", "self": f"{URL}/alice/My%20Space/experiment/e-1"}]
    control.after_loading_experiment_control(context=f"{URL}/alice/W/experiment/e-1")
    assert control._loaded is None


def test_spooled_journals_of_this_hub_are_sent_and_the_refused_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(control, "BACKOFF", 0)
    sent = write_spool(tmp_path, {"hub_url": URL, "run_id": "r1", "journal": {"n": 1}})
    gone = write_spool(tmp_path, {"hub_url": URL, "run_id": "r2", "journal": {"n": 2}})
    refused = write_spool(tmp_path, {"hub_url": URL, "run_id": "r3", "journal": {"n": 3}})
    elsewhere = write_spool(tmp_path, {"hub_url": "https://other", "journal": {"n": 4}})
    # r1 taken; r2 gone, so it opens a new run and sends it there; r3 refused (422).
    session = FakeSession(200, 404, 201, 201, 422)
    reporter(tmp_path, session)._send_spooled()
    assert [(m, p) for m, p, _ in session.sent] == [
        ("PUT", "/api/v1/runs/r1/journal"), ("PUT", "/api/v1/runs/r2/journal"),
        ("POST", "/api/v1/runs"), ("PUT", "/api/v1/runs/new-run/journal"),
        ("PUT", "/api/v1/runs/r3/journal")]
    assert not sent.exists() and not gone.exists() and not refused.exists()
    assert elsewhere.exists()
    assert len(list(tmp_path.glob("*.rejected.json"))) == 1


def test_a_busy_hub_leaves_the_spool_for_the_next_run(tmp_path, monkeypatch):
    monkeypatch.setattr(control, "BACKOFF", 0)
    first = write_spool(tmp_path, {"hub_url": URL, "run_id": "r1", "journal": {}})
    session = FakeSession(*[503] * control.ATTEMPTS)
    reporter(tmp_path, session)._send_spooled()
    assert first.exists() and len(session.sent) == control.ATTEMPTS


def test_a_run_opened_again_after_a_lost_answer_carries_the_same_idempotency_key(
        tmp_path, monkeypatch):
    monkeypatch.setattr(control, "BACKOFF", 0)
    session = FakeSession(503, 502, 201, 201)
    hub = reporter(tmp_path, session)
    assert hub._open({"title": "t"}) == "new-run"
    keys = [h.get("Idempotency-Key") for h in session.headers]
    assert len(keys) == 3 and keys[0] and len(set(keys)) == 1  # every attempt, one key
    hub._open({"title": "t"})
    assert session.headers[3]["Idempotency-Key"] != keys[0]  # a new run, a new key


def test_a_run_the_hub_refuses_keeps_its_journal_without_the_token(tmp_path):
    hub = reporter(tmp_path, FakeSession(422))
    hub._finish({"status": "completed", "experiment": {"title": "t"}})
    (kept,) = tmp_path.glob("*.rejected.json")
    assert "secret" not in kept.read_text()
    record = json.loads(kept.read_text())
    assert (record["hub_url"], record["org"], record["journal"]["status"]) == (
        URL, "alice", "completed")
    assert record["reason"] == "the hub refused the run (422: no message)"


@pytest.mark.parametrize("status", [401, 403, 404])
def test_a_refusal_that_may_pass_parks_the_journal_and_the_next_run_sends_it(tmp_path,
                                                                            status):
    hub = reporter(tmp_path, FakeSession(status))
    hub._finish({"status": "completed", "experiment": {"title": "t"}})
    assert list(tmp_path.glob("*.rejected.json")) == []
    (parked,) = tmp_path.glob("*.journal.json")
    assert json.loads(parked.read_text())["reason"] == \
        f"the hub refused the run ({status}: no message)"
    # Refused again: still waiting, with what the hub said this time.
    again = FakeSession(403)
    reporter(tmp_path, again)._send_spooled()
    assert parked.exists() and len(again.sent) == 1
    # The reason went away (a new token, a scope granted): opened and published.
    later = FakeSession(201, 201)
    reporter(tmp_path, later)._send_spooled()
    assert [(m, p) for m, p, _ in later.sent] == [("POST", "/api/v1/runs"),
                                                   ("PUT", "/api/v1/runs/new-run/journal")]
    assert list(tmp_path.iterdir()) == []


def test_a_hub_runs_journal_sent_again_goes_to_that_run_only(tmp_path):
    hub_run_reporter(tmp_path, FakeSession(403))._finish({"status": "completed"})
    (kept,) = tmp_path.glob("*.rejected.json")
    session = FakeSession(404)
    outcome, reason = reporter(tmp_path, session).resend(kept)
    assert (outcome, [(m, p) for m, p, _ in session.sent]) == (
        "refused", [("PUT", "/api/v1/runs/hub-run/journal")])
    assert kept.exists() and "no longer knows the run" in json.loads(kept.read_text())["reason"]


# Reporting into a run the hub started (its Kubernetes Job) ------------------------------------


def test_the_run_to_report_into_comes_from_the_environment_only(monkeypatch):
    assert load_hub_settings(SETTINGS).run_id is None
    assert load_hub_settings(SETTINGS, None, {"run_id": "from-arguments"}).run_id is None
    monkeypatch.setenv("CHAOSHUB_RUN_ID", "hub-run")
    hub = load_hub_settings(SETTINGS)
    assert hub.run_id == "hub-run" and "vendor-token" not in repr(hub)


def hub_run_reporter(tmp_path, session) -> HubReporter:
    hub = HubReporter(HubSettings(URL, "secret", "alice", "Personal", "hub-run"), tmp_path)
    hub._session = session
    return hub


def test_a_hub_run_reports_its_events_and_journal_into_that_run(tmp_path, monkeypatch):
    monkeypatch.setattr(control, "STATE_SECONDS", 60)  # no state watch in this test
    spooled = write_spool(tmp_path, {"hub_url": URL, "run_id": "other", "journal": {"n": 1}})
    session = FakeSession(200, 200, 200, 200)
    hub = hub_run_reporter(tmp_path, session)
    hub.running({"title": "t"}, None, None, None, None, None)
    hub.start_method({"title": "t"})
    hub.finish({"status": "completed", "experiment": {"title": "t"}})
    calls = [(m, p) for m, p, _ in session.sent]
    # The events go out in one batch or more, as the sender thread finds them queued.
    assert set(calls[:-1]) == {("POST", "/api/v1/runs/hub-run/events")}
    assert calls[-1] == ("PUT", "/api/v1/runs/hub-run/journal")
    events = [e for _, _, batch in session.sent[:-1] for e in batch]
    assert [e["type"] for e in events] == ["run-started", "method-started", "run-finished"]
    assert spooled.exists()  # another run's journal is never sent with this run's token
    assert hub.run_id == "hub-run"


def test_a_hub_run_whose_journal_is_not_taken_keeps_it_and_opens_no_other_run(tmp_path,
                                                                              monkeypatch):
    monkeypatch.setattr(control, "BACKOFF", 0)
    for statuses in ([404], [503] * control.ATTEMPTS, [401]):
        folder = tmp_path / str(len(list(tmp_path.iterdir())))
        session = FakeSession(*statuses)
        hub_run_reporter(folder, session)._finish({"status": "completed"})
        assert {m for m, _, _ in session.sent} == {"PUT"}
        (kept,) = folder.glob("*.rejected.json")  # kept for people, never sent again
        assert json.loads(kept.read_text())["run_id"] == "hub-run"
        assert "secret" not in kept.read_text()


class StateSession:
    """Answers GET /state with `desired`; counts the questions."""

    def __init__(self, desired: str):
        self.desired = desired
        self.asked = 0

    def get(self, url, timeout):
        self.asked += 1
        return SimpleNamespace(ok=True, json=lambda: {"desired": self.desired})


def watch(monkeypatch, hub: HubReporter, desired: str, handoff: float) -> list[int]:
    signals: list[int] = []
    monkeypatch.setattr(control, "STATE_SECONDS", 0.01)
    monkeypatch.setattr(control, "STOP_HANDOFF_SECONDS", handoff)
    monkeypatch.setattr(control.os, "kill", lambda pid, sig: signals.append(sig))
    hub.run_id = hub.hub.run_id or "laptop-run"
    hub._session = StateSession(desired)
    hub._watch_state()
    return signals


def test_a_hub_run_leaves_an_abort_to_the_hub_first_then_stops_itself(tmp_path, monkeypatch):
    hub = hub_run_reporter(tmp_path, None)
    started = control.time.monotonic()
    assert watch(monkeypatch, hub, "abort", 0.2) == [control.signal.SIGTERM]
    assert control.time.monotonic() - started >= 0.2
    assert hub._session.asked > 2
    # Without rollbacks there is nothing to cut short: at once.
    assert watch(monkeypatch, hub_run_reporter(tmp_path, None), "abort-now", 60) == [
        control.signal.SIGUSR2]
    # A laptop's run has no one else to stop it: at once.
    laptop = reporter(tmp_path, None)
    assert watch(monkeypatch, laptop, "abort", 60) == [control.signal.SIGTERM]
    assert laptop._session.asked == 1


def test_a_run_already_stopping_is_never_signalled_again(tmp_path, monkeypatch):
    hub = hub_run_reporter(tmp_path, None)
    hub.interrupted({}, {})  # the hub's SIGTERM came first: chaoslib is playing rollbacks
    assert watch(monkeypatch, hub, "abort", 0) == []
    laptop = reporter(tmp_path, None)
    laptop.signal_exit()
    assert watch(monkeypatch, laptop, "abort-now", 0) == []
