"""Logging that never writes a secret: API tokens and invitation links are scrubbed out."""

from __future__ import annotations

import logging
import re

# An API token (`chub_...`), an invitation link's secret (`chinv_...`), and whatever a client
# puts after a credential-looking name in a query string (a provider's `code` and `state` too).
# Hints shown in lists are shorter than any secret and say nothing on their own: they stay.
SECRET = re.compile(
    r"\b(chub_|chinv_)[A-Za-z0-9_-]{6,}"
    r"|(?<=[?&])((?:access_)?token|api_key|password|secret|code|state)=[^&\s\"']*",
    re.IGNORECASE,
)


def scrub(text: str) -> str:
    """`text` with every secret replaced by its kind and an ellipsis."""
    return SECRET.sub(lambda m: f"{m.group(1)}…" if m.group(1) else f"{m.group(2)}=…", text)


def _scrubbing(factory):
    def make_record(*args, **kwargs) -> logging.LogRecord:
        record = factory(*args, **kwargs)
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
