"""Where webhooks may be sent, and the one POST that sends them (server-side request forgery).

A target is http(s) only. Its host is resolved, every address it resolves to is checked, and
the connection goes to the address that was checked (the Host header and TLS name stay the
host's), so a name that resolves again to another address between the check and the connect
(DNS rebinding) reaches nothing new. Private, loopback, link-local, CGNAT, unique-local and
other non-global addresses are refused unless ALLOW_PRIVATE_TARGETS is true; cloud metadata
always is. Redirects are followed by hand, a few at most, each target checked the same way
(and never from https to plain http).
"""

from __future__ import annotations

import contextvars
import ipaddress
import logging
import socket
import threading
import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ReadTimeoutError,
    SSLError,
)

from chaoshub.experiment.policy import METADATA_ADDRESSES, METADATA_NAMES

MAX_REDIRECTS = 3
REDIRECTS = (301, 302, 303, 307, 308)
EXCERPT_BYTES = 512  # of a receiver's answer, kept in the delivery log
URL_MAX = 2000
LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")
# The cloud metadata addresses, whatever ALLOW_PRIVATE_TARGETS says (AWS, GCP, Azure: IPv4).
NAT64 = ipaddress.ip_network("64:ff9b::/96")  # the well-known prefix (RFC 6052)
ALWAYS_REFUSED = (ipaddress.ip_address("169.254.169.254"), *METADATA_ADDRESSES)


# Set while this module sends: urllib3's DEBUG lines then keep no request path.
_sending = contextvars.ContextVar("webhook_sending", default=False)


class _PathWithheld(logging.Filter):
    """urllib3 logs each request's path at DEBUG, and a Slack URL's path is its credential:
    a line it writes for a webhook names the host only."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _sending.get():
            record.msg, record.args = "webhook request to %s (its path withheld)", (
                record.args[1] if isinstance(record.args, tuple) and len(record.args) > 1
                else "a target",)
        return True


logging.getLogger("urllib3.connectionpool").addFilter(_PathWithheld())


class CutOff(Exception):
    """A hop that went on past its deadline (a receiver answering a byte at a time)."""


class _SocketKept:
    """A connection that keeps its socket, so that a deadline can cut it, TLS or not."""

    raw: socket.socket | None = None

    def _new_conn(self):
        self.raw = super()._new_conn()
        return self.raw


class _HTTPConnection(_SocketKept, HTTPConnection):
    pass


class _HTTPSConnection(_SocketKept, HTTPSConnection):
    pass


class _ConnectionKept:
    """A pool that keeps the connection it opened (one: maxsize is 1)."""

    opened = None

    def _new_conn(self):
        self.opened = super()._new_conn()
        return self.opened


class _HTTPPool(_ConnectionKept, urllib3.HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(_ConnectionKept, urllib3.HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class TargetRefused(Exception):
    """A target the hub will not call: no retry would change that."""


@dataclass(frozen=True)
class Answer:
    """What came of one POST: the status code (None when no answer came), an excerpt of the
    body, an error, the time it took, and whether the target was refused. A mail's answer
    is the SMTP server's (250), and says itself whether it was `delivered`."""

    status: int | None
    excerpt: str = ""
    error: str = ""
    duration_ms: int = 0
    refused: bool = False
    delivered: bool | None = None

    @property
    def ok(self) -> bool:
        """True for a 2xx answer (or a mail the server took)."""
        if self.delivered is not None:
            return self.delivered
        return self.status is not None and 200 <= self.status < 300


def url_problem(url: object, allow_private: bool) -> str | None:
    """What makes `url` no target, as far as can be told without resolving it; None: none."""
    if not isinstance(url, str) or not url or len(url) > URL_MAX:
        return f"a URL of 1 to {URL_MAX} characters"
    try:
        parts = urlsplit(url)
        host, _ = parts.hostname, parts.port
    except ValueError:
        return "not a URL"
    if parts.scheme not in ("http", "https") or not host:
        return "an http:// or https:// URL with a host"
    if parts.username is not None or parts.password is not None:
        return "a URL without a user name or password in it"
    host = _ascii_host(host)
    if host is None:
        return "not a URL (its host is no name or address)"
    host = host.rstrip(".").lower()
    if host in METADATA_NAMES or host.endswith(".internal"):
        return "cloud metadata endpoints are never notified"
    if not allow_private and (host in LOCAL_NAMES or host.endswith(".localhost")):
        return "this names the hub's own machine: private targets are not allowed here"
    address = _literal(host)
    if address is not None:
        return address_problem(address, allow_private)
    return None


def address_problem(address: ipaddress.IPv4Address | ipaddress.IPv6Address,
                    allow_private: bool) -> str | None:
    """Why the hub will not connect to `address`; None when it may."""
    inside = _carried_ipv4(address)
    if inside is not None:
        address = inside
    if address in ALWAYS_REFUSED:
        return "cloud metadata endpoints are never notified"
    if allow_private:
        return None
    if not address.is_global or address.is_multicast or address.is_reserved:
        return (f"{address} is a private, loopback, link-local or otherwise non-public "
                "address: private targets are not allowed here")
    return None


