"""A newcomer's first run, end to end: a new account, the empty workspace's guide, a token made
from it, `chaoshub login` as the guide shows it, `chaos run` of the guide's first experiment (the
real CLI), and the run on the runs overview."""

from __future__ import annotations

import json
import shlex
import subprocess

import pytest

from tests.helpers import clean_env, running_hub, sign_in_browser, sign_up_over_http
from tests.test_control import CLIENT, client_venv  # noqa: F401 (a fixture)

pytestmark = pytest.mark.e2e


@pytest.fixture
def hub(tmp_path):
    (tmp_path / "hub").mkdir()
    with running_hub(tmp_path / "hub") as url:
        yield url


def test_a_newcomer_goes_from_sign_up_to_a_run_on_the_overview(page, hub, tmp_path,
                                                                 client_venv):  # noqa: F811
    sign_up_over_http(hub, "newbie")
    sign_in_browser(page, hub, "newbie")
    page.goto(f"{hub}/newbie/Personal")
    guide = page.get_by_test_id("first-run-guide")
    assert "chaostoolkit" in guide.get_by_test_id("guide-install").inner_text()

    # The file of step 4, downloaded as the browser would (the page's own cookies).
    link = guide.get_by_test_id("guide-download").get_attribute("href")
    download = page.request.get(hub + link)
    assert download.ok and "attachment" in download.headers["content-disposition"]
    experiment = tmp_path / "first-run.json"
    experiment.write_bytes(download.body())
    assert json.loads(experiment.read_text())["steady-state-hypothesis"]["probes"][0][
        "provider"]["url"] == f"{hub}/status/health"

    # Step 2: one click makes the token; the answer shows the login command with it.
    guide.get_by_test_id("guide-make-token").click()
    command = page.get_by_test_id("guide-login-command").inner_text()
    secret = page.get_by_test_id("secret").input_value()
    # The command asks for the token: none lands in a shell's history.
    assert secret not in command and f"--url {hub}" in command
    assert "executions:write" in page.get_by_test_id("new-token").inner_text()

    home = tmp_path / "home"
    home.mkdir()
    settings = tmp_path / "settings.yaml"
    login = shlex.split(command)
    assert login[:2] == ["chaoshub", "login"]
    done = subprocess.run([CLIENT / "chaoshub", *login[1:], "--settings", str(settings)],
                          input=secret + "\n", env=clean_env(HOME=str(home)),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    ran = subprocess.run([CLIENT / "chaos", "--no-version-check", "--settings", str(settings),
                          "run", "--journal-path", str(tmp_path / "journal.json"),
                          str(experiment)],
                         env=clean_env(HOME=str(home), CHAOSHUB_SPOOL_DIR=str(tmp_path / "spool")),
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stdout + ran.stderr

    page.goto(f"{hub}/-/runs")
    latest = page.get_by_test_id("overview-recent")
    assert "My first run: the hub answers" in latest.inner_text()
    assert latest.get_by_test_id("overview-run").first.get_attribute("data-outcome") == "passed"
    # The workspace has an experiment now: the guide makes way for the list.
    page.goto(f"{hub}/newbie/Personal")
    assert page.get_by_test_id("first-run-guide").count() == 0
