"""What every route shares: the caller's claim, CSRF protection, cookies and security headers."""

from __future__ import annotations

import functools
import hmac
import logging
import secrets
from collections.abc import Callable
from urllib.parse import unquote, urlsplit, urlunsplit

from flask import Flask, Request, current_app, g, request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from jinja2.bccache import Bucket, BytecodeCache
from werkzeug.routing import Rule
from werkzeug.wrappers import Response

from chaoshub.core.claims import UserClaim, verify
from chaoshub.core.errors import DATABASE_AWAY, Forbidden, HubError, NotFound, Unauthorized
from chaoshub.core.request_memo import remember

SESSION_COOKIE = "chaoshub_session"
CSRF_COOKIE = "chaoshub_csrf"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
EXTENSION = "chaoshub.web"
KILL_SWITCH_EXTENSION = "chaoshub.web.kill_switch"

log = logging.getLogger(__name__)

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data: https:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'self'; form-action 'self'{form_targets}; "
    "frame-ancestors 'none'"
)


def bearer_token() -> str | None:
    """The bearer token of the request's Authorization header, if any."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def current_claim() -> str:
    """The signed claim for whoever makes this request (an anonymous one for visitors)."""
    # Kept for the request, not in flask.g: an app context may outlive many requests.
    return remember(("current_claim",), _resolve_claim)


def _resolve_claim() -> str:
    # Handed over by the app factory: core sits below the services and imports none of them.
    resolve_credentials = current_app.extensions[EXTENSION]
    return resolve_credentials(
        # API calls send no cookies: parsing none costs more than looking for the header.
        session_token=request.cookies.get(SESSION_COOKIE)
        if "HTTP_COOKIE" in request.environ else None,
        bearer_token=bearer_token(),
        client_ip=request.remote_addr or "",
    )


def signed_in_claim() -> str:
    """The caller's claim, or Unauthorized when nobody is signed in."""
    claim = current_claim()
    if verify(claim).anonymous:
        raise Unauthorized("sign in or send an API token")
    return claim


def credentials_first(endpoint: str | None, values: dict | None) -> None:
    """401 for a write that carries no credentials at all (a blueprint's URL preprocessor)."""
    # Before the app's CSRF check: a client sending no credentials must read 401 and know to
    # send its token, not the 403 of a form without its CSRF token.
    if (request.method not in ("GET", "HEAD", "OPTIONS")
            and "Authorization" not in request.headers
            and SESSION_COOKIE not in request.cookies):
        raise Unauthorized("send an API token: Authorization: Bearer <token>")


def viewer() -> UserClaim | None:
    """Who is signed in, for page templates; None for visitors or when auth cannot answer."""
    try:
        user = verify(current_claim())
    except (HubError, *DATABASE_AWAY):  # the error page of a database away renders all the same
        return None
    return None if user.anonymous else user


def org_kill_switch(org: str | None = None):
    """The kill switch of `org` (by default the org in the page's URL) for the banner every page
    of the org shows, asked once per request: None for visitors and for those outside the
    org, and None (logged) when it cannot be learnt, for a page must render all the same."""
    fetch = current_app.extensions.get(KILL_SWITCH_EXTENSION)
    org = org or (request.view_args or {}).get("org")
    if fetch is None or not org or viewer() is None:
        return None
    return remember(("org_kill_switch", org.lower()), lambda: _learn_kill_switch(fetch, org))


def _learn_kill_switch(fetch: Callable[[str, str], object], org: str):
    try:
        return fetch(current_claim(), org)
    except (Unauthorized, Forbidden, NotFound):
        return None  # not a member (an outsider of a public workspace), or no such org
    except Exception:  # whatever went wrong, the page itself must not break
        log.warning("the kill switch of org %r could not be learnt for its banner", org,
                    exc_info=True)
        return None


def safe_next(target: str | None, default: str = "/") -> str:
    """`target` when it is a path on this site, else `default`: no open redirects."""
    if not target or _unsafe_in_url(target) or _unsafe_in_url(unquote(target)):
        return default
    # A path alone, starting with exactly one slash, also once decoded: "//host" and
    # "/%2F/host" name another site to a browser, or to whatever decodes the path later.
    if not target.startswith("/") or unquote(target).startswith("//"):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or unquote(parts.path).startswith("//"):
        return default
    return urlunsplit(("", "", parts.path, parts.query, parts.fragment))


def _unsafe_in_url(text: str) -> bool:
    # Browsers and Werkzeug drop tabs and newlines and read a backslash as a slash, so what was
    # checked would not be what is followed: refuse every control character and backslash.
    return any(ord(c) < 0x20 or c in "\\\x7f" for c in text)


def external_url(path: str) -> str:
    """The absolute URL of `path` as browsers reach it: PUBLIC_URL, which production requires,
    else (development) the address the request came to, within TRUSTED_HOSTS when set."""
    base = current_app.config["PUBLIC_URL"] or request.host_url.rstrip("/")
    return base + path


def is_secure() -> bool:
    """True when the browser reached us over HTTPS (directly or per PUBLIC_URL)."""
    return request.is_secure or current_app.config["PUBLIC_URL"].startswith("https://")


def csrf_token() -> str:
    """The token forms and scripts must echo back; made on first use and set as a cookie."""
    token = request.cookies.get(CSRF_COOKIE) or g.get("new_csrf_token")
    if not token:
        token = g.new_csrf_token = secrets.token_urlsafe(32)
    return token


