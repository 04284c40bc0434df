"""One public address in front of the three services, for split mode without Kubernetes.

The router forwards each path to the service that serves it, as the split Ingress does
(k8s/split/ingress.yaml holds the same table), and answers 404 to the private ones: /internal,
where a service answers the others' calls, above all. Bodies stream through, never held whole:
one longer than MAX_CONTENT_LENGTH is refused with 413, before it is read when its length is
declared, once the cap is passed when it comes chunked.
"""

from __future__ import annotations

import http.cookiejar
import io
import json
import logging
import os
import re
from collections.abc import Callable, Iterator
from urllib.parse import quote

import requests
from dotenv import dotenv_values
from werkzeug.exceptions import BadRequest, HTTPException
from werkzeug.serving import DechunkedInput, WSGIRequestHandler
from werkzeug.wrappers import Request

from chaoshub.core import logs, request_ids
from chaoshub.core.config import DEFAULTS, SERVICES, ConfigError, is_production

log = logging.getLogger(__name__)

# (path, pathType as in an Ingress, service): the Ingress's table. Prefix matches whole segments
# (/signin matches /signin/x, never /signing); ImplementationSpecific is a regular expression
# matched from the path's start, as ingress-nginx reads it; the longest path wins, as there.
# Dashboard's pages live at the root (/<org>, /<org>/<workspace>/-/settings), so it takes every
# path nobody else does, except the private ones (service None): /internal, where a service
# answers the others' calls, /status, for probes, and /metrics, for Prometheus.
# The first segments of two-segment paths served by others than experiment (no org is named so):
# /<org>/<workspace>, experiment's workspace page, is every other path of exactly two segments.
NOT_ORGS = ("api", "auth", "internal", "invitations", "metrics", "password", "settings", "signin",
            "signout", "signup", "static", "status")
WORKSPACE_PAGE = "/(?!(?:" + "|".join(NOT_ORGS) + ")/)[^/]+/[^/]+$"
ROUTES: tuple[tuple[str, str, str | None], ...] = (
    ("/", "Prefix", "dashboard"),
    ("/internal", "Prefix", None),
    ("/status", "Prefix", None),
    ("/metrics", "Prefix", None),  # for Prometheus, inside the cluster only
    ("/signin", "Prefix", "auth"),
    ("/signup", "Prefix", "auth"),
    ("/signout", "Prefix", "auth"),
    ("/password", "Prefix", "auth"),  # forgotten passwords and their reset links
    ("/settings", "Prefix", "auth"),
    ("/settings/tokens", "Prefix", "dashboard"),  # tokens name workspaces: dashboard makes them
    ("/auth", "Prefix", "auth"),
    ("/api/v1/me", "Prefix", "auth"),
    ("/api/v1/tokens", "Prefix", "dashboard"),
    ("/api/v1/orgs", "Prefix", "dashboard"),
    ("/api/v1/activity", "Prefix", "dashboard"),
    ("/api/v1/invitations", "Prefix", "dashboard"),
    # A workspace's experiments sit inside dashboard's /api/v1/orgs tree: only a pattern tells
    # them apart.
    ("/api/v1/orgs/[^/]+/workspaces/[^/]+/experiments", "ImplementationSpecific", "experiment"),
    # So do a workspace's run environments, the API's and their settings page.
    ("/api/v1/orgs/[^/]+/workspaces/[^/]+/environments", "ImplementationSpecific",
     "experiment"),
    ("/[^/]+/[^/]+/-/environments", "ImplementationSpecific", "experiment"),
    # A workspace's and an org's trends, the API's, and the org's trends page.
    ("/api/v1/orgs/[^/]+/workspaces/[^/]+/trends$", "ImplementationSpecific", "experiment"),
    ("/api/v1/orgs/[^/]+/trends$", "ImplementationSpecific", "experiment"),
    ("/[^/]+/-/trends$", "ImplementationSpecific", "experiment"),
    # A workspace's webhooks, the API's and the Notifications page.
    ("/api/v1/orgs/[^/]+/workspaces/[^/]+/webhooks", "ImplementationSpecific", "experiment"),
    ("/[^/]+/[^/]+/-/notifications", "ImplementationSpecific", "experiment"),
    # And a workspace's coming scheduled runs, the API's and their page.
    ("/api/v1/orgs/[^/]+/workspaces/[^/]+/schedules", "ImplementationSpecific", "experiment"),
    ("/[^/]+/[^/]+/-/schedules", "ImplementationSpecific", "experiment"),
    # And a workspace's linked git repository and its syncs, the API's and the page.
    ("/api/v1/orgs/[^/]+/workspaces/[^/]+/(repository|syncs?)$", "ImplementationSpecific",
     "experiment"),
    ("/[^/]+/[^/]+/-/repository", "ImplementationSpecific", "experiment"),
    ("/api/v1", "Prefix", "experiment"),
    # The legacy CLI plugin's API and the experiment pages it links to: org and workspace come
    # first, so only patterns tell them apart from dashboard's pages (/api/v1/... stays above).
    ("/api/(?!v1/)[^/]+/[^/]+/experiment", "ImplementationSpecific", "experiment"),
    ("/[^/]+/[^/]+/experiment/", "ImplementationSpecific", "experiment"),
    (WORKSPACE_PAGE, "ImplementationSpecific", "experiment"),
)

