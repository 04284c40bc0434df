"""Fixtures: a fresh hub per test on SQLite (in-memory cache) or PostgreSQL (with Redis).

PostgreSQL and Redis are skipped when absent on a developer's machine, but with
CHAOSHUB_REQUIRE_SERVICES=1 (as .ci/run sets) their absence fails the run instead.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import psycopg
import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text

from chaoshub import create_app
from chaoshub.core import db, migrate
from chaoshub.core.claims import development_key_file
from chaoshub.core.config import SERVICES
from chaoshub.core.web import CSRF_COOKIE

POSTGRES_URL = os.environ.get("CHAOSHUB_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432")
REDIS_URL = os.environ.get("CHAOSHUB_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
REQUIRE_SERVICES = os.environ.get("CHAOSHUB_REQUIRE_SERVICES") == "1"
SAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "samples"
FIXTURES = Path(__file__).parent / "fixtures"
PASSWORD = "a long enough passphrase"
# Every log line of the run teed to a file and grepped for secrets at its end.
pytest_plugins = ["tests.log_secrets"]


def unavailable(what: str, error: Exception):
    """Skip on a developer's machine; fail where the services are required (CI)."""
    message = f"{what} is not reachable: {error}"
    if REQUIRE_SERVICES:
        pytest.fail(message + " (CHAOSHUB_REQUIRE_SERVICES=1)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def signing_key_file(tmp_path_factory) -> Path:
    return development_key_file(str(tmp_path_factory.mktemp("keys")))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory, signing_key_file) -> Path:
    """Three SQLite databases migrated once, copied for each test."""
    folder = tmp_path_factory.mktemp("sqlite-template")
    app = create_app(_settings(folder, signing_key_file, _sqlite_urls(folder)))
    migrate.upgrade(app)
    db.dispose(app)
    return folder


@pytest.fixture(scope="session")
def postgres_urls(signing_key_file, tmp_path_factory) -> dict[str, str]:
    """Three databases on the local PostgreSQL server, made and migrated for this run."""
    suffix = uuid.uuid4().hex[:8]
    names = {service: f"chaoshub_test_{suffix}_{service}" for service in SERVICES}
    try:
        admin = psycopg.connect(f"{POSTGRES_URL}/postgres", autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        unavailable("PostgreSQL", exc)
    with admin:
        for name in names.values():
            admin.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://", 1)
    urls = {s: f"{base}/{name}" for s, name in names.items()}
    app = create_app(_settings(tmp_path_factory.mktemp("pg"), signing_key_file, urls))
    migrate.upgrade(app)
    db.dispose(app)
    yield urls
    for engine in _CLEANERS.values():
        engine.dispose()
    with psycopg.connect(f"{POSTGRES_URL}/postgres", autocommit=True) as admin:
        for name in names.values():
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def redis_url() -> str:
    """A real Redis (a database of its own, emptied before each test that uses it)."""
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        unavailable("Redis", exc)
    return REDIS_URL


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request) -> str:
    """Run the test on SQLite with the in-memory cache, then on PostgreSQL with Redis."""
    return request.param


@pytest.fixture
def settings(request, backend, tmp_path, signing_key_file) -> dict:
    if backend == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        for service in SERVICES:
            shutil.copy(template / f"{service}.db", tmp_path / f"{service}.db")
        return _settings(tmp_path, signing_key_file, _sqlite_urls(tmp_path))
    urls = request.getfixturevalue("postgres_urls")
    redis_url = request.getfixturevalue("redis_url")
    _truncate(urls)
    # Keys of this test's own: several runs may share the Redis server (keys expire by TTL).
    return {**_settings(tmp_path, signing_key_file, urls), "REDIS_URL": redis_url,
            "CACHE_PREFIX": f"chaoshub-test-{uuid.uuid4().hex[:12]}"}


class BufferedClient(FlaskClient):
    """A test client that reads each answer whole and closes it, as a server does once it has
    sent it: what runs on close (the feed's delivery) is done when the call returns."""

    def open(self, *args, buffered: bool = True, **kwargs):
        return super().open(*args, buffered=buffered, **kwargs)


@pytest.fixture(scope="session", autouse=True)
def buffered_test_clients():
    """Every app the tests make (here or in a module of its own) gets BufferedClient as its
    test client; a test reading a stream as it comes asks for buffered=False."""
    before = Flask.test_client_class
    Flask.test_client_class = BufferedClient
    yield
    Flask.test_client_class = before


