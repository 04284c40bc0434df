"""One log line per request, from the hub's own logger: method, route template, path, status,
latency and the signed-in user's id (the request id comes with every line). It replaces the
server's own access log (gunicorn's and Werkzeug's are off), so that each request is one line.
"""

from __future__ import annotations

import logging

from flask import Request

from chaoshub.core import claims
from chaoshub.core.errors import HubError
from chaoshub.core.request_memo import recall

log = logging.getLogger("chaoshub.access")
# What web.current_claim keeps for the request (request_memo): read, never worked out here.
CLAIM_KEY = ("current_claim",)


def user_id() -> str:
    """The signed-in user's id when this request's claim was resolved; "-" otherwise."""
    claim = recall(CLAIM_KEY)
    if not claim:
        return "-"
    try:
        user = claims.verify(claim)
    except HubError:
        return "-"
    return "-" if user.anonymous else user.sub


def write(current: Request, route: str, status: int, seconds: float) -> None:
    """Log the request being answered (`current`, matched to `route`)."""
    if not log.isEnabledFor(logging.INFO):
        return
    latency_ms = round(seconds * 1000, 1)
    user = user_id()
    method, path = current.method, current.path
    # The path alone, never the query string (a provider's code, a token someone put there);
    # the log's scrubbing still takes secrets out of the path (an invitation's link).
    log.info("%s %s %s %.1fms user=%s", method, path, status, latency_ms, user,
             extra={"method": method, "route": route, "path": path, "status": status,
                    "latency_ms": latency_ms, "user_id": user})