def _check_csrf() -> None:
    # Double-submit cookie: needs no server state, so it works unchanged when services split.
    # git_hooks: push webhooks, signed with their link's secret and carrying no cookie.
    if (request.method in SAFE_METHODS or bearer_token()
            or request.blueprint in ("rpc", "git_hooks")):
        return
    if request.routing_exception is not None:
        return  # no such route or method: let that answer (404/405) stand
    cookie = request.cookies.get(CSRF_COOKIE, "")
    sent = request.headers.get(CSRF_HEADER) or request.form.get(CSRF_FIELD, "")
    if not cookie or not hmac.compare_digest(cookie.encode(), sent.encode()):
        raise Forbidden("the form has expired or did not come from this site; reload and retry")


SECURITY_HEADERS = (("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "same-origin"),
                    ("X-Frame-Options", "DENY"))
# Answers worth revalidating: documents and API answers (pages carry a form token each time).
CONDITIONAL_TYPES = frozenset({"application/json", "application/x-yaml"})


def _finish(response: Response) -> Response:
    new_token = g.get("new_csrf_token")
    if new_token:
        response.set_cookie(
            CSRF_COOKIE, new_token, secure=is_secure(), httponly=True, samesite="Lax"
        )
    headers = response.headers
    present = {name.lower() for name, _ in headers.items()}  # one pass: the lookups are linear
    # Browsers apply form-action to redirects too: sign-in forms end at the providers' pages.
    if "content-security-policy" not in present:
        headers.add("Content-Security-Policy",
                    _content_security_policy(tuple(current_app.config["FORM_ACTION_ORIGINS"])))
    for name, value in SECURITY_HEADERS:
        if name.lower() not in present:
            headers.add(name, value)
    if request.method in ("GET", "HEAD") and response.status_code == 200 and \
            response.mimetype in CONDITIONAL_TYPES and not response.is_streamed:
        # A client that kept an answer asks again with If-None-Match and gets a 304, no body.
        if "cache-control" not in present:
            headers.add("Cache-Control", "private, no-cache")
        if "etag" not in present:
            response.add_etag()
        environ = request.environ
        if "HTTP_IF_NONE_MATCH" in environ or "HTTP_IF_MODIFIED_SINCE" in environ:
            response.make_conditional(request)
    return response


class Hub(Flask):
    """The hub's Flask app: Flask as it is, but for how it calls views and hooks."""

    _SYNC_KNOWN = 4096  # functions remembered as plain ones, at most (views and hooks: ~300)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._plain: set[Callable] = set()

    def ensure_sync(self, func: Callable) -> Callable:
        """`func` as Flask would call it, checked once per function: Flask asks whether each
        view and hook is a coroutine function on every request (a dozen times each)."""
        if func in self._plain:
            return func
        wrapped = super().ensure_sync(func)
        if wrapped is func and len(self._plain) < self._SYNC_KNOWN:
            self._plain.add(func)
        return wrapped


@functools.lru_cache(maxsize=8)
def _content_security_policy(form_targets: tuple[str, ...]) -> str:
    return CONTENT_SECURITY_POLICY.format(form_targets="".join(f" {o}" for o in form_targets))


class CookielessSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie session (the sign-in providers' state lives there), opened only
    when a request carries its cookie: API calls and most pages never do, and opening one
    makes a signing serializer each time."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        """The request's session: a new empty one when it sent no cookie."""
        # The environ first: parsing the cookies costs more than the rest of the check.
        if "HTTP_COOKIE" not in request.environ or self.get_cookie_name(app) not in request.cookies:
            return self.session_class()
        return super().open_session(app, request)


def show_kill_switch(app: Flask, kill_switch: Callable[[str, str], object]) -> None:
    """Let the banner of an org's pages learn its kill switch from `kill_switch(claim, org)`:
    each service that renders pages of orgs hands over dashboard's function (core calls none)."""
    app.extensions[KILL_SWITCH_EXTENSION] = kill_switch


class SharedTemplateCode(BytecodeCache):
    """Compiled templates kept for every app of the process (each app has its own Jinja
    environment, which would compile every template again)."""

    def __init__(self):
        self.code: dict[str, bytes] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        """Fill `bucket` with the code compiled before, if any."""
        if bucket.key in self.code:
            bucket.bytecode_from_string(self.code[bucket.key])

    def dump_bytecode(self, bucket: Bucket) -> None:
        """Keep the code just compiled into `bucket`."""
        self.code[bucket.key] = bucket.bytecode_to_string()


TEMPLATE_CODE = SharedTemplateCode()


class LazyBuilderRule(Rule):
    """A URL rule whose URL builder is compiled when a URL is first built from it, not when the
    app is made: an app holds some 280 rules, most never built from (a test suite makes
    hundreds of apps, and compiling them all took most of the time making one)."""

    def _compile_builder(self, append_unknown: bool = True):
        compile_now = super()._compile_builder
        compiled = None

        def build(rule, *args, **kwargs):
            nonlocal compiled
            if compiled is None:  # two threads may both compile it: the same code either way
                compiled = compile_now(append_unknown).__get__(rule, None)
            return compiled(*args, **kwargs)

        return build


def init_app(app: Flask, resolve_credentials: Callable[..., str]) -> None:
    """Install the credential resolver, the CSRF check, the headers, and the template helpers."""
    app.extensions[EXTENSION] = resolve_credentials
    app.extensions.setdefault(KILL_SWITCH_EXTENSION, None)  # no banner until a service asks
    app.config.setdefault("FORM_ACTION_ORIGINS", [])
    app.before_request(_check_csrf)
    app.after_request(_finish)
    app.session_interface = CookielessSessions()
    app.jinja_env.globals["csrf_token"] = csrf_token
    app.jinja_env.globals["org_kill_switch"] = org_kill_switch
    app.context_processor(lambda: {"viewer": viewer()})
