"""Journals the hub refused for a reason that may pass are kept, listed by `chaoshub spool`, and
published by `chaoshub spool send` or the next run once it has: with the real `chaos run`."""

from __future__ import annotations

import json
import subprocess

import pytest
import requests

from tests import test_control
from tests.helpers import clean_env
from tests.test_control import CLIENT, chaos_run, login, make_token

pytestmark = pytest.mark.e2e
# The hub with alice and her token, the client venv and a user's machine, as the control's tests
# have them.
hub, client_venv, laptop = test_control.hub, test_control.client_venv, test_control.laptop


def chaoshub(laptop, *args: str) -> subprocess.CompletedProcess:
    """`chaoshub ...` on the user's machine, from the client venv."""
    return subprocess.run([CLIENT / "chaoshub", *args], capture_output=True, text=True,
                          timeout=120, env=clean_env(HOME=str(laptop["home"]),
                                                     CHAOSHUB_SPOOL_DIR=str(laptop["spool"])))


def starts_on_hub(url: str, token: str, workspace: str) -> set[str]:
    """The start times of every execution of the workspace's experiments."""
    headers = {"Authorization": f"Bearer {token}"}
    listed = requests.get(f"{url}/api/v1/orgs/alice/workspaces/{workspace}/experiments",
                          headers=headers, timeout=10).json()["experiments"]
    starts = set()
    for experiment in listed:
        executions = requests.get(f"{url}/api/v1/experiments/{experiment['id']}/executions",
                                  headers=headers, timeout=10).json()["executions"]
        for execution in executions:
            starts.add(requests.get(f"{url}/api/v1/executions/{execution['id']}/journal",
                                    headers=headers, timeout=10).json()["start"])
    return starts


def park_a_journal(hub, laptop, workspace: str) -> tuple[dict, object]:
    """A run reported with a token that lacks executions:write: its journal, and the parked
    file."""
    url, _, root = hub
    weak = make_token(root, "experiments:read,experiments:write", f"no executions {workspace}")
    login(laptop, url, weak, workspace)
    done, journal = chaos_run(laptop, "refused")
    assert done.returncode == 1, done.stderr  # the run went on as usual
    assert list(laptop["spool"].glob("*.rejected.json")) == []
    (parked,) = laptop["spool"].glob("*.journal.json")
    record = json.loads(parked.read_text())
    assert record["reason"].startswith("the hub refused the run (403:")
    assert "executions:write" in record["reason"] and weak not in parked.read_text()
    return journal, parked


def test_spool_send_publishes_a_journal_refused_for_a_missing_scope(hub, laptop):
    url, token, _ = hub
    journal, parked = park_a_journal(hub, laptop, "Personal")

    listed = chaoshub(laptop, "spool")
    assert listed.returncode == 0, listed.stderr
    assert parked.name in listed.stdout
    assert "waiting (sent again by the next run" in listed.stdout
    assert "for alice/Personal on " + url in listed.stdout
    assert "why: the hub refused the run (403:" in listed.stdout

    # Still the weak token: refused again, still kept, and the command says so.
    again = chaoshub(laptop, "spool", "send", "--settings", str(laptop["settings"]))
    assert again.returncode == 1
    assert f"{parked.name}: still waiting (the hub refused the run (403:" in again.stdout
    assert parked.exists()

    login(laptop, url, token, "Personal")  # a token with executions:write
    sent = chaoshub(laptop, "spool", "send", "--settings", str(laptop["settings"]))
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert f"{parked.name}: sent: the run is on the hub" in sent.stdout
    assert list(laptop["spool"].iterdir()) == []
    assert journal["start"] in starts_on_hub(url, token, "Personal")
    assert "No journal is waiting" in chaoshub(laptop, "spool").stdout


def test_the_next_run_sends_a_journal_refused_for_a_missing_scope(hub, laptop):
    url, token, _ = hub
    refused, _ = park_a_journal(hub, laptop, "Public")
    login(laptop, url, token, "Public")
    done, later = chaos_run(laptop, "later")
    assert list(laptop["spool"].iterdir()) == [], done.stdout + done.stderr
    assert {refused["start"], later["start"]} <= starts_on_hub(url, token, "Public")
