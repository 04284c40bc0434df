"""The hub's Chaos Toolkit control, inside real `chaos run` processes, against a real hub.

`chaos` and `chaoshub login` run from the client venv (CHAOSHUB_CLIENT_VENV, else .venv-client,
which scripts/test makes): chaoshub-client and chaostoolkit alone, as a runner installs them. The
hub runs from this venv.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import requests
import yaml

from tests.conftest import REQUIRE_SERVICES
from tests.helpers import BIN, clean_env, free_port, running_hub, start, stop, wait_until_up

pytestmark = pytest.mark.e2e

FIXTURES = Path(__file__).parent / "fixtures"
CLIENT_VENV = Path(os.environ.get("CHAOSHUB_CLIENT_VENV")
                   or Path(__file__).resolve().parents[1] / ".venv-client")
CLIENT = CLIENT_VENV / "bin"
# What a runner must not have to install: the server's own packages.
SERVER_PACKAGES = {"chaoshub", "flask", "sqlalchemy", "gunicorn", "alembic", "argon2-cffi",
                   "psycopg", "psycopg-binary"}
PASSWORD = "a long enough passphrase"
SCOPES = "experiments:read,experiments:write,executions:read,executions:write"
# What the control streams for the sample experiment: its before-hypothesis holds, the method
# deletes the marker, the after-hypothesis deviates, the rollback puts the marker back.
EVENTS = [
    ("run-started", None),
    ("hypothesis-started", "before"),
    ("activity-started", "marker-file-exists"), ("activity-completed", "marker-file-exists"),
    ("activity-started", "marker-file-test-succeeds"),
    ("activity-completed", "marker-file-test-succeeds"),
    ("hypothesis-completed", "before"),
    ("method-started", None),
    ("activity-started", "run-true"), ("activity-completed", "run-true"),
    ("activity-started", "read-marker-size"), ("activity-completed", "read-marker-size"),
    ("activity-started", "delete-marker-file"), ("activity-completed", "delete-marker-file"),
    ("method-completed", None),
    ("hypothesis-started", "after"),
    # chaoslib stops checking the hypothesis at its first probe out of tolerance.
    ("activity-started", "marker-file-exists"), ("activity-completed", "marker-file-exists"),
    ("hypothesis-completed", "after"),
    ("rollbacks-started", None),
    ("activity-started", "recreate-marker-file"), ("activity-completed", "recreate-marker-file"),
    ("rollbacks-completed", None),
    ("run-finished", None),
]


@pytest.fixture(scope="module")
def client_venv() -> Path:
    """The client venv's bin folder; its absence fails where it is required (scripts/test)."""
    if not (CLIENT / "chaos").exists() or not (CLIENT / "chaoshub").exists():
        message = f"no client venv with chaos and chaoshub at {CLIENT_VENV} (scripts/test makes it)"
        if REQUIRE_SERVICES:
            pytest.fail(message + " (CHAOSHUB_REQUIRE_SERVICES=1)")
        pytest.skip(message)
    return CLIENT


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """A hub on 127.0.0.1 with the account alice and an API token of hers."""
    root = tmp_path_factory.mktemp("hub")
    env = clean_env(CHAOSHUB_INSTANCE_PATH=str(root / "instance"))
    with running_hub(root) as url:
        made = subprocess.run([BIN / "chaoshub", "user", "create", "--username", "alice",
                               "--password-stdin"], input=PASSWORD + "\n", env=env, cwd=root,
                              capture_output=True, text=True, timeout=60)
        assert made.returncode == 0, made.stderr
        token = subprocess.run([BIN / "chaoshub", "token", "create", "--username", "alice",
                                "--name", "laptop", "--scopes", SCOPES], env=env, cwd=root,
                               capture_output=True, text=True, timeout=60)
        assert token.returncode == 0, token.stderr
        yield url, token.stdout.strip(), root


def make_token(root: Path, scopes: str, name: str) -> str:
    """A new API token of alice's on the hub `root` holds, with these scopes."""
    made = subprocess.run([BIN / "chaoshub", "token", "create", "--username", "alice", "--name",
                           name, "--scopes", scopes], capture_output=True, text=True, timeout=60,
                          env=clean_env(CHAOSHUB_INSTANCE_PATH=str(root / "instance")), cwd=root)
    assert made.returncode == 0, made.stderr
    return made.stdout.strip()


