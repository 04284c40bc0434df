"""Paging of every listing: one page-size rule, signed keyset cursors, and the keyset query.

A cursor holds the sort keys of the last row shown and a fingerprint of the listing's name and
filters, signed with the app's secret: a client can neither forge a position nor carry a cursor
over to another listing or other filters. Either, like any cursor the hub did not make, is a
400 that says to start again from the first page.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from flask import current_app
from pydantic import Field
from sqlalchemy import ColumnElement, Select, and_, or_

from chaoshub.core.errors import BadRequest
from chaoshub.core.openapi import Query

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
CURSOR_MAX = 1000
CURSOR_VERSION = 1
PAGE_RULE = (f"Listings come a page at a time, newest first: ?limit= rows (default "
             f"{DEFAULT_LIMIT}, at most {MAX_LIMIT}); an answer with a next_cursor has more, "
             "asked for with ?cursor= and the same filters. A cursor of another listing or "
             "other filters is a 400: start again from the first page.")


class PageQuery(Query):
    """A page of a listing: its size and the cursor of where the previous page ended."""

    cursor: str | None = Field(None, description="next_cursor of the previous page")
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description=PAGE_RULE)


def page_size(limit: object) -> int:
    """The rows of a page asked for; BadRequest outside 1..MAX_LIMIT."""
    if limit in (None, ""):
        return DEFAULT_LIMIT
    try:
        size = int(limit)  # type: ignore[call-overload]
    except (TypeError, ValueError) as exc:
        raise _bad_limit() from exc
    if not 1 <= size <= MAX_LIMIT:
        raise _bad_limit()
    return size


def fingerprint(*filters: Any) -> str:
    """A digest of a listing's filters, which its cursors carry."""
    return hashlib.sha256(json.dumps(filters, default=str).encode()).hexdigest()[:24]


def encode(name: str, filters: Any, position: list[Any]) -> str:
    """The signed cursor of the page after `position`, in listing `name` with `filters` only."""
    return sign(name, {"v": CURSOR_VERSION, "f": fingerprint(filters), "p": position})


def decode(cursor: str, name: str, filters: Any) -> list[Any]:
    """The position a cursor of this listing points after; BadRequest for any other cursor."""
    data = verified(cursor, name)
    if not isinstance(data, dict) or not isinstance(data.get("p"), list):
        raise bad_cursor()
    if (data.get("v"), data.get("f")) != (CURSOR_VERSION, fingerprint(filters)):
        raise other_listing()
    return data["p"]


def timed(position: list[Any]) -> tuple[datetime, Any]:
    """A position of (an aware time, a row id) as decoded from a cursor; BadRequest otherwise."""
    try:
        at, last_id = position
        moment = datetime.fromisoformat(at)
    except (ValueError, TypeError) as exc:
        raise bad_cursor() from exc
    if moment.tzinfo is None or type(last_id) not in (int, str):
        raise bad_cursor()
    return moment, last_id


def after(query: Select, key: ColumnElement, id_column: ColumnElement,
          position: tuple[Any, Any] | None) -> Select:
    """`query` newest first by (key, id), from just past `position` when there is one."""
    # The id breaks ties of the key, so a position is a place between two rows, never a row.
    if position is not None:
        at, last_id = position
        query = query.where(or_(key < at, and_(key == at, id_column < last_id)))
    return query.order_by(key.desc(), id_column.desc())


def newest_first(session: Any, query: Select, key: Any, id_column: Any, cursor: str | None,
                 name: str, filters: Any, limit: object) -> tuple[list[Any], str | None]:
    """A page of `query`'s rows newest first by (`key`, a time, then `id_column`), from just
    past `cursor`, and the cursor of the next page (None on the last)."""
    size = page_size(limit)
    position = timed(decode(cursor, name, filters)) if cursor else None
    rows = list(session.scalars(after(query, key, id_column, position).limit(size + 1)))
    if len(rows) <= size:
        return rows, None
    last = rows[size - 1]
    return rows[:size], encode(name, filters, [getattr(last, key.key).isoformat(),
                                               getattr(last, id_column.key)])


def page_of(items: list[Any], key: Callable[[Any], list[Any]], cursor: str | None, name: str,
            filters: Any, limit: int) -> tuple[list[Any], str | None]:
    """A page of `items`, sorted by `key` ascending, and the cursor of the next page."""
    # For short listings whose order SQL cannot hold simply (members: role rank, then name).
    rows = sorted(items, key=key)
    if cursor:
        position = decode(cursor, name, filters)
        try:
            rows = [row for row in rows if key(row) > position]
        except TypeError as exc:
            raise bad_cursor() from exc
    if len(rows) <= limit:
        return rows, None
    return rows[:limit], encode(name, filters, key(rows[limit - 1]))


def sign(name: str, payload: dict[str, Any]) -> str:
    """A cursor carrying `payload`, signed for listing `name`."""
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return f"{_b64(raw)}.{_b64(_signature(name, raw))}"


def verified(cursor: object, name: str) -> Any:
    """The payload of a cursor signed for listing `name`; BadRequest for any other."""
    if not isinstance(cursor, str) or len(cursor) > CURSOR_MAX or cursor.count(".") != 1:
        raise bad_cursor()
    encoded, signature = cursor.split(".")
    try:
        raw, sent = _unb64(encoded), _unb64(signature)
    except (ValueError, binascii.Error) as exc:
        raise bad_cursor() from exc
    if not hmac.compare_digest(sent, _signature(name, raw)):
        raise bad_cursor()
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise bad_cursor() from exc


def bad_cursor() -> BadRequest:
    """The answer to a cursor the hub did not make for this listing."""
    return BadRequest("the cursor is not valid; start from the first page",
                      [{"pointer": "/cursor", "message": "not a cursor of this listing"}])


def other_listing() -> BadRequest:
    """The answer to a cursor made for the same listing with other filters or order."""
    return BadRequest("the cursor belongs to another listing (other filters or order); "
                      "start from the first page",
                      [{"pointer": "/cursor", "message": "made for another listing"}])


def _bad_limit() -> BadRequest:
    return BadRequest(f"limit must be a whole number from 1 to {MAX_LIMIT}",
                      [{"pointer": "/limit", "message": f"from 1 to {MAX_LIMIT}"}])


def _signature(name: str, raw: bytes) -> bytes:
    # The listing's name is signed with the payload: a cursor of one listing fails in another.
    key = str(current_app.config["SECRET_KEY"]).encode()
    context = f"chaoshub {name} cursor\x00".encode()
    return hmac.new(key, context + raw, hashlib.sha256).digest()[:18]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    if not text.isascii():
        raise ValueError("not base64")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
