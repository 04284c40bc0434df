"""The sample experiment and journal, and a journal variant for each outcome."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from tests.conftest import post_json

FIXTURES = Path(__file__).parent / "fixtures"


def experiment() -> dict:
    return json.loads((FIXTURES / "experiment.json").read_text())


def journal() -> dict:
    """The sample journal: completed, deviated (the after-hypothesis failed)."""
    return json.loads((FIXTURES / "journal.json").read_text())


def variant(outcome: str) -> dict:
    """A journal that the hub should read as `outcome`."""
    j = journal()
    states = j["steady_states"]
    if outcome == "passed":
        j["deviated"] = False
        states["after"]["steady_state_met"] = True
        states["after"]["probes"][0]["tolerance_met"] = True
        states["after"]["probes"][0]["output"] = True
    elif outcome == "baseline-not-met":
        # chaoslib: status completed, not deviated, method skipped, rollbacks still played.
        j["deviated"] = False
        states["before"]["steady_state_met"] = False
        states["before"]["probes"][0]["tolerance_met"] = False
        states["before"]["probes"][0]["output"] = False
        states["after"] = None
        j["run"] = []
    elif outcome == "probe-error":
        j["status"], j["deviated"] = "failed", False
        probe = states["before"]["probes"][1]
        probe["status"] = "failed"
        probe.pop("tolerance_met", None)
        probe["exception"] = ["Traceback (most recent call last):\n",
                              "chaoslib.exceptions.ActivityFailed: <boom & co>\n"]
        states["after"], j["run"], j["rollbacks"] = None, [], []
    elif outcome == "interrupted":
        j["status"], j["deviated"] = "interrupted", False
        del j["run"][2]["status"]  # cut off mid-activity: chaoslib writes no status
        states["after"], j["rollbacks"] = None, []
        j["interruption"] = {"kind": "signal", "name": "SIGTERM", "reason": "stopped"}
    elif outcome == "aborted":
        j["status"], j["deviated"] = "aborted", False
    elif outcome != "deviated":
        raise ValueError(outcome)
    j["start"] = j["start"].replace("08:57", {"passed": "09:01", "baseline-not-met": "09:02",
                                              "probe-error": "09:03", "interrupted": "09:04",
                                              "aborted": "09:05"}.get(outcome, "08:57"))
    return copy.deepcopy(j)


def make_token(browser, scopes) -> str:
    """A new API token of the signed-in browser, with `scopes`."""
    response = post_json(browser, "/api/v1/tokens", {"name": "ci", "scopes": list(scopes)})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["secret"]


def create(browser, org: str = "alice", workspace: str = "Personal", document=None) -> dict:
    """An experiment created through the API."""
    response = post_json(browser, f"/api/v1/orgs/{org}/workspaces/{workspace}/experiments",
                         document or experiment())
    assert response.status_code == 201, response.get_json()
    return response.get_json()