# Headers about one connection, not the request: never forwarded (RFC 9110, section 7.6.1).
HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
    "te", "trailer", "transfer-encoding", "upgrade",
})
# Characters left as they are when the decoded path is quoted again for the service.
PATH_SAFE = "/:@!$&'()*+,;=-._~"
CHUNK = 64 * 1024
CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")
MAX_LINE, MAX_TRAILERS = 4096, 100


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
    values = _settings()
    urls = {service: (values.get(f"{service.upper()}_SERVICE_URL") or "").rstrip("/")
            for service in SERVICES}
    missing = [f"{service.upper()}_SERVICE_URL" for service, url in urls.items() if not url]
    if missing:
        raise ConfigError(f"the router needs {', '.join(missing)}")
    return urls


def max_body() -> int:
    """The largest body the router passes on: MAX_CONTENT_LENGTH, as the services read it."""
    value = _settings().get("MAX_CONTENT_LENGTH") or DEFAULTS["MAX_CONTENT_LENGTH"]
    try:
        return int(value)
    except ValueError as exc:
        raise ConfigError(f"MAX_CONTENT_LENGTH must be a number, got {value!r}") from exc


def log_settings() -> tuple[str, str]:
    """The router's log level and format, read as the services read theirs."""
    values = _settings()
    level = (values.get("LOG_LEVEL") or DEFAULTS["LOG_LEVEL"]).upper()
    fmt = (values.get("CHAOSHUB_LOG_FORMAT") or "").strip().lower() or (
        "json" if is_production(values) else "text")
    if fmt not in logs.FORMATS:
        raise ConfigError("CHAOSHUB_LOG_FORMAT must be json or text")
    if level not in logging.getLevelNamesMapping():
        raise ConfigError(f"LOG_LEVEL must be a logging level, got {level!r}")
    return level, fmt


def _settings() -> dict[str, str | None]:
    return {**dotenv_values(".env"), **os.environ}


class Router:
    """A WSGI app that forwards each request to its service and streams the answer back."""

    def __init__(self, urls: dict[str, str], timeout: float = 30.0,
                 max_body: int = DEFAULTS["MAX_CONTENT_LENGTH"]):
        self.urls = urls
        self.timeout = timeout
        self.max_body = max_body
        self.http = requests.Session()
        # One session serves every browser: it must keep no cookies of its own, and take no
        # proxy or .netrc credentials from the environment.
        self.http.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
        self.http.trust_env = False

    def __call__(self, environ: dict, start_response: Callable) -> Iterator[bytes]:
        # The id starts here when the client sent none: the service it reaches, and those that
        # service calls, log under it, and the answer names it.
        with request_ids.bound(environ.get("HTTP_X_REQUEST_ID", "")) as request_id:
            environ["HTTP_X_REQUEST_ID"] = request_id
            return self._forward(environ, start_response)

    def _forward(self, environ: dict, start_response: Callable) -> Iterator[bytes]:
        request = Request(environ)
        request.max_content_length = self.max_body
        service = service_for(request.path)
        if service is None:
            return _error(start_response, "404 Not Found", "not_found", "no such page")
        coding = environ.get("HTTP_TRANSFER_ENCODING", "").strip().lower()
        if coding and coding != "chunked":
            # The server would read such a body as empty and leave it unread.
            return _error(start_response, "501 Not Implemented", "not_implemented",
                          "only the chunked transfer coding is understood")
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
                request.method, url, headers=headers, data=_body(request),
                allow_redirects=False, stream=True, timeout=self.timeout,
            )
        except HTTPException as exc:  # the body is over the cap, or the client left mid-way
            if exc.code == 413:
                return _error(start_response, "413 Content Too Large", "payload_too_large",
                              f"bodies are limited to {self.max_body} bytes")
            return _error(start_response, "400 Bad Request", "bad_request",
                          "the body is malformed or ended early")
        except requests.RequestException as exc:
            log.warning("%s %s: the %s service cannot be reached (%s)", request.method,
                        request.path, service, exc.__class__.__name__)
            return _error(start_response, "502 Bad Gateway", "bad_gateway",
                          f"the {service} service cannot be reached")
        # The raw headers keep each Set-Cookie apart; requests would join them with commas.
        start_response(f"{answer.status_code} {answer.reason}", [
            (name, value) for name, value in answer.raw.headers.items()
            if name.lower() not in HOP_BY_HOP
        ])
        return _relay(answer)


