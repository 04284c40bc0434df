"""Typed errors, and the one JSON error shape every API answer uses."""

from __future__ import annotations

import errno
import logging
import sqlite3
from typing import Any

from flask import Flask, Response, jsonify, render_template, request
from pydantic import ValidationError
from sqlalchemy import exc as sql
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class HubError(Exception):
    """An error a client may see: a code, an HTTP status, a message and details."""

    code = "error"
    status = 400

    def __init__(self, message: str = "", details: Any = None):
        super().__init__(message or self.code)
        self.message = message or self.code.replace("_", " ")
        self.details = details

    def to_payload(self) -> dict[str, Any]:
        """The JSON body for this error."""
        return {"error": self.code, "message": self.message, "details": self.details}


class BadRequest(HubError):
    code, status = "bad_request", 400


class Unauthorized(HubError):
    code, status = "unauthorized", 401


class Forbidden(HubError):
    code, status = "forbidden", 403


class NotFound(HubError):
    code, status = "not_found", 404


class Conflict(HubError):
    code, status = "conflict", 409


class Gone(HubError):
    code, status = "gone", 410


class PayloadTooLarge(HubError):
    code, status = "payload_too_large", 413


class ValidationFailed(HubError):
    code, status = "validation_failed", 422


class RateLimited(HubError):
    code, status = "rate_limited", 429

    def __init__(self, message: str = "", details: Any = None, retry_after: int = 60):
        super().__init__(message, details)
        self.retry_after = retry_after


class ServiceUnavailable(HubError):
    code, status = "service_unavailable", 503
    retry_after: int | None = None


class DatabaseUnavailable(ServiceUnavailable):
    """A database did not answer (down, restarting, or every connection busy): try again."""

    retry_after = 5

    def __init__(self, message: str = "", details: Any = None):
        super().__init__(message or "a database is not answering right now; try again in a "
                         "few seconds", details)


# What SQLAlchemy raises when the database is away rather than the request wrong: connections
# refused, dropped or timed out, and no pooled connection free in time.
DATABASE_AWAY = (sql.OperationalError, sql.InterfaceError, sql.DisconnectionError,
                 sql.TimeoutError)


class InsufficientStorage(HubError):
    code, status = "insufficient_storage", 507


ERRORS_BY_CODE: dict[str, type[HubError]] = {
    cls.code: cls
    for cls in (
        BadRequest, Unauthorized, Forbidden, NotFound, Conflict, Gone, PayloadTooLarge,
        ValidationFailed, RateLimited, ServiceUnavailable, InsufficientStorage,
    )
}


def pointer(*parts: str | int) -> str:
    """The RFC 6901 JSON pointer to the value reached through `parts` ("" is the whole value)."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def problem(where: str | int | tuple[str | int, ...], message: str) -> dict[str, str]:
    """One detail of a refused input: the pointer to the value at fault, and what is wrong."""
    parts = where if isinstance(where, tuple) else (where,)
    return {"pointer": pointer(*parts), "message": message}


def pydantic_problems(error: ValidationError, within: tuple[str | int, ...] = ()
                      ) -> list[dict[str, str]]:
    """A pydantic ValidationError as details, each with the pointer of its value."""
    return [problem((*within, *e["loc"]), _message(e))
            for e in error.errors(include_url=False, include_input=False)]


def problems_by_field(details: Any) -> dict[str, str]:
    """The messages of an error's details keyed by the top-level field they point at (forms)."""
    if not isinstance(details, list):
        return {}
    return {_top_field(d.get("pointer", "")): d.get("message", "")
            for d in details if isinstance(d, dict)}


def _top_field(where: str) -> str:
    first = where[1:].split("/", 1)[0] if where.startswith("/") else ""
    return first.replace("~1", "/").replace("~0", "~")


def _message(error: Any) -> str:
    # A validator's own ValueError reads better without pydantic's "Value error, " in front.
    cause = (error.get("ctx") or {}).get("error")
    return str(cause) if error["type"] == "value_error" and cause else error["msg"]


