"""One public address in front of the three services, for split mode without Kubernetes.

The router forwards each path to the service that serves it, as the split Ingress does
(k8s/split/ingress.yaml holds the same table), and answers 404 to the private ones: /internal,
where a service answers the others' calls, above all.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
from collections.abc import Callable, Iterator
from urllib.parse import quote

import requests
from dotenv import dotenv_values
from werkzeug.wrappers import Request

from chaoshub.core.config import SERVICES, ConfigError

# (path, pathType as in an Ingress, service): the Ingress's table. Prefix matches whole segments
# (/signin matches /signin/x, never /signing); ImplementationSpecific is a regular expression
# matched from the path's start, as ingress-nginx reads it; the longest path wins, as there.
# Dashboard's pages live at the root (/<org>/<workspace>), so it takes every path nobody else
# does, except the private ones (service None): /internal, where a service answers the others'
# calls, and /status, for probes.
ROUTES: tuple[tuple[str, str, str | None], ...] = (
    ("/", "Prefix", "dashboard"),
    ("/internal", "Prefix", None),
    ("/status", "Prefix", None),
    ("/signin", "Prefix", "auth"),
    ("/signup", "Prefix", "auth"),
    ("/signout", "Prefix", "auth"),
    ("/settings", "Prefix", "auth"),
    ("/auth", "Prefix", "auth"),
    ("/api/v1/me", "Prefix", "auth"),
    ("/api/v1/tokens", "Prefix", "auth"),
    ("/api/v1/orgs", "Prefix", "dashboard"),
    ("/api/v1/activity", "Prefix", "dashboard"),
    ("/api/v1/invitations", "Prefix", "dashboard"),
    ("/api/v1/search", "Prefix", "dashboard"),
    # A workspace's experiments sit inside dashboard's /api/v1/orgs tree: only a pattern tells
    # them apart.
    ("/api/v1/orgs/[^/]+/workspaces/[^/]+/experiments", "ImplementationSpecific", "experiment"),
    ("/api/v1", "Prefix", "experiment"),
    # The legacy CLI plugin's API and the experiment pages it links to: org and workspace come
    # first, so only patterns tell them apart from dashboard's pages (/api/v1/... stays above).
    ("/api/(?!v1/)[^/]+/[^/]+/experiment", "ImplementationSpecific", "experiment"),
    ("/[^/]+/[^/]+/experiment/", "ImplementationSpecific", "experiment"),
)

# Headers about one connection, not the request: never forwarded (RFC 9110, section 7.6.1).
HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
    "te", "trailer", "transfer-encoding", "upgrade",
})
# Characters left as they are when the decoded path is quoted again for the service.
PATH_SAFE = "/:@!$&'()*+,;=-._~"


def service_for(path: str) -> str | None:
    """The service that serves `path`, or None for a private path."""
    # Dot segments are refused rather than matched: the HTTP client would resolve
    # /signin/../internal/... to /internal/... on its way to the service.
    if any(segment in (".", "..") for segment in path.split("/")):
        return None
    matches = [(route, service) for route, kind, service in ROUTES
               if matches_route(route, kind, path)]
    return max(matches, key=lambda match: len(match[0]))[1]  # "/" always matches


def matches_route(route: str, kind: str, path: str) -> bool:
    """Whether an Ingress path of this `kind` matches `path`."""
    if kind == "Exact":
        return path == route
    if kind == "Prefix":
        return path == route or path.startswith(route.rstrip("/") + "/")
    return re.match(route, path, re.IGNORECASE) is not None  # nginx's ~* location


def service_urls() -> dict[str, str]:
    """Where each service lives: *_SERVICE_URL from the environment, or from .env."""
    values = {**dotenv_values(".env"), **os.environ}
    urls = {service: (values.get(f"{service.upper()}_SERVICE_URL") or "").rstrip("/")
            for service in SERVICES}
    missing = [f"{service.upper()}_SERVICE_URL" for service, url in urls.items() if not url]
    if missing:
        raise ConfigError(f"the router needs {', '.join(missing)}")
    return urls


class Router:
    """A WSGI app that forwards each request to its service and streams the answer back."""

    def __init__(self, urls: dict[str, str], timeout: float = 30.0):
        self.urls = urls
        self.timeout = timeout
        self.http = requests.Session()
        # One session serves every browser: it must keep no cookies of its own, and take no
        # proxy or .netrc credentials from the environment.
        self.http.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
        self.http.trust_env = False

    def __call__(self, environ: dict, start_response: Callable) -> Iterator[bytes]:
        request = Request(environ)
        service = service_for(request.path)
        if service is None:
            return _error(start_response, "404 Not Found", "not_found", "no such page")
        url = self.urls[service] + quote(request.path, safe=PATH_SAFE)
        if request.query_string:
            url += "?" + request.query_string.decode("latin-1")
        headers = {name: value for name, value in request.headers.items()
                   if name.lower() not in HOP_BY_HOP and name.lower() != "content-length"}
        # Set, not appended to: what a client claims in X-Forwarded-For is not to be trusted.
        headers["X-Forwarded-For"] = request.remote_addr or ""
        headers["X-Forwarded-Proto"] = request.scheme
        headers["X-Forwarded-Host"] = request.host
        try:
            answer = self.http.request(
                request.method, url, headers=headers, data=request.get_data(),
                allow_redirects=False, stream=True, timeout=self.timeout,
            )
        except requests.RequestException:
            return _error(start_response, "502 Bad Gateway", "bad_gateway",
                          f"the {service} service cannot be reached")
        # The raw headers keep each Set-Cookie apart; requests would join them with commas.
        start_response(f"{answer.status_code} {answer.reason}", [
            (name, value) for name, value in answer.raw.headers.items()
            if name.lower() not in HOP_BY_HOP
        ])
        return _relay(answer)


def _relay(answer: requests.Response) -> Iterator[bytes]:
    # Bytes as the service sent them (Content-Encoding and Content-Length still hold).
    try:
        yield from answer.raw.stream(64 * 1024, decode_content=False)
    finally:
        answer.close()


def _error(start_response: Callable, status: str, code: str, message: str) -> Iterator[bytes]:
    body = json.dumps({"error": code, "message": message, "details": None}).encode()
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(body)))])
    return iter([body])
