"""The audit log as files, date ranges and readable text: what its API route and its page
share."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from flask import Response

from chaoshub.core.errors import BadRequest
from chaoshub.dashboard.page_views import pages

# Words of detail keys written otherwise than in lower case, and keys that read better renamed.
WORDS = {"id": "ID", "ids": "IDs", "ip": "IP", "url": "URL"}
LABELS = {"hint": "Starts with", "expires_at": "Expires", "ip": "Address",
          "previous_ip": "Previous address"}


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


@pages.app_template_filter("audit_details")
def readable_details(details: dict) -> list[tuple[str, str]]:
    """An entry's details as (label, text) pairs for people: keys humanised, lists joined,
    empty values left out. The export and the API keep the details as recorded."""
    return [(_label(key), _text(value, key)) for key, value in (details or {}).items()
            if value is not None]


def _label(key: str) -> str:
    if key in LABELS:
        return LABELS[key]
    words = [WORDS.get(word, word) for word in str(key).split("_") if word]
    text = " ".join(words) or str(key)
    return text[:1].upper() + text[1:]


def _text(value, key: str = "") -> str:
    if value is None or value == [] or value == {}:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(_text(item) for item in value)
    if isinstance(value, dict):
        if set(value) == {"from", "to"}:  # a setting's change
            return f"from {_text(value['from'])} to {_text(value['to'])}"
        return "; ".join(f"{_label(k).lower()} {_text(v, k)}" for k, v in value.items())
    if isinstance(value, str) and key.endswith("_at"):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
        if moment.tzinfo:
            moment = moment.astimezone(UTC)
        return moment.strftime("%Y-%m-%d %H:%M UTC")
    return str(value)
