"""Logging that never writes a secret (API tokens and invitation links are scrubbed out), each
line with the id of the request it was written for, as text or as JSON lines."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime

from chaoshub.core import request_ids

FORMATS = ("json", "text")
TEXT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"

# An API token (`chub_...`), an invitation link's secret (`chinv_...`), a mailed link's
# (`chverify_...`, `chreset_...`), and whatever a client puts after a credential-looking name
# in a query string (a provider's `code` and `state` too).
# Hints shown in lists are shorter than any secret and say nothing on their own: they stay.
SECRET = re.compile(
    r"\b(chub_|chinv_|chverify_|chreset_)[A-Za-z0-9_-]{6,}"
    r"|(?<=[?&])((?:access_)?token|api_key|password|secret|code|state)=[^&\s\"']*",
    re.IGNORECASE,
)


def scrub(text: str) -> str:
    """`text` with every secret replaced by its kind and an ellipsis."""
    if "_" not in text and "=" not in text:
        return text  # no prefix and no query parameter: nothing to look for (most lines)
    return SECRET.sub(lambda m: f"{m.group(1)}…" if m.group(1) else f"{m.group(2)}=…", text)


def _scrubbing(factory):
    def make_record(*args, **kwargs) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        record.request_id = request_ids.current() or "-"
        try:
            message = record.getMessage()
        except Exception:  # a bad format is for the handler to report, as usual
            return record
        clean = scrub(message)
        if clean != message:
            record.msg, record.args = clean, None
        return record

    make_record.scrubs = True
    return make_record


def install() -> None:
    """Scrub every record this process logs, whichever library logs it (access logs too)."""
    # A record factory sees every logger's records, the server's access log included, however
    # and wherever their handlers are set up; installed once per process.
    factory = logging.getLogRecordFactory()
    if not getattr(factory, "scrubs", False):
        logging.setLogRecordFactory(_scrubbing(factory))


# What every record carries: anything else on a record came through `extra=` (the access log's
# method, route, status...) and goes into its JSON line as a field of its own.
RECORD_ATTRIBUTES = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message", "asctime", "request_id", "taskName"}


class JsonLines(logging.Formatter):
    """One JSON object a line: time (UTC), level, logger, message, request id, the fields given
    with `extra=`, and the exception's traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON."""
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            # Scrubbed again: a record may come from elsewhere than this process's factory.
            "level": record.levelname, "logger": record.name,
            "message": scrub(record.getMessage()),
            "request_id": getattr(record, "request_id", "-"),
        }
        for name, value in record.__dict__.items():
            if name not in RECORD_ATTRIBUTES and name not in line:
                line[name] = scrub(value) if isinstance(value, str) else value
        if record.exc_info:
            line["exception"] = scrub(self.formatException(record.exc_info))
        return json.dumps(line, ensure_ascii=False, default=str)


class Text(logging.Formatter):
    """Readable lines (TEXT), the traceback and stack scrubbed as the message is: the record
    factory cleans the message only, and an exception's text may quote a URL or a token."""

    def __init__(self) -> None:
        super().__init__(TEXT)

    def formatException(self, ei) -> str:  # noqa: N802 (logging's name)
        """The traceback, scrubbed."""
        return scrub(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:  # noqa: N802 (logging's name)
        """The stack, scrubbed."""
        return scrub(super().formatStack(stack_info))


def configure(level: str, fmt: str) -> None:
    """Send the process's log lines to stderr at `level`, as "json" lines or readable "text"."""
    install()
    # Neither format shows where a line was logged from, nor its thread: logging then skips
    # working them out for each record (a stack walk among them), which the access line of
    # every request would pay for (the logging HOWTO's "Optimization"). The process id stays
    # (one getpid a record): gunicorn's own lines format it, and fail without it.
    logging._srcfile = None
    logging.logThreads = logging.logMultiprocessing = False
    logging.logAsyncioTasks = False
    handler = logging.StreamHandler()
    handler.setFormatter(JsonLines() if fmt == "json" else Text())
    root = logging.getLogger()
    # Once per process: an app made again (tests make many) keeps the one handler.
    for old in [h for h in root.handlers if getattr(h, "chaoshub", False)]:
        root.removeHandler(old)
    handler.chaoshub = True
    root.addHandler(handler)
    root.setLevel(level)
