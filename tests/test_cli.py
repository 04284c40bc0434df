"""The `chaoshub` command: serving, migrating, and bootstrapping accounts."""

from __future__ import annotations

import gc
import subprocess
import sys
from importlib.metadata import entry_points

import pytest
import requests
from click.testing import CliRunner

from chaoshub import gunicorn_config
from chaoshub.cli import main
from tests.helpers import BIN, clean_env, free_port, start, stop, wait_until_up


@pytest.fixture
def fresh(tmp_path, monkeypatch, signing_key_file):
    """A shell in an empty folder with no hub configuration but its own instance path."""
    for key in ("AUTH_DATABASE_URL", "DASHBOARD_DATABASE_URL", "EXPERIMENT_DATABASE_URL",
                "REDIS_URL", "CHAOSHUB_SERVICES"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CHAOSHUB_INSTANCE_PATH", str(tmp_path / "instance"))
    monkeypatch.setenv("CHAOSHUB_SIGNING_KEY_FILE", str(signing_key_file))
    return tmp_path


def test_db_upgrade_one_service_then_all(fresh):
    runner = CliRunner()
    result = runner.invoke(main, ["db", "upgrade", "--service", "auth"])
    assert result.exit_code == 0, result.output
    from chaoshub.core.migrate import heads

    assert f"auth: {heads('auth')[0]}" in result.output
    current = runner.invoke(main, ["db", "current"]).output
    assert f"auth: {heads('auth')[0]} (up to date)" in current
    assert "dashboard: (empty)" in current

    assert runner.invoke(main, ["db", "upgrade"]).exit_code == 0
    current = runner.invoke(main, ["db", "current"]).output
    assert current.count("(up to date)") == 3


def test_user_create_bootstraps_an_account_that_can_sign_in(fresh):
    runner = CliRunner()
    runner.invoke(main, ["db", "upgrade"])
    result = runner.invoke(main, ["user", "create", "--username", "ops", "--password-stdin"],
                           input="a long enough passphrase\n")
    assert result.exit_code == 0, result.output
    assert "created ops" in result.output

    from chaoshub import create_app
    from chaoshub.auth import service as auth
    from chaoshub.dashboard import service as dashboard

    app = create_app()
    with app.app_context():
        grant = auth.sign_in("ops", "a long enough passphrase")
        claim = auth.resolve_credentials(session_token=grant.token)
        orgs = dashboard.list_orgs(claim)
    assert [(o.name, o.personal, [w.name for w in o.workspaces]) for o in orgs] == [
        ("ops", True, ["Personal", "Public"])]


def test_user_create_reports_a_weak_password_and_exits_non_zero(fresh):
    runner = CliRunner()
    runner.invoke(main, ["db", "upgrade"])
    result = runner.invoke(main, ["user", "create", "--username", "ops", "--password-stdin"],
                           input="short\n")
    assert result.exit_code == 1
    assert "password: use at least 10 characters" in result.output


def test_run_defaults_to_localhost_8080():
    help_text = CliRunner().invoke(main, ["run", "--help"]).output
    assert "127.0.0.1" in help_text and "8080" in help_text


def test_run_on_a_fresh_folder_makes_everything_it_needs(tmp_path):
    port = free_port()
    log = tmp_path / "hub.log"
    process = start([str(BIN / "chaoshub"), "run", "--port", str(port)], tmp_path,
                    clean_env(), log)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/status/health", process, log)
        health = requests.get(f"http://127.0.0.1:{port}/status/health").json()
        assert health["status"] == "ok"
        signin = requests.get(f"http://127.0.0.1:{port}/signin")
        assert signin.status_code == 200 and "Sign in" in signin.text
    finally:
        stop(process)
    instance = tmp_path / "instance"
    assert {p.name for p in instance.iterdir()} >= {
        "auth.db", "dashboard.db", "experiment.db", "signing-key.pem", "secret-key"}


def test_instance_path_moves_the_instance_folder(tmp_path):
    port = free_port()
    elsewhere = tmp_path / "elsewhere"
    log = tmp_path / "hub.log"
    process = start([str(BIN / "chaoshub"), "run", "--port", str(port)], tmp_path,
                    clean_env(CHAOSHUB_INSTANCE_PATH=str(elsewhere)), log)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/status/live", process, log)
    finally:
        stop(process)
    assert (elsewhere / "auth.db").exists()
    assert not (tmp_path / "instance").exists()


def test_gunicorn_serves_the_same_app(tmp_path):
    env = clean_env(CHAOSHUB_INSTANCE_PATH=str(tmp_path / "instance"))
    subprocess.run([str(BIN / "chaoshub"), "db", "upgrade"], cwd=tmp_path, env=env, check=True,
                   capture_output=True)
    port = free_port()
    log = tmp_path / "gunicorn.log"
    process = start([str(BIN / "gunicorn"), "-b", f"127.0.0.1:{port}", "-w", "1",
                     "chaoshub:create_app()"], tmp_path, env, log)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/status/health", process, log)
        assert requests.get(f"http://127.0.0.1:{port}/status/health").json()["status"] == "ok"
    finally:
        stop(process)


def test_a_gunicorn_worker_leaves_its_loaded_app_out_of_the_collectors_passes():
    before = gc.get_freeze_count()
    try:
        gunicorn_config.post_worker_init(None)
        # The modules and apps loaded so far: a full pass walks none of them again.
        assert gc.get_freeze_count() > before + 50_000
    finally:
        gc.unfreeze()


def test_production_refuses_to_start_without_its_secrets(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CHAOSHUB_ENV", "production")
    monkeypatch.delenv("SECRET_KEY", raising=False)
    result = CliRunner().invoke(main, ["db", "current"])
    assert result.exit_code == 1
    assert "SECRET_KEY is required in production" in result.output


def test_the_installed_chaoshub_command_carries_every_server_command():
    registered = {ep.name: ep.load() for ep in entry_points(group="chaoshub.commands")}
    assert registered == main.commands  # pyproject.toml lists each command of chaoshub.cli:main
    listed = subprocess.run([str(BIN / "chaoshub"), "--help"], capture_output=True, text=True,
                            timeout=60, env=clean_env())
    commands = listed.stdout.split("Commands:")[1].splitlines()
    assert [line.split()[0] for line in commands if line.strip()] == sorted(
        [*main.commands, "hub-run", "login", "spool"])


def test_serving_needs_no_chaostoolkit(fresh):
    # chaostoolkit is in this venv (the dev extra), yet the hub never loads it.
    script = ("import sys; from chaoshub import create_app; import chaoshub.cli; "
              "assert create_app().test_client().get('/status/live').status_code == 200; "
              "print(sorted(m for m in sys.modules if m.startswith(('chaoslib', 'chaostoolkit'))))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, cwd=fresh)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