@pytest.fixture
def app(settings):
    hub = create_app(settings)
    yield hub
    db.dispose(hub)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def sample_experiment() -> dict:
    import json

    return json.loads((FIXTURES / "experiment.json").read_text())


def _settings(folder: Path, key_file: Path, urls: dict[str, str]) -> dict:
    return {
        "CHAOSHUB_INSTANCE_PATH": str(folder),
        "CHAOSHUB_SIGNING_KEY_FILE": str(key_file),
        "SECRET_KEY": "test-secret",
        "REDIS_URL": "",
        # Hundreds of accounts are made here: argon2's standard cost is tested on its own.
        "PASSWORD_HASHING": "fast",
        # No polling thread per app: events go right after each commit, in the same thread.
        "EVENTS_POLL_SECONDS": 0,
        # No delivery thread either: feed entries go once the answer is closed (BufferedClient).
        "FEED_DELIVERY_SECONDS": 0,
        # Nor a mail thread: messages go once the answer is closed, or when a test says so.
        "MAIL_DELIVERY_SECONDS": 0,
        **{f"{s.upper()}_DATABASE_URL": url for s, url in urls.items()},
    }


def _sqlite_urls(folder: Path) -> dict[str, str]:
    return {service: f"sqlite:///{folder / f'{service}.db'}" for service in SERVICES}


_CLEANERS: dict[str, object] = {}


def _truncate(urls: dict[str, str]) -> None:
    """Empty every table: DELETE in reverse dependency order, on one engine per database for
    the whole run (a TRUNCATE of every table, on a new connection, took a quarter second)."""
    from sqlalchemy import create_engine

    for service, url in urls.items():
        engine = _CLEANERS.get(url)
        if engine is None:
            engine = _CLEANERS[url] = create_engine(url, pool_size=1)
        with engine.begin() as connection:
            for table in reversed(migrate.metadata(service).sorted_tables):
                connection.execute(text(f'DELETE FROM "{table.name}"'))


# A real browser ------------------------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]


@pytest.fixture(scope="session")
def browser():
    if not shutil.which(CHROMIUM):
        unavailable("Chromium", FileNotFoundError(CHROMIUM))
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context()
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    # Pages may answer 401 or 422 on purpose; their stylesheets, icons and scripts may not fail.
    # (Browsers probe /favicon.ico on their own: the test providers serve none.)
    page.on("response", lambda r: r.request.resource_type != "document" and r.status >= 400
            and not r.url.endswith("/favicon.ico") and errors.append(f"{r.status} {r.url}"))
    page.on("console", lambda message: message.type == "error"
            and not message.text.startswith("Failed to load resource")
            and errors.append(message.text))
    yield page
    context.close()
    assert errors == [], errors  # no script, CSP or missing-asset errors on any page


@pytest.fixture
def inbox():
    """A real SMTP server (tests/mail_server.py) for the test: what it received, and its
    `port`."""
    from tests.mail_server import smtp_server  # it imports helpers, which import this module

    with smtp_server() as (found, port):
        found.port = port
        yield found


# Helpers the tests share -------------------------------------------------------------------


def csrf(client) -> str:
    """The CSRF token of the test client's browser, fetched the way a browser gets it."""
    cookie = client.get_cookie(CSRF_COOKIE)
    if cookie is None:
        client.get("/signin")
        cookie = client.get_cookie(CSRF_COOKIE)
    return cookie.value


def sign_up(client, username: str, password: str = PASSWORD, **extra):
    """Post the sign-up form."""
    return client.post(
        "/signup",
        data={"username": username, "password": password, "csrf_token": csrf(client), **extra},
    )


def sign_in(client, username: str, password: str = PASSWORD):
    """Post the sign-in form."""
    return client.post(
        "/signin",
        data={"username": username, "password": password, "csrf_token": csrf(client)},
    )


def signed_up_client(app, username: str):
    """A fresh browser with a new account, signed in."""
    browser = app.test_client()
    assert sign_up(browser, username).status_code == 303
    assert sign_in(browser, username).status_code == 303
    return browser


def post_json(client, url: str, body):
    """A cookie-authenticated JSON POST, with the CSRF header a script would send."""
    return client.post(url, json=body, headers={"X-CSRF-Token": csrf(client)})
