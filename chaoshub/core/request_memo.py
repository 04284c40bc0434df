"""What a request has already worked out (a verified claim, a workspace grant), kept for the
rest of that request and never longer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask import has_request_context, request

T = TypeVar("T")
# In the WSGI environ, which lives exactly as long as the request: flask.g lives as long as
# the app context, which a test (or a CLI command) may hold across many requests.
ENVIRON_KEY = "chaoshub.request_memo"


def remember(key: tuple, compute: Callable[[], T]) -> T:
    """`compute()`, worked out once per request under `key` (every time outside a request)."""
    if not has_request_context():
        return compute()
    memo: dict[tuple, Any] = request.environ.setdefault(ENVIRON_KEY, {})
    if key not in memo:
        memo[key] = compute()
    return memo[key]


def keep(key: tuple, value: Any) -> None:
    """Remember `value` under `key` for the rest of the request (nothing outside one)."""
    if has_request_context():
        request.environ.setdefault(ENVIRON_KEY, {})[key] = value


def recall(key: tuple) -> Any:
    """What this request remembered under `key`; None outside a request or when nothing."""
    if not has_request_context():
        return None
    return request.environ.get(ENVIRON_KEY, {}).get(key)
