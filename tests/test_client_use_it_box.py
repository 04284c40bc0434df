"""The experiment page's "Use it" box, read in a real Chromium: each command is there with the
hub's real address, and typed as shown (the real `chaoshub login` and `chaos run`), they work."""

from __future__ import annotations

import shlex
import subprocess
import tomllib
from pathlib import Path

import pytest
import requests
import yaml

from tests import test_control
from tests.experiment_data import experiment
from tests.helpers import clean_env, running_hub, sign_in_browser, signed_in_session
from tests.test_control import CLIENT

pytestmark = pytest.mark.e2e
client_venv = test_control.client_venv
CLIENT_PACKAGE = tomllib.loads(
    (Path(__file__).resolve().parents[1] / "client" / "pyproject.toml").read_text())[
    "project"]["name"]
SCOPES = ["experiments:read", "experiments:write", "executions:read", "executions:write"]


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """A hub with grace's experiment and an API token of hers."""
    with running_hub(tmp_path_factory.mktemp("use-it-hub")) as url:
        http = signed_in_session(url, "grace")
        document = experiment()
        document["configuration"]["marker_path"] = str(tmp_path_factory.mktemp("m") / "marker")
        created = http.post(f"{url}/api/v1/orgs/grace/workspaces/Personal/experiments",
                            json=document)
        assert created.status_code == 201, created.text
        token = http.post(f"{url}/api/v1/tokens", json={"name": "laptop", "scopes": SCOPES})
        assert token.status_code == 201, token.text
        yield url, created.json()["id"], token.json()["secret"]


def read_box(page, url: str, experiment_id: str) -> dict[str, str]:
    sign_in_browser(page, url, "grace")
    page.goto(f"{url}/grace/personal/experiment/{experiment_id}")
    box = page.get_by_test_id("use-it")
    assert box.get_by_role("heading", level=2).inner_text() == "Use it"
    return {name: box.get_by_test_id(f"{name}-command").inner_text().strip()
            for name in ("install", "login", "run")} | {
        "settings": box.get_by_test_id("settings-snippet").inner_text()}


def test_the_use_it_box_gives_each_command_with_the_hubs_address(page, hub):
    url, experiment_id, _ = hub
    box = read_box(page, url, experiment_id)
    assert box["install"] == f"pip install chaostoolkit {CLIENT_PACKAGE}"
    assert box["login"] == f"chaoshub login --url {url} --org grace --workspace Personal"
    assert box["run"] == f"chaos run {url}/grace/Personal/experiment/{experiment_id}"
    netloc = url.removeprefix("http://")
    assert yaml.safe_load(box["settings"]) == {
        "auths": {netloc: {"type": "bearer", "value": "<your API token>"}},
        "vendor": {"chaoshub": {"hub_url": url, "token": "<your API token>",
                                "organization": "grace", "workspace": "Personal"}},
        "controls": {"chaoshub": {"provider": {"type": "python",
                                               "module": "chaoshub_client.control"}}},
    }


def test_the_commands_of_the_box_work_as_typed(page, hub, client_venv, tmp_path):
    url, experiment_id, token = hub
    box = read_box(page, url, experiment_id)
    settings = tmp_path / "settings.yaml"
    env = clean_env(HOME=str(tmp_path), CHAOSHUB_SPOOL_DIR=str(tmp_path / "spool"))
    # `chaoshub login` as shown, the token pasted when it asks.
    login = shlex.split(box["login"])
    assert login[0] == "chaoshub"
    done = subprocess.run([client_venv / "chaoshub", *login[1:], "--settings", str(settings)],
                          input=token + "\n", env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    written = yaml.safe_load(settings.read_text())
    shown = yaml.safe_load(box["settings"])
    assert written["controls"] == shown["controls"]
    assert written["vendor"]["chaoshub"] == {**shown["vendor"]["chaoshub"], "token": token}

    run = shlex.split(box["run"])
    assert run[:2] == ["chaos", "run"]
    done = subprocess.run([CLIENT / "chaos", "--no-version-check", "--settings", str(settings),
                           "run", "--journal-path", str(tmp_path / "journal.json"), *run[2:]],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert (tmp_path / "journal.json").exists(), done.stdout + done.stderr
    executions = requests.get(f"{url}/api/v1/experiments/{experiment_id}/executions",
                              headers={"Authorization": f"Bearer {token}"}, timeout=10).json()
    assert len(executions["executions"]) == 1, done.stdout + done.stderr
