"""`chaoshub spool` without a hub: what it lists, and which token it would send where."""

from __future__ import annotations

from click.testing import CliRunner

from chaoshub_client.cli import main
from chaoshub_client.control import write_spool
from chaoshub_client.spool import _token

URL = "https://hub.example.com"
SETTINGS = {"vendor": {"chaoshub": {"hub_url": URL, "token": "mine"}},
            "auths": {"other.example.com": {"type": "bearer", "value": "theirs"}}}


def test_the_list_says_what_is_kept_where_and_why(tmp_path):
    write_spool(tmp_path, {"hub_url": URL, "org": "alice", "workspace": "W", "reason":
                           "the hub refused the run (403: the credential lacks the "
                           "executions:write scope)", "journal": {"status": "completed",
                                                                  "experiment": {"title": "T"}}})
    write_spool(tmp_path, {"hub_url": URL, "reason": "malformed", "journal": {}}, rejected=True)
    listed = CliRunner().invoke(main, ["spool", "--spool-dir", str(tmp_path)])
    assert listed.exit_code == 0, listed.output
    assert "2 journal(s) in" in listed.output
    assert "waiting (sent again by the next run" in listed.output
    assert "set aside (sent again only by `chaoshub spool send`)" in listed.output
    assert "run of 'T', completed" in listed.output and f"for alice/W on {URL}" in listed.output
    assert "why: the hub refused the run (403: the credential lacks" in listed.output
    empty = CliRunner().invoke(main, ["spool", "--spool-dir", str(tmp_path / "none")])
    assert "No journal is waiting" in empty.output


def test_a_token_goes_only_to_the_hub_it_was_given_for(monkeypatch):
    monkeypatch.delenv("CHAOSHUB_URL", raising=False)
    monkeypatch.delenv("CHAOSHUB_TOKEN", raising=False)
    assert _token(SETTINGS, URL) == "mine"
    assert _token(SETTINGS, "https://other.example.com") == "theirs"
    assert _token(SETTINGS, "https://third.example.com") is None
    monkeypatch.setenv("CHAOSHUB_TOKEN", "from-env")
    assert _token(SETTINGS, URL) == "from-env"
    assert _token(SETTINGS, "https://third.example.com") is None  # not the settings' hub
