"""A database that does not answer costs a request a clear 503 within seconds, never a 500."""

from __future__ import annotations

import time

import pytest

from chaoshub import create_app
from chaoshub.auth.secrets import new_token
from tests.helpers import free_port


@pytest.fixture
def app(tmp_path, signing_key_file):
    # Nobody listens on this port: every connection is refused.
    dead = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nowhere"
    return create_app({
        "CHAOSHUB_INSTANCE_PATH": str(tmp_path), "CHAOSHUB_SIGNING_KEY_FILE": str(signing_key_file),
        "SECRET_KEY": "test-secret", "REDIS_URL": "", "EVENTS_POLL_SECONDS": 0,
        **{f"{s}_DATABASE_URL": dead for s in ("AUTH", "DASHBOARD", "EXPERIMENT")}})


def test_an_api_call_gets_a_503_with_retry_after_and_no_stack(app):
    began = time.monotonic()
    answer = app.test_client().get("/api/v1/me",
                                   headers={"Authorization": f"Bearer {new_token()}"})
    assert time.monotonic() - began < 3
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "5"
    body = answer.get_json()
    assert body["error"] == "service_unavailable"
    assert "database" in body["message"]
    assert "Traceback" not in answer.text and "psycopg" not in answer.text


def test_a_page_gets_a_503_page(app):
    browser = app.test_client()
    browser.set_cookie("chaoshub_session", "x" * 43)
    answer = browser.get("/", headers={"Accept": "text/html"})
    assert answer.status_code == 503
    assert answer.mimetype == "text/html"
    assert "try again" in answer.text and "psycopg" not in answer.text


def test_a_query_sqlite_cannot_run_is_a_500_not_a_503(tmp_path, signing_key_file):
    # SQLite raises an OperationalError for a missing table too: the code's fault, not an outage.
    from sqlalchemy import text

    from chaoshub.core.db import transaction

    app = create_app({
        "CHAOSHUB_INSTANCE_PATH": str(tmp_path), "CHAOSHUB_SIGNING_KEY_FILE": str(signing_key_file),
        "SECRET_KEY": "test-secret", "REDIS_URL": "", "EVENTS_POLL_SECONDS": 0,
        **{f"{s}_DATABASE_URL": f"sqlite:///{tmp_path}/{s.lower()}.db"
           for s in ("AUTH", "DASHBOARD", "EXPERIMENT")}})

    def broken():
        with transaction("experiment") as session:
            session.execute(text("SELECT * FROM no_such_table"))

    def locked():
        import sqlite3

        from sqlalchemy.exc import OperationalError

        busy = sqlite3.OperationalError("database is locked")
        busy.sqlite_errorcode = sqlite3.SQLITE_BUSY
        raise OperationalError("SELECT 1", {}, busy)

    app.add_url_rule("/test/broken", "broken", broken)
    app.add_url_rule("/test/locked", "locked", locked)
    client = app.test_client()
    answer = client.get("/test/broken")
    assert answer.status_code == 500
    assert answer.get_json()["error"] == "internal_error"
    assert client.get("/test/locked").status_code == 503


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_database_away_in_another_service_keeps_its_retry_after(settings):
    # Split mode: auth answers as a hub whose database is away does; the caller passes it on.
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class AuthAway(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = json.dumps({"error": "service_unavailable", "details": None,
                               "message": "a database is not answering right now"}).encode()
            self.send_response(503)
            self.send_header("Content-Type", "application/json")
            self.send_header("Retry-After", "7")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), AuthAway)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        app = create_app({**settings, "CHAOSHUB_SERVICES": "dashboard,experiment",
                          "AUTH_SERVICE_URL": f"http://127.0.0.1:{server.server_port}",
                          "PROXY_HOPS": 0})
        answer = app.test_client().get("/api/v1/orgs",
                                       headers={"Authorization": f"Bearer {new_token()}"})
    finally:
        server.shutdown()
        server.server_close()
    assert answer.status_code == 503
    assert answer.get_json()["error"] == "service_unavailable"
    assert answer.headers["Retry-After"] == "7"
