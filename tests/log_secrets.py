"""A pytest plugin (tests/conftest.py loads it): every log record of the test process is teed to
a file under the session's tmp folder, formatted as the hub's JSON lines (with the fields given
through `extra=`), and at the end of the session that file and every other `*.log` under the
session's tmp folder (the servers the tests started wrote there) are grepped for secrets (under
pytest-xdist, by the controller, in every worker's folder). A
secret found fails the run, naming where it is without printing it.

The tee sees every record the loggers make: a level a logger leaves out (DEBUG below the hub's
LOG_LEVEL) is never made into a record, so it can hold nothing.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from chaoshub.core.logs import JsonLines
from tests.conftest import PASSWORD
from tests.mail_server import SMTP_PASSWORD

TEE_NAME = "log-records.jsonl"
SECRETS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("an API token", re.compile(r"chub_[A-Za-z0-9_-]{20,}")),
    ("an invitation secret", re.compile(r"chinv_[A-Za-z0-9_-]{20,}")),
    ("a webhook's signing secret", re.compile(r"whsec_[A-Za-z0-9+/]{20,}")),
    ("a repository link's webhook secret", re.compile(r"ghsec_[A-Za-z0-9_-]{20,}")),
    ("a deploy key's private half", re.compile(r"BEGIN OPENSSH PRIVATE KEY")),
    ("the git tests' access token", re.compile(r"glpat-s3cret")),
    ("the tests' password", re.compile(re.escape(PASSWORD))),
    ("the tests' SMTP password", re.compile(re.escape(SMTP_PASSWORD))),
    ("a mailed link's secret", re.compile(r"ch(?:verify|reset)_[A-Za-z0-9_-]{20,}")),
    ("a session cookie", re.compile(r"chaoshub_session=[A-Za-z0-9_-]{20,}")),
    # A header with a credential in it ("Authorization: Bearer <token>" in a hint is no secret).
    ("an Authorization header", re.compile(r"Authorization\"?\s*[:=]\s*\"?Bearer\s+[\w.~+/-]{16}",
                                           re.IGNORECASE)),
)


def find_secrets(lines: Iterable[str]) -> Iterator[tuple[int, str]]:
    """(line number from 1, kind of secret) for each line holding a secret."""
    for number, line in enumerate(lines, 1):
        for kind, pattern in SECRETS:
            if pattern.search(line):
                yield number, kind


class Tee(logging.Handler):
    """Writes every record it is handed to one file, as the hub's JSON lines."""

    def __init__(self, path: Path):
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonLines())
        self.stream = path.open("a", encoding="utf-8")

    def emit(self, record: logging.LogRecord) -> None:
        """Write the record, whatever its level or logger."""
        try:
            self.stream.write(self.format(record) + "\n")
            self.stream.flush()
        except Exception:
            self.handleError(record)

    def close(self) -> None:
        """Close the file."""
        self.stream.close()
        super().close()


_tee: Tee | None = None


@pytest.fixture(scope="session", autouse=True)
def tee_log_records(tmp_path_factory) -> Iterator[Path]:
    """Tee the root logger's records to the session's tmp folder, for the whole session."""
    global _tee
    path = tmp_path_factory.getbasetemp() / TEE_NAME
    _tee = Tee(path)
    logging.getLogger().addHandler(_tee)
    yield path
    logging.getLogger().removeHandler(_tee)  # the file is grepped once the session ends


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Fail the run when a log line written during it holds a secret."""
    if _tee is not None:
        logging.getLogger().removeHandler(_tee)
        _tee.close()
    # Under pytest-xdist a worker's exit status is not the run's: the controller, which runs no
    # test, greps once every worker is done (their tmp folders sit inside its own).
    if hasattr(session.config, "workerinput"):
        return
    if _tee is None and not session.config.pluginmanager.has_plugin("dsession"):
        return
    basetemp = session.config._tmp_path_factory.getbasetemp()
    found = []
    for path in sorted(basetemp.rglob("*.log")) + sorted(basetemp.rglob(TEE_NAME)):
        try:
            with path.open(encoding="utf-8", errors="replace") as lines:
                found += [(path, n, kind) for n, kind in find_secrets(lines)]
        except OSError:
            continue
    if not found:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        for path, number, kind in found[:50]:
            reporter.write_line(f"log secrets: {path}:{number} holds {kind}", red=True)
        reporter.write_line(f"log secrets: {len(found)} line(s) hold a secret", red=True)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
