"""The kill switch with real processes: a run on the hub's embedded worker and a `chaos run` on a
laptop (the client venv, reporting through the control) are both stopped, and a third run is
refused until the switch is released."""

from __future__ import annotations

import json
import subprocess
import time

import pytest
import requests

from tests.conftest import PASSWORD
from tests.helpers import BIN, clean_env, running_hub
from tests.run_data import sleeping, wait_for
from tests.test_control import CLIENT, client_venv  # noqa: F401  (the fixture)

pytestmark = pytest.mark.workers


def test_the_kill_switch_stops_hub_and_laptop_runs_and_refuses_new_ones(tmp_path, client_venv):  # noqa: F811
    root = tmp_path / "hub"
    root.mkdir()
    env = clean_env(CHAOSHUB_INSTANCE_PATH=str(root / "instance"))
    with running_hub(root) as url:
        subprocess.run([BIN / "chaoshub", "user", "create", "--username", "alice",
                        "--password-stdin"], input=PASSWORD + "\n", env=env, cwd=root,
                       check=True, capture_output=True, text=True, timeout=60)
        token = subprocess.run([BIN / "chaoshub", "token", "create", "--username", "alice",
                                "--name", "ops", "--scopes", "full"], env=env, cwd=root,
                               check=True, capture_output=True, text=True,
                               timeout=60).stdout.strip()
        http = requests.Session()
        http.headers["Authorization"] = f"Bearer {token}"
        experiments = f"{url}/api/v1/orgs/alice/workspaces/Personal/experiments"
        on_hub = http.post(experiments, json=sleeping("On the hub")).json()["id"]
        hub_run = http.post(f"{url}/api/v1/experiments/{on_hub}/runs", json={}).json()

        # The laptop: its own HOME and settings, as `chaoshub login` writes them.
        home, settings = tmp_path / "home", tmp_path / "settings.yaml"
        home.mkdir()
        subprocess.run([CLIENT / "chaoshub", "login", "--url", url, "--token", token, "--org",
                        "alice", "--workspace", "Personal", "--settings", str(settings)],
                       env=clean_env(HOME=str(home)), check=True, capture_output=True,
                       text=True, timeout=30)
        document = tmp_path / "laptop.json"
        document.write_text(json.dumps(sleeping("On a laptop")))
        journal = tmp_path / "journal.json"
        laptop = subprocess.Popen(
            [CLIENT / "chaos", "--no-version-check", "--settings", str(settings), "--log-file",
             str(tmp_path / "chaos.log"), "run", "--journal-path", str(journal),
             str(document)],
            env=clean_env(HOME=str(home), CHAOSHUB_SPOOL_DIR=str(tmp_path / "spool")),
            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            def runs_of(title: str) -> list[dict]:
                found = http.get(experiments, params={"search": title}).json()["experiments"]
                return [r for e in found if e["title"] == title
                        for r in http.get(f"{url}/api/v1/experiments/{e['id']}/runs"
                                          ).json()["runs"]]

            def method_started(title: str):
                for run in runs_of(title):
                    events = http.get(f"{url}/api/v1/runs/{run['id']}").json()["events"]
                    if any(e["type"] == "method-started" for e in events):
                        return run
                return None

            wait_for(lambda: method_started("On the hub"), 60, "the hub run is running")
            laptop_run = wait_for(lambda: method_started("On a laptop"), 60,
                                  "the laptop run is running")
            assert laptop_run["origin"] == "client"

            engaged = http.post(f"{url}/api/v1/orgs/alice/kill-switch",
                                json={"engaged": True, "reason": "game day is over"})
            assert engaged.status_code == 200, engaged.text
            stopped_at = time.monotonic()

            hub_done = wait_for(lambda: (r := http.get(hub_run["url"]).json())["status"] in (
                "aborted", "interrupted", "finished") and r, 30, "the hub run ended")
            assert hub_done["status"] == "aborted"
            assert hub_done["reason"] == "the org's kill switch: game day is over"
            assert laptop.wait(30) != 0  # interrupted: chaos exits non-zero
            assert time.monotonic() - stopped_at < 20
            assert json.loads(journal.read_text())["status"] == "interrupted"
            laptop_done = wait_for(
                lambda: (r := http.get(f"{url}/api/v1/runs/{laptop_run['id']}").json())[
                    "execution_id"] and r, 30, "the laptop's journal arrived")
            assert laptop_done["status"] == "aborted"
            hub_journal = http.get(f"{url}/api/v1/executions/{hub_done['execution_id']}"
                                   "/journal").json()
            assert [r["activity"]["name"] for r in hub_journal["rollbacks"]] == ["restore"]

            third = http.post(f"{url}/api/v1/experiments/{on_hub}/runs", json={})
            assert third.status_code == 409 and "game day is over" in third.json()["message"]
        finally:
            if laptop.poll() is None:
                laptop.kill()
            print(laptop.communicate()[0][-3000:])
