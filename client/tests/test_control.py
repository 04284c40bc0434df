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
                 "CHAOSHUB_SPOOL_DIR"):
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

    def request(self, method, url, data, timeout, headers):
        self.sent.append((method, url.removeprefix(URL), json.loads(data)))
        status = self.statuses.pop(0)
        body = {"id": "new-run", "execution_url": f"{URL}/x"} if status == 201 else {}
        return SimpleNamespace(status_code=status, json=lambda: body, text="")


def reporter(tmp_path, session: FakeSession) -> HubReporter:
    hub = HubReporter(HubSettings(URL, "secret", "alice", "Personal"), tmp_path)
    hub._session = session
    return hub


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


def test_a_run_the_hub_refuses_keeps_its_journal_without_the_token(tmp_path):
    hub = reporter(tmp_path, FakeSession(404))
    hub._finish({"status": "completed", "experiment": {"title": "t"}})
    (kept,) = tmp_path.glob("*.rejected.json")
    assert "secret" not in kept.read_text()
    record = json.loads(kept.read_text())
    assert (record["hub_url"], record["org"], record["journal"]["status"]) == (
        URL, "alice", "completed")
