"""One id per request: the client's `X-Request-Id` when it sends a sane one, a new one otherwise;
echoed in the answer, sent on every call to another service, and on every log line written
while the request is served, so that one id finds a request across the services."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from flask import Flask, Response, request

HEADER = "X-Request-Id"
# What a client's id may be: short, and nothing a log line or a header could be bent by.
_ENVIRON_KEY = "HTTP_X_REQUEST_ID"  # the header as the server hands it over
SANE = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_current: ContextVar[str | None] = ContextVar("chaoshub_request_id", default=None)


def current() -> str | None:
    """The id of the request being served, None outside one."""
    return _current.get()


def new() -> str:
    """A fresh request id: 32 random hexadecimal digits."""
    return os.urandom(16).hex()


@contextmanager
def bound(request_id: str) -> Iterator[str]:
    """Work outside a request (a worker running a run) under `request_id`: its log lines and
    its calls to other services carry it, as the request's own would."""
    token = _current.set(request_id if SANE.fullmatch(request_id or "") else new())
    try:
        yield _current.get()
    finally:
        _current.reset(token)


def _take() -> None:
    asked = request.environ.get(_ENVIRON_KEY, "")
    _current.set(asked if SANE.fullmatch(asked) else new())


def _echo(response: Response) -> Response:
    if _current.get():
        response.headers[HEADER] = _current.get()
    return response


def _end(_error: BaseException | None = None) -> None:
    _current.set(None)


def init_app(app: Flask) -> None:
    """Give every request its id first, before any check may refuse it."""
    app.before_request_funcs.setdefault(None, []).insert(0, _take)
    app.after_request(_echo)
    app.teardown_request(_end)