def _carried_ipv4(address: ipaddress.IPv4Address | ipaddress.IPv6Address
                  ) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one reaches through a gateway: mapped, 6to4 or NAT64's."""
    if address.version != 6:
        return None
    if address.ipv4_mapped is not None or address.sixtofour is not None:
        return address.ipv4_mapped or address.sixtofour
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def post(url: str, body: bytes, headers: dict[str, str], timeout: float,
         allow_private: bool) -> Answer:
    """POST `body` to `url` with `headers`, each hop's address checked; never raises."""
    started = time.monotonic()
    sending = _sending.set(True)
    try:
        status, excerpt = _post(url, body, headers, timeout, allow_private)
        return Answer(status, excerpt, duration_ms=_since(started))
    except TargetRefused as exc:
        return Answer(None, error=f"refused: {exc}", duration_ms=_since(started), refused=True)
    except CutOff:
        return Answer(None, error=f"no whole answer within {2 * timeout:g} s",
                      duration_ms=_since(started))
    except NewConnectionError as exc:  # before its base class, ConnectTimeoutError
        # The message's head is the connection object's repr: the reason follows it.
        reason = str(exc).split(": ", 1)[-1]
        return Answer(None, error=f"could not connect: {reason[:200]}",
                      duration_ms=_since(started))
    except ConnectTimeoutError:
        return Answer(None, error=f"no connection within {timeout:g} s",
                      duration_ms=_since(started))
    except ReadTimeoutError:
        return Answer(None, error=f"no answer within {timeout:g} s", duration_ms=_since(started))
    except SSLError as exc:
        return Answer(None, error=f"TLS failed: {str(exc)[:200]}", duration_ms=_since(started))
    except (HTTPError, OSError, ValueError) as exc:  # ValueError: a URL http.client refuses
        return Answer(None, error=f"{type(exc).__name__}: {str(exc)[:200]}",
                      duration_ms=_since(started))
    finally:
        _sending.reset(sending)


def _post(url: str, body: bytes, headers: dict[str, str], timeout: float,
          allow_private: bool) -> tuple[int, str]:
    for _ in range(MAX_REDIRECTS + 1):
        problem = url_problem(url, allow_private)
        if problem:
            raise TargetRefused(problem)
        parts = urlsplit(url)
        # The name as DNS, TLS and the Host header take it (full-width digits, IDNs).
        host = _ascii_host(parts.hostname or "") or ""
        https = parts.scheme == "https"
        port = parts.port or (443 if https else 80)
        address = _checked_address(host, port, allow_private)
        pool = _pool(address, port, host, https, timeout)
        # The timeouts bound each wait for a byte; this bounds the hop (well within the lease).
        cut = threading.Event()
        deadline = threading.Timer(2 * timeout, _cut, (pool, cut))
        deadline.daemon = True
        deadline.start()
        try:
            path = parts.path or "/"
            if parts.query:
                path += f"?{parts.query}"
            answer = pool.urlopen(
                "POST", path, body=body,
                headers={**headers, "Host": _host_header(host, parts.port)},
                redirect=False, retries=False, preload_content=False,
                timeout=urllib3.Timeout(connect=timeout, read=timeout))
            try:
                status = answer.status
                location = answer.headers.get("Location")
                excerpt = answer.read(EXCERPT_BYTES, decode_content=False)
            finally:
                answer.release_conn()
                answer.close()
        except (HTTPError, OSError) as exc:
            if cut.is_set():
                raise CutOff() from exc
            raise
        finally:
            deadline.cancel()
            pool.close()
        if status in REDIRECTS and location:
            url = urljoin(url, location)
            if https and urlsplit(url).scheme != "https":
                # The body (and its signature) never leaves TLS for a cleartext hop.
                raise TargetRefused("a redirect from https to plain http")
            continue
        return status, excerpt.decode("utf-8", "replace")
    raise TargetRefused(f"more than {MAX_REDIRECTS} redirects")


def _checked_address(host: str, port: int, allow_private: bool) -> str:
    """The address to connect to: every address `host` resolves to must pass (a name that
    resolves to one public and one private address is refused)."""
    literal = _literal(host)
    if literal is not None:
        found = [literal]
    else:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise OSError(f"{host} does not resolve") from exc
        found = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    if not found:
        raise OSError(f"{host} does not resolve")
    for address in found:
        problem = address_problem(address, allow_private)
        if problem:
            raise TargetRefused(f"{host} resolves to a refused address ({problem})")
    return str(found[0])


def _pool(address: str, port: int, host: str, https: bool, timeout: float):
    if https:
        # Connected to the checked address; the certificate is checked against the host's name.
        return _HTTPSPool(address, port, server_hostname=host, assert_hostname=host,
                          cert_reqs="CERT_REQUIRED", maxsize=1, retries=False, timeout=timeout)
    return _HTTPPool(address, port, maxsize=1, retries=False, timeout=timeout)


def _cut(pool, cut: threading.Event) -> None:
    """Shut the hop's socket: a read blocked on it ends at once."""
    cut.set()
    raw = getattr(pool.opened, "raw", None)
    if raw is not None:
        try:
            raw.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # closed already


def _host_header(host: str, port: int | None) -> str:
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{port}" if port else host


def _ascii_host(host: str) -> str | None:
    """`host` as the resolver reads it (IDNA: an IDN's xn-- form, full-width digits folded),
    or None when it cannot be one."""
    if host.isascii():
        return host
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return None


def _literal(host: str):
    """The address `host` writes out, however it is written (resolvers take 2130706433 and
    0x7f.1 for 127.0.0.1), or None for a name."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


def _since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
