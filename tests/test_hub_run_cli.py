"""`chaoshub hub-run` as a CI job runs it: the real command from the client venv, a real hub and
its embedded worker; the exit code gates on the run, and the JUnit XML is the run's."""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET

import pytest
import requests

from tests.helpers import BIN, clean_env, running_hub
from tests.run_data import deviating, runnable
from tests.test_control import CLIENT, PASSWORD, client_venv  # noqa: F401 (a fixture)

pytestmark = pytest.mark.workers

SCOPES = "experiments:read,experiments:write,executions:read,executions:write,runs:execute"


def hub_command(root, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run([BIN / "chaoshub", *args], input=stdin, capture_output=True, text=True,
                          env=clean_env(CHAOSHUB_INSTANCE_PATH=str(root / "instance")),
                          cwd=root, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_hub_run_exits_0_on_a_pass_and_1_on_a_deviation_with_the_runs_junit(
        tmp_path, client_venv):  # noqa: F811 (the fixture)
    with running_hub(tmp_path) as url:
        hub_command(tmp_path, "user", "create", "--username", "alice", "--password-stdin",
                    stdin=PASSWORD + "\n")
        token = hub_command(tmp_path, "token", "create", "--username", "alice", "--name", "ci",
                            "--scopes", SCOPES)
        http = requests.Session()
        http.headers["Authorization"] = f"Bearer {token}"
        for document in (runnable("Passes"), deviating("Deviates")):
            made = http.post(f"{url}/api/v1/orgs/alice/workspaces/Personal/experiments",
                             json=document, timeout=30)
            assert made.status_code == 201, made.text
        settings = tmp_path / "settings.yaml"
        env = clean_env(HOME=str(tmp_path), CHAOSHUB_TOKEN=token)
        # As a CI job logs in: the token from the environment (a secret), no prompt.
        login = subprocess.run([CLIENT / "chaoshub", "login", "--url", url, "--org", "alice",
                                "--workspace", "Personal", "--settings", str(settings)],
                               env=env, capture_output=True, text=True, timeout=30)
        assert login.returncode == 0, login.stderr
        env.pop("CHAOSHUB_TOKEN")  # the runs use the saved login

        def hub_run(title: str, junit) -> subprocess.CompletedProcess:
            return subprocess.run([CLIENT / "chaoshub", "hub-run", f"alice/Personal/{title}",
                                   "--wait", "--timeout", "120", "--junit", str(junit),
                                   "--settings", str(settings)],
                                  env=env, capture_output=True, text=True, timeout=150)

        passed = hub_run("Passes", tmp_path / "passes.xml")
        assert passed.returncode == 0, passed.stdout + passed.stderr
        assert "the run passed" in passed.stdout and ": finished" in passed.stdout
        deviated = hub_run("Deviates", tmp_path / "deviates.xml")
        assert deviated.returncode == 1, deviated.stdout + deviated.stderr
        assert "the run deviated" in deviated.stderr

        for junit, title in ((tmp_path / "passes.xml", "Passes"),
                             (tmp_path / "deviates.xml", "Deviates")):
            suite = ET.parse(junit).getroot()
            suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
            assert suite.get("name") == title
            runs = http.get(f"{url}/api/v1/experiments/"
                            f"{_experiment_id(http, url, title)}/executions", timeout=30).json()
            execution = http.get(f"{url}/api/v1/executions/{runs['executions'][0]['id']}",
                                 timeout=30).json()
            # Each steady-state probe out of its tolerance is a failure of the JUnit report.
            missed = [a for a in execution["activities"] if a["tolerance_met"] is False]
            assert int(suite.get("failures")) == len(missed) == (title == "Deviates")
            assert len(suite.findall("testcase")) == len(execution["activities"])


def _experiment_id(http: requests.Session, url: str, title: str) -> str:
    listed = http.get(f"{url}/api/v1/orgs/alice/workspaces/Personal/experiments",
                      params={"search": title}, timeout=30).json()["experiments"]
    return next(e["id"] for e in listed if e["title"] == title)