def _body(request: Request):
    """The request's body as it arrives, for requests to send on without holding it whole."""
    # request.stream raises 413 for a declared length over the cap before reading a byte, and
    # stops a chunked body (which the server has decoded) once it passes the cap.
    stream = request.stream
    if request.content_length:
        return _DeclaredBody(stream, request.content_length)
    if request.environ.get("wsgi.input_terminated"):
        return iter(lambda: stream.read(CHUNK), b"")  # sent on chunked
    return None


class _DeclaredBody:
    """A body of known length, read as requests sends it on (with its Content-Length)."""

    def __init__(self, stream, length: int):
        self.stream = stream
        self.length = length

    def __len__(self) -> int:
        return self.length

    def read(self, size: int = -1) -> bytes:
        return self.stream.read(CHUNK if size is None or size < 0 else size)


class ChunkedBody(io.RawIOBase):
    """A chunked request body, decoded as it is read (RFC 9112, section 7.1).

    werkzeug's development server answers 500 to chunk extensions and trailer fields: here the
    extensions are ignored and the trailers dropped, as a recipient may, and malformed framing
    is a 400.
    """

    def __init__(self, rfile):
        self.rfile = rfile
        self.left = 0  # bytes of the current chunk not read yet
        self.done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self.done:
            return 0
        if not self.left:
            size = self._line().split(b";", 1)[0].strip(b" \t")
            if not CHUNK_SIZE.fullmatch(size):
                raise BadRequest("a chunk's size is malformed")
            self.left = int(size, 16)
            if not self.left:
                for _ in range(MAX_TRAILERS + 1):
                    if not self._line():
                        self.done = True
                        return 0
                raise BadRequest("too many trailer fields")
        data = self.rfile.read(min(len(buffer), self.left))
        if not data:
            raise BadRequest("the body ended within a chunk")
        buffer[:len(data)] = data
        self.left -= len(data)
        if not self.left and self._line():
            raise BadRequest("a chunk is longer than its size")
        return len(data)

    def _line(self) -> bytes:
        line = self.rfile.readline(MAX_LINE + 1)
        if not line.endswith(b"\n"):
            raise BadRequest("a line of the chunked body is too long or unfinished")
        return line.rstrip(b"\r\n")


class RouterRequestHandler(WSGIRequestHandler):
    """werkzeug's request handler, with chunked bodies read by ChunkedBody."""

    def make_environ(self) -> dict:
        """The WSGI environ of the request."""
        environ = super().make_environ()
        if isinstance(environ["wsgi.input"], DechunkedInput):
            environ["wsgi.input"] = ChunkedBody(self.rfile)
        return environ


def _relay(answer: requests.Response) -> Iterator[bytes]:
    # Bytes as the service sent them (Content-Encoding and Content-Length still hold).
    try:
        yield from answer.raw.stream(64 * 1024, decode_content=False)
    finally:
        answer.close()


def _error(start_response: Callable, status: str, code: str, message: str) -> Iterator[bytes]:
    body = json.dumps({"error": code, "message": message, "details": None}).encode()
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(body))),
                            (request_ids.HEADER, request_ids.current() or "")])
    return iter([body])
