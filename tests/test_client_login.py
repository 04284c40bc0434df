"""`chaoshub login` asks a real hub about the token, org and workspace before writing anything."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from tests import test_control
from tests.helpers import clean_env, free_port
from tests.test_control import CLIENT, make_token

pytestmark = pytest.mark.e2e
# The hub with alice and her token, and the client venv, as the control's tests have them.
hub, client_venv = test_control.hub, test_control.client_venv


def login(tmp_path, url: str, token: str, org: str = "alice",
          workspace: str = "Personal") -> subprocess.CompletedProcess:
    """`chaoshub login` as a user types it, from the client venv."""
    return subprocess.run([CLIENT / "chaoshub", "login", "--url", url, "--token", token, "--org",
                           org, "--workspace", workspace, "--settings",
                           str(tmp_path / "settings.yaml")],
                          env=clean_env(HOME=str(tmp_path)), capture_output=True, text=True,
                          timeout=60)


def test_a_good_token_logs_in_quietly(hub, client_venv, tmp_path):
    url, token, _ = hub
    done = login(tmp_path, url, token)
    assert done.returncode == 0, done.stderr
    assert f"now reports runs to {url} (alice/Personal) as alice" in done.stdout
    assert "Warning" not in done.stderr
    assert yaml.safe_load((tmp_path / "settings.yaml").read_text())["vendor"]["chaoshub"][
        "token"] == token


def test_a_garbage_token_is_refused_and_nothing_written(hub, client_venv, tmp_path):
    url, _, _ = hub
    done = login(tmp_path, url, "chub_not-a-real-token")
    assert done.returncode == 1
    assert f"{url} refused the token (401" in done.stderr
    assert "the settings were not written" in done.stderr
    assert not (tmp_path / "settings.yaml").exists()


def test_an_address_where_nothing_listens_is_refused(hub, client_venv, tmp_path):
    _, token, _ = hub
    nowhere = f"http://127.0.0.1:{free_port()}"
    done = login(tmp_path, nowhere, token)
    assert done.returncode == 1
    assert f"cannot reach {nowhere}: nothing answers there" in done.stderr
    assert not (tmp_path / "settings.yaml").exists()


def test_a_missing_org_or_workspace_is_refused(hub, client_venv, tmp_path):
    url, token, _ = hub
    full = make_token(hub[2], "full", "everything")  # may read orgs: the org's absence shows
    no_org = login(tmp_path, url, full, org="nobody")
    assert no_org.returncode == 1
    assert "there is no org 'nobody' that this token may see" in no_org.stderr
    no_workspace = login(tmp_path, url, token, workspace="Nowhere")
    assert no_workspace.returncode == 1
    assert "the org 'alice' has no workspace 'Nowhere' that this token may see" in \
        no_workspace.stderr
    assert not (tmp_path / "settings.yaml").exists()


def test_a_token_that_cannot_publish_runs_logs_in_with_a_warning(hub, client_venv, tmp_path):
    url, _, root = hub
    reader = make_token(root, "experiments:read,executions:read", "reader")
    done = login(tmp_path, url, reader)
    assert done.returncode == 0, done.stderr
    assert "Warning: this token lacks executions:write, experiments:write" in done.stderr
    assert (tmp_path / "settings.yaml").exists()
    half = make_token(root, "executions:write", "runs only")
    done = login(tmp_path, url, half)
    assert done.returncode == 0, done.stderr
    assert "Warning: this token lacks experiments:write:" in done.stderr
    assert "executions:write," not in done.stderr
