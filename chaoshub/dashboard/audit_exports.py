"""The audit log as files and date ranges: what its API route and its page share."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from flask import Response

from chaoshub.core.errors import BadRequest


def jsonl_response(entries, filename: str) -> Response:
    """Audit entries as JSON lines, one entry per line, as a download."""
    lines = "".join(e.model_dump_json() + "\n" for e in entries)
    response = Response(lines, mimetype="application/jsonl")
    # Headers travel as Latin-1 and the name comes from the URL: the name itself goes in RFC
    # 6266's UTF-8 filename*, with an ASCII fallback in filename for older clients.
    fallback = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode()
    response.headers.set("Content-Disposition", "attachment", filename=fallback,
                         **{"filename*": "UTF-8''" + quote(filename, safe="")})
    return response


def parse_day(value: str | None, add_days: int = 0) -> datetime | None:
    """A YYYY-MM-DD date (or an ISO instant) as a UTC instant; add_days=1 ends the day."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise BadRequest(f"{value!r} is not a date (YYYY-MM-DD)") from exc
    if len(value) == 10:
        moment = moment.replace(tzinfo=UTC) + timedelta(days=add_days)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
