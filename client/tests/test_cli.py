"""`chaoshub login` writes the Chaos Toolkit's settings; `chaoshub` takes in registered commands."""

from __future__ import annotations

import stat
from types import SimpleNamespace

import click
import pytest
import yaml
from click.testing import CliRunner

from chaoshub_client import cli
from chaoshub_client.cli import main
from chaoshub_client.login_check import LoginCheck, LoginProblem

URL = "https://hub.example.com"


@pytest.fixture(autouse=True)
def hub_says_yes(monkeypatch):
    """No hub here: the check answers as a hub that knows the token (tests/test_client_login.py
    asks a real one); records what it was asked."""
    asked = []

    def check(url, token, org, workspace):
        asked.append((url, token, org, workspace))
        return LoginCheck(username="alice")

    monkeypatch.setattr(cli, "check_login", check)
    return asked


def login(settings, *args: str, **env: str):
    return CliRunner().invoke(main, ["login", "--url", URL, "--settings", str(settings), *args],
                              env=env)


def test_login_writes_settings_that_name_the_control(tmp_path):
    settings = tmp_path / "home" / ".chaostoolkit" / "settings.yaml"
    done = login(settings, "--token", "chub_secret", "--org", "alice", "--workspace", "Personal")
    assert done.exit_code == 0, done.output
    assert "now reports runs to https://hub.example.com (alice/Personal) as alice" in done.output
    assert yaml.safe_load(settings.read_text()) == {
        "vendor": {"chaoshub": {"hub_url": URL, "token": "chub_secret",
                                "organization": "alice", "workspace": "Personal"}},
        "auths": {"hub.example.com": {"type": "bearer", "value": "chub_secret"}},
        "controls": {"chaoshub": {"provider": {"type": "python",
                                               "module": "chaoshub_client.control"}}},
    }
    assert stat.S_IMODE(settings.stat().st_mode) == 0o600


def test_login_merges_into_what_is_there_and_tightens_the_file(tmp_path, hub_says_yes):
    settings = tmp_path / "settings.yaml"
    settings.write_text(yaml.safe_dump({
        "vendor": {"other": {"x": 1}, "chaoshub": {"organization": "alice", "workspace": "W"}},
        "auths": {"other.example.com": {"type": "bearer", "value": "theirs"}},
        "controls": {"tracing": {"provider": {"type": "python", "module": "x"}}},
        "runtime": {"rollbacks": {"strategy": "always"}},
    }))
    settings.chmod(0o644)
    done = login(settings, "--workspace", "Public", CHAOSHUB_TOKEN="chub_from_env")
    assert done.exit_code == 0, done.output
    written = yaml.safe_load(settings.read_text())
    assert written["vendor"]["other"] == {"x": 1}
    assert written["vendor"]["chaoshub"] == {"organization": "alice", "workspace": "Public",
                                             "hub_url": URL, "token": "chub_from_env"}
    assert set(written["auths"]) == {"other.example.com", "hub.example.com"}
    assert set(written["controls"]) == {"tracing", "chaoshub"}
    assert written["runtime"] == {"rollbacks": {"strategy": "always"}}
    assert stat.S_IMODE(settings.stat().st_mode) == 0o600
    # The org kept from before is checked with the new workspace: what runs will use.
    assert hub_says_yes == [(URL, "chub_from_env", "alice", "Public")]


def test_login_asks_for_the_token_when_none_is_given(tmp_path, hub_says_yes):
    settings = tmp_path / "settings.yaml"
    done = CliRunner().invoke(main, ["login", "--url", URL, "--org", "alice", "--workspace",
                                     "W", "--settings", str(settings)], input="chub_typed\n")
    assert done.exit_code == 0, done.output
    assert "API token:" in done.output and "chub_typed" not in done.output  # not echoed
    assert hub_says_yes == [(URL, "chub_typed", "alice", "W")]


def test_login_writes_nothing_when_the_hub_says_no(tmp_path, monkeypatch):
    def refuse(url, token, org, workspace):
        raise LoginProblem(f"{url} refused the token (401: invalid token)")

    monkeypatch.setattr(cli, "check_login", refuse)
    settings = tmp_path / "settings.yaml"
    done = login(settings, "--token", "chub_bad", "--org", "alice", "--workspace", "W")
    assert done.exit_code == 1
    assert "refused the token (401: invalid token); the settings were not written" in done.output
    assert not settings.exists()


def test_login_shows_the_hubs_warnings_and_still_writes(tmp_path, monkeypatch):
    monkeypatch.setattr(cli, "check_login", lambda *a: LoginCheck("alice", ["lacks x"]))
    settings = tmp_path / "settings.yaml"
    done = login(settings, "--token", "chub_weak", "--org", "alice", "--workspace", "W")
    assert done.exit_code == 0 and "Warning: lacks x" in done.output
    assert yaml.safe_load(settings.read_text())["vendor"]["chaoshub"]["token"] == "chub_weak"


def test_login_says_when_the_org_or_workspace_is_missing(tmp_path):
    done = login(tmp_path / "settings.yaml", "--token", "t")
    assert done.exit_code == 0
    assert "(?/?)" in done.output and "--org and --workspace" in done.output


@pytest.mark.parametrize("url", ["hub.example.com", "ftp://hub.example.com", "https://"])
def test_login_refuses_an_address_that_is_not_http(tmp_path, url):
    done = CliRunner().invoke(main, ["login", "--url", url, "--token", "t", "--settings",
                                     str(tmp_path / "settings.yaml")])
    assert done.exit_code == 2 and "http(s) address" in done.output
    assert not (tmp_path / "settings.yaml").exists()


@pytest.mark.parametrize("content", ["- a list\n", "key: [unclosed\n"])
def test_login_leaves_a_file_it_cannot_read_alone(tmp_path, content):
    settings = tmp_path / "settings.yaml"
    settings.write_text(content)
    done = login(settings, "--token", "t")
    assert done.exit_code == 1
    assert settings.read_text() == content


def test_commands_registered_by_other_packages_join_the_group(monkeypatch):
    @click.command()
    def hello() -> None:
        click.echo("hello from elsewhere")

    registered = [SimpleNamespace(name="hello", load=lambda: hello),
                  SimpleNamespace(name="login", load=lambda: pytest.fail("login is the client's"))]
    monkeypatch.setattr(cli, "entry_points", lambda group: registered)
    listed = CliRunner().invoke(main, ["--help"])
    assert "hello" in listed.output and "login" in listed.output
    assert CliRunner().invoke(main, ["hello"]).output == "hello from elsewhere\n"
    assert CliRunner().invoke(main, ["nope"]).exit_code == 2


def test_login_trims_a_token_and_never_shows_one_the_http_library_refuses(tmp_path,
                                                                          hub_says_yes):
    settings = tmp_path / "settings.yaml"
    # A CI secret read from a file keeps its line end: trimmed, as the hub would read it.
    done = login(settings, "--token", "chub_fromfile\n")
    assert done.exit_code == 0, done.output
    assert hub_says_yes[0][1] == "chub_fromfile"
    assert yaml.safe_load(settings.read_text())["vendor"]["chaoshub"]["token"] == "chub_fromfile"
    # A token with a line end inside: requests refuses the header, quoting it in its error.
    from chaoshub_client import login_check
    with pytest.raises(LoginProblem) as refused:
        login_check.check_login("http://127.0.0.1:9", "chub_first\nhalf", None, None)
    assert "chub_first" not in str(refused.value) and "***" in str(refused.value)