def first_line(exc: BaseException) -> str:
    """What `exc` says, as one line for a log (its type when it says nothing), 200 characters
    at most."""
    said = str(exc).strip()
    return said.splitlines()[0][:200] if said else type(exc).__name__


def error_from_payload(payload: Any, status: int) -> HubError:
    """Rebuild the typed error a remote service raised from its JSON body."""
    if not isinstance(payload, dict):
        payload = {}
    cls = ERRORS_BY_CODE.get(payload.get("error", ""))
    if cls is None:
        cls = ServiceUnavailable if status >= 500 else BadRequest
    return cls(str(payload.get("message") or ""), payload.get("details"))


def wants_json() -> bool:
    """True when the client should get JSON rather than an HTML page."""
    if request.path.startswith(("/api/", "/internal/", "/status/", "/auth/.well-known/")):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best != "text/html" or request.is_json


def error_response(error: HubError) -> Response | tuple[Any, int]:
    """Answer with the error as JSON for API clients, as a page for browsers."""
    if wants_json():
        response = jsonify(error.to_payload())
        response.status_code = error.status
    else:
        html = render_template("error.html", error=error)
        response = Response(html, status=error.status, mimetype="text/html")
    if error.status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


def init_app(app: Flask) -> None:
    """Register the handlers that turn every failure into the one error shape."""

    @app.errorhandler(HubError)
    def _hub_error(error: HubError):
        return error_response(error)

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException):
        status = error.code or 500
        cls = ERRORS_BY_CODE.get(_CODES_BY_STATUS.get(status, ""), HubError)
        hub_error = cls(error.description or error.name)
        hub_error.status = status
        if cls is HubError:
            hub_error.code = error.name.lower().replace(" ", "_")
        response = error_response(hub_error)
        if status == 405 and error.valid_methods:
            response.headers["Allow"] = ", ".join(sorted(error.valid_methods))
        return response

    @app.errorhandler(sql.SQLAlchemyError)
    def _database_error(error: sql.SQLAlchemyError):
        if full := storage_full(error):  # an OperationalError too, but not an outage
            return error_response(full)
        if not isinstance(error, DATABASE_AWAY) or _query_wrong(error):
            return _unexpected(error)
        # One line, no stack: every request says it while a database restarts.
        log.warning("database unavailable on %s %s: %s", request.method, request.path,
                    str(error).splitlines()[0][:200])
        return error_response(DatabaseUnavailable())

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):
        if full := storage_full(error):
            return error_response(full)
        log.exception("unhandled error on %s %s", request.method, request.path)
        hub_error = HubError("something went wrong on our side; it has been logged")
        hub_error.code, hub_error.status = "internal_error", 500
        return error_response(hub_error)


def _query_wrong(error: sql.SQLAlchemyError) -> bool:
    # SQLite says "no such table", "no such column" and syntax errors with an OperationalError
    # too, all under SQLITE_ERROR: a fault of the code or its migrations (a 500 with its stack),
    # not a database away (busy, locked, unable to open: other codes).
    orig = getattr(error, "orig", None)
    return isinstance(orig, sqlite3.Error) and \
        (getattr(orig, "sqlite_errorcode", 0) or 0) & 0xFF == sqlite3.SQLITE_ERROR


def storage_full(error: BaseException) -> InsufficientStorage | None:
    """The 507 to answer when `error` (or what caused it) says the disk is full: SQLite's
    SQLITE_FULL, PostgreSQL's disk_full (53100), or ENOSPC from a write; None otherwise. The
    transaction was rolled back."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        full = (isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT)) or (
            isinstance(error, sqlite3.Error)
            and (getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
                 or "database or disk is full" in str(error))) or (
            getattr(error, "sqlstate", None) == "53100")
        if full:
            log.error("a write failed: the disk is full (%s)", error.__class__.__name__)
            return InsufficientStorage("the hub's storage is full: nothing was written; "
                                       "try again later")
        # SQLAlchemy keeps the driver's error as `orig`.
        error = getattr(error, "orig", None) or error.__cause__ or error.__context__
    return None


_CODES_BY_STATUS = {cls.status: code for code, cls in ERRORS_BY_CODE.items()}