@pytest.fixture
def laptop(tmp_path, client_venv):
    """A user's machine: its own home, spool folder and copy of the sample experiment."""
    home = tmp_path / "home"
    home.mkdir()
    marker = tmp_path / "marker.txt"
    document = json.loads((FIXTURES / "experiment.json").read_text())
    document["configuration"]["marker_path"] = str(marker)
    experiment = tmp_path / "experiment.json"
    experiment.write_text(json.dumps(document))
    return {"root": tmp_path, "home": home, "spool": tmp_path / "spool", "marker": marker,
            "experiment": experiment, "settings": tmp_path / "settings.yaml"}


def login(laptop, url: str, token: str, workspace: str) -> None:
    done = subprocess.run([CLIENT / "chaoshub", "login", "--url", url, "--token", token, "--org",
                           "alice", "--workspace", workspace, "--settings",
                           str(laptop["settings"])],
                          env=clean_env(HOME=str(laptop["home"])), capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 0, done.stderr


def write_settings(laptop, url: str, token: str, workspace: str) -> None:
    """The settings `chaoshub login` writes, for a hub it would refuse to log in to (one that
    is down, a workspace that does not exist yet)."""
    laptop["settings"].write_text(yaml.safe_dump({
        "vendor": {"chaoshub": {"hub_url": url, "token": token, "organization": "alice",
                                "workspace": workspace}},
        "auths": {url.removeprefix("http://"): {"type": "bearer", "value": token}},
        "controls": {"chaoshub": {"provider": {"type": "python",
                                               "module": "chaoshub_client.control"}}}}))


def chaos_run(laptop, name: str) -> tuple[subprocess.CompletedProcess, dict]:
    """`chaos run` as a user types it; the process and the journal it wrote."""
    laptop["marker"].touch()
    journal = laptop["root"] / f"{name}.json"
    done = subprocess.run(
        [CLIENT / "chaos", "--no-version-check", "--settings", str(laptop["settings"]),
         "--log-file", str(laptop["root"] / f"{name}.log"), "run", "--journal-path",
         str(journal), str(laptop["experiment"])],
        env=clean_env(HOME=str(laptop["home"]), CHAOSHUB_SPOOL_DIR=str(laptop["spool"])),
        cwd=laptop["root"], capture_output=True, text=True, timeout=60)
    assert journal.exists(), done.stdout + done.stderr
    return done, json.loads(journal.read_text())


def run_id_of(done: subprocess.CompletedProcess) -> str:
    found = re.search(r"/api/v1/runs/([0-9a-f-]{36})", done.stdout + done.stderr)
    assert found, done.stdout + done.stderr
    return found.group(1)


def test_a_run_streams_its_events_and_publishes_its_journal(hub, laptop):
    url, token, _ = hub
    login(laptop, url, token, "Personal")
    settings = yaml.safe_load(laptop["settings"].read_text())
    assert settings["controls"]["chaoshub"]["provider"]["module"] == "chaoshub_client.control"
    assert settings["auths"][url.removeprefix("http://")] == {"type": "bearer", "value": token}
    assert settings["vendor"]["chaoshub"]["workspace"] == "Personal"
    done, local = chaos_run(laptop, "journal")
    assert done.returncode == 1, done.stderr  # the after-hypothesis deviates: the CLI says 1
    assert local["status"] == "completed" and local["deviated"] is True

    headers = {"Authorization": f"Bearer {token}"}
    run = requests.get(f"{url}/api/v1/runs/{run_id_of(done)}", headers=headers,
                       timeout=10).json()
    assert run["status"] == "finished" and run["execution_id"]
    assert [e["seq"] for e in run["events"]] == list(range(1, len(EVENTS) + 1))
    assert [(e["type"], e.get("phase") or e.get("name")) for e in run["events"]] == EVENTS
    by_type = {e["type"]: e for e in run["events"]}
    assert by_type["run-finished"]["status"] == "completed"
    assert by_type["run-finished"]["deviated"] is True
    after = [e for e in run["events"] if e["type"] == "hypothesis-completed"][-1]
    assert after["met"] is False
    assert [(p["name"], p["tolerance_met"], p["output"]) for p in after["probes"]] == [
        ("marker-file-exists", False, False)]

    execution = requests.get(f"{url}/api/v1/executions/{run['execution_id']}", headers=headers,
                             timeout=10).json()
    assert (execution["status"], execution["deviated"], execution["outcome"]) == (
        "completed", True, "deviated")
    assert execution["experiment_id"] == run["experiment_id"]
    stored = requests.get(f"{url}/api/v1/executions/{run['execution_id']}/journal",
                          headers=headers, timeout=10)
    assert stored.json()["start"] == local["start"]
    assert token not in stored.text
    assert token not in json.dumps(run)
    assert not laptop["spool"].exists() or not any(laptop["spool"].iterdir())


def test_a_run_without_the_hub_goes_on_and_its_journal_is_sent_later(hub, laptop):
    _, token, root = hub
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    write_settings(laptop, url, token, "Public")  # `chaoshub login` refuses a hub that is down
    done, offline = chaos_run(laptop, "offline")  # nobody listens there yet
    assert done.returncode == 1, done.stderr
    assert offline["status"] == "completed" and offline["deviated"] is True
    spooled = list(laptop["spool"].glob("*.journal.json"))
    assert len(spooled) == 1, done.stdout + done.stderr
    assert token not in spooled[0].read_text()
    assert json.loads(spooled[0].read_text())["journal"]["start"] == offline["start"]

    # The hub comes back at that address (a second server on the same databases).
    log = laptop["root"] / "hub.log"
    server = start([str(BIN / "chaoshub"), "run", "--port", str(port), "--no-migrate"], root,
                   clean_env(CHAOSHUB_INSTANCE_PATH=str(root / "instance")), log)
    try:
        wait_until_up(f"{url}/status/live", server, log)
        done, online = chaos_run(laptop, "online")
        assert done.returncode == 1, done.stderr
        assert list(laptop["spool"].iterdir()) == [], done.stdout + done.stderr

        headers = {"Authorization": f"Bearer {token}"}
        experiments = requests.get(f"{url}/api/v1/orgs/alice/workspaces/Public/experiments",
                                   headers=headers, timeout=10).json()["experiments"]
        assert len(experiments) == 1  # both runs of the same file report to one experiment
        executions = requests.get(
            f"{url}/api/v1/experiments/{experiments[0]['id']}/executions", headers=headers,
            timeout=10).json()["executions"]
        assert len(executions) == 2
        starts = set()
        for execution in executions:
            stored = requests.get(f"{url}/api/v1/executions/{execution['id']}/journal",
                                  headers=headers, timeout=10)
            assert token not in stored.text
            starts.add(stored.json()["start"])
        assert starts == {offline["start"], online["start"]}
    finally:
        stop(server)


def test_a_run_the_hub_refuses_goes_on_and_its_journal_waits(hub, laptop):
    url, token, _ = hub
    write_settings(laptop, url, token, "Nowhere")  # no such workspace: the hub answers 404
    done, local = chaos_run(laptop, "refused")
    assert done.returncode == 1, done.stderr
    assert local["status"] == "completed"
    # The workspace may be made later: the journal waits for the next run, with the reason.
    assert list(laptop["spool"].glob("*.rejected.json")) == []
    (waiting,) = laptop["spool"].glob("*.journal.json")
    assert token not in waiting.read_text()
    record = json.loads(waiting.read_text())
    assert record["journal"]["start"] == local["start"]
    assert record["reason"].startswith("the hub refused the run (404:")


def test_the_client_venv_holds_nothing_of_the_server(client_venv):
    listed = subprocess.run([client_venv / "python", "-m", "pip", "list", "--format=json"],
                            capture_output=True, text=True, timeout=60, env=clean_env())
    assert listed.returncode == 0, listed.stderr
    installed = {p["name"].lower().replace("_", "-") for p in json.loads(listed.stdout)}
    assert {"chaoshub-client", "chaostoolkit", "chaostoolkit-lib"} <= installed
    assert installed & SERVER_PACKAGES == set()
    helped = subprocess.run([client_venv / "chaoshub", "--help"], capture_output=True, text=True,
                            timeout=30, env=clean_env())
    commands = helped.stdout.split("Commands:")[1].splitlines()
    assert [line.split()[0] for line in commands if line.strip()] == ["hub-run", "login", "spool"]


def test_settings_from_the_old_login_still_find_the_control():
    from chaoshub_client import control

    from chaoshub import control as old

    assert old.configure_control is control.configure_control
