"""The OpenID Connect provider down during sign-in: at the start (discovery) and at the callback
(the token endpoint, after the provider sent the person back with a code).

The provider is a real Authlib OIDC provider over HTTP (tests/providers.py); the hub is served
over HTTP in this process, so its log records are read as they are written. "Down" is either
refused (nothing listens on the provider's port) or silent (a socket on that port takes the
connection and never answers: the hub must give up after OAUTH_TIMEOUT_SECONDS).
"""

from __future__ import annotations

import logging
import socket
import time
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests
from sqlalchemy import func, select

from chaoshub import create_app
from chaoshub.auth.models import Account, Identity
from chaoshub.core.db import transaction
from tests.providers import OIDCProvider, ServedApp, complete_sign_in, submit_sign_in

pytestmark = [pytest.mark.faults, pytest.mark.parametrize("backend", ["sqlite"], indirect=True)]
TIMEOUT = 2  # OAUTH_TIMEOUT_SECONDS in these hubs
HTML = {"Accept": "text/html"}


class Silent:
    """A socket listening on a port whose connections are taken (by the kernel's backlog) and
    never answered: a provider that hangs."""

    def __init__(self, port: int):
        self._socket = socket.socket()
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", port))
        self._socket.listen(64)

    def close(self) -> None:
        """Stop listening."""
        self._socket.close()


def take_down(provider: OIDCProvider, how: str) -> Silent | None:
    """Stop the provider; with "silent", something takes its connections and never answers."""
    provider.stop()
    return Silent(urlsplit(provider.url).port) if how == "silent" else None


@pytest.fixture
def serve(settings, monkeypatch):
    """Serve a hub signing in with `provider` (as "corp"), registering its callback there."""
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")  # the test provider speaks plain HTTP
    served = []

    def start(provider: OIDCProvider):
        app = create_app({**settings, **provider.hub_settings(), "OAUTH_TIMEOUT_SECONDS": TIMEOUT})
        server = ServedApp(app)
        provider.redirect_uris.append(f"{server.url}/auth/callback/corp")
        served.append(server)
        return app, server.url

    yield start
    for server in served:
        server.stop()


def browser(hub: str) -> requests.Session:
    session = requests.Session()
    session.headers.update(HTML)
    session.get(f"{hub}/signin")  # the CSRF cookie, as a browser gets it
    return session


def counts(app) -> tuple[int, int]:
    """How many accounts and identities the hub holds."""
    with app.app_context(), transaction("auth") as db:
        return (db.scalar(select(func.count()).select_from(Account)),
                db.scalar(select(func.count()).select_from(Identity)))


def profile(app, username: str) -> tuple:
    with app.app_context(), transaction("auth") as db:
        account = db.scalar(select(Account).where(Account.username == username))
        return account.display_name, account.email, account.avatar_url


def timed_get(session: requests.Session, url: str) -> tuple[requests.Response, float]:
    began = time.monotonic()
    answer = session.get(url, allow_redirects=False, timeout=TIMEOUT * 5)
    return answer, time.monotonic() - began


def assert_clear_page(answer: requests.Response, elapsed: float, secrets: list[str]) -> None:
    """A 502/503 page in words, soon, with no stack trace and none of `secrets`."""
    assert answer.status_code in (502, 503), answer.text[:500]
    assert answer.headers["Content-Type"].startswith("text/html")
    assert "cannot be reached" in answer.text and "Corp" in answer.text
    assert "Traceback" not in answer.text and "requests.exceptions" not in answer.text
    for secret in secrets:
        assert secret not in answer.text
    assert elapsed < TIMEOUT * 2 + 2, f"answered after {elapsed:.1f} s"


def assert_logs_clean(caplog, secrets: list[str]) -> None:
    for record in caplog.records:
        line = record.getMessage() + (record.exc_text or "")
        for secret in secrets:
            assert secret not in line, f"{record.name}: {line}"
        assert record.levelno < logging.ERROR, f"{record.name}: {line}"  # no 500 logged


@pytest.mark.parametrize("how", ["refused", "silent"])
def test_a_provider_down_at_the_start_of_sign_in_gets_a_clear_page(serve, caplog, how):
    caplog.set_level(logging.INFO)
    provider = OIDCProvider(client_id="hub-corp")
    app, hub = serve(provider)
    before = counts(app)
    silent = take_down(provider, how)  # before the hub ever read its discovery document
    try:
        answer, elapsed = timed_get(browser(hub), f"{hub}/auth/login/corp")
    finally:
        if silent:
            silent.close()
    assert_clear_page(answer, elapsed, [provider.client_secret])
    assert "chaoshub_session" not in answer.cookies
    assert counts(app) == before
    assert_logs_clean(caplog, [provider.client_secret])
    print(f"provider {how} at the start: {answer.status_code} after {elapsed:.2f} s; "
          f"accounts, identities {before} -> {counts(app)}")


@pytest.mark.parametrize("how", ["refused", "silent"])
def test_a_provider_down_at_the_callback_changes_no_account(serve, caplog, how):
    caplog.set_level(logging.INFO)
    provider = OIDCProvider(client_id="hub-corp")
    app, hub = serve(provider)
    provider.add_user("u-1", email="ada@corp.example", name="Ada Lovelace",
                      preferred_username="ada")
    assert complete_sign_in(browser(hub), f"{hub}/auth/login/corp", "u-1").status_code == 303
    known = profile(app, "ada")
    before = counts(app)
    assert before == (1, 1)

    # Ada (whose name changed at the provider) and a newcomer are sent back with their codes...
    callbacks, secrets = [], [provider.client_secret]
    for sub, claims in (("u-1", {"name": "Ada King", "email": "ada.king@corp.example"}),
                        ("u-2", {"name": "Newcomer"})):
        session = browser(hub)
        start = session.get(f"{hub}/auth/login/corp", allow_redirects=False)
        assert start.status_code == 302, start.text
        back = submit_sign_in(session, start.headers["Location"], sub, **claims)
        callback = urljoin(back.url, back.headers["Location"])
        query = parse_qs(urlsplit(callback).query)
        secrets += [query["code"][0], query["state"][0]]
        callbacks.append((session, callback))
    # ...and the provider's token endpoint is gone when the hub calls it.
    silent = take_down(provider, how)
    try:
        answers = [(session, *timed_get(session, callback)) for session, callback in callbacks]
    finally:
        if silent:
            silent.close()
    for session, answer, elapsed in answers:
        assert_clear_page(answer, elapsed, secrets)
        assert "chaoshub_session" not in session.cookies
    assert counts(app) == before
    assert profile(app, "ada") == known
    assert_logs_clean(caplog, secrets)
    print(f"provider {how} at the callback: "
          f"{[(a.status_code, round(e, 2)) for _, a, e in answers]} (status, seconds); "
          f"accounts, identities {before} -> {counts(app)}; Ada's profile unchanged")
