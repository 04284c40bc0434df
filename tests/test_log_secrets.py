"""The grep that fails a test run whose log lines hold a secret (tests/log_secrets.py)."""

from __future__ import annotations

import logging
import sys

from chaoshub.core import logs
from tests.conftest import PASSWORD
from tests.log_secrets import find_secrets


def test_the_detector_finds_each_kind_of_secret():
    # Made here, at run time: no file of the repository holds one.
    lines = [
        "token " + "chub_" + "A1b2" * 8 + " refused",
        "/invitations/" + "chinv_" + "x" * 43,
        f"password={PASSWORD}",
        "Cookie: chaoshub_session=" + "s" * 43,
        '{"headers": {"Authorization": "Bearer ' + "e" * 40 + '"}}',
        "Authorization: Bearer " + "abcdefghijklmnopqrstuv",
        # No secret: a hint, a scrubbed token, the documented form of the header.
        "token chub_ab12 (hint)", "token chub_… refused",
        "send an API token: Authorization: Bearer <token>", "GET /status/live 200 1.2ms user=-",
    ]
    assert list(find_secrets(lines)) == [
        (1, "an API token"), (2, "an invitation secret"), (3, "the tests' password"),
        (4, "a session cookie"), (5, "an Authorization header"), (6, "an Authorization header")]


def test_log_records_reach_the_tee_as_the_hub_writes_them(tee_log_records):
    logs.install()  # as every hub process does: secrets are scrubbed from each record
    secret = "chub_" + "z" * 30
    logging.getLogger("chaoshub.test").warning("token %s refused", secret,
                                               extra={"path": f"/t/{secret}"})
    last = tee_log_records.read_text().splitlines()[-1]
    assert '"logger": "chaoshub.test"' in last and "refused" in last
    assert secret not in last and list(find_secrets([last])) == []


def test_a_text_line_scrubs_the_traceback_too():
    # The record factory cleans the message only: an exception's text is the formatter's to clean.
    secret = "chub_" + "q" * 30
    try:
        raise ValueError(f"GET https://provider.example/cb?code={'c' * 20}&x=1 with {secret}")
    except ValueError:
        record = logging.getLogger("chaoshub.test").makeRecord(
            "chaoshub.test", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    line = logs.Text().format(record)
    assert "ValueError" in line and "failed" in line
    assert secret not in line and "c" * 20 not in line
    assert list(find_secrets(line.splitlines())) == []
