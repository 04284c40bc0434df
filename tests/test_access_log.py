"""One access log line per request from the hub's own logger, with the route template, the
path, the status, the latency and the signed-in user's id; never a secret."""

from __future__ import annotations

import json
import logging

from chaoshub.core import logs, request_ids
from tests.conftest import signed_up_client
from tests.experiment_data import create, make_token

ACCESS = "chaoshub.access"


def access_records(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == ACCESS]


def test_each_request_is_one_line_with_its_route_status_latency_and_user(app, caplog):
    alice = signed_up_client(app, "alice")
    saved = create(alice)
    me = alice.get("/api/v1/me").get_json()
    caplog.clear()
    caplog.set_level(logging.INFO, logger=ACCESS)
    answer = alice.get(f"/api/v1/experiments/{saved['id']}", headers={request_ids.HEADER: "a-1"})
    assert answer.status_code == 200
    (line,) = access_records(caplog)
    assert (line.method, line.route, line.path, line.status) == (
        "GET", "/api/v1/experiments/<experiment_id>", f"/api/v1/experiments/{saved['id']}", 200)
    assert line.latency_ms > 0 and line.user_id == me["id"] and line.request_id == "a-1"
    # As JSON lines: every field, beside the message and the request id.
    fields = json.loads(logs.JsonLines().format(line))
    assert {k: fields[k] for k in ("logger", "method", "route", "status", "user_id",
                                   "request_id")} == {
        "logger": ACCESS, "method": "GET", "route": "/api/v1/experiments/<experiment_id>",
        "status": 200, "user_id": me["id"], "request_id": "a-1"}
    assert isinstance(fields["latency_ms"], float)


def test_a_visitor_and_a_token_read_are_logged_without_a_secret(app, caplog):
    alice = signed_up_client(app, "alice")
    saved = create(alice)
    token = make_token(alice, ["experiments:read"])
    me = alice.get("/api/v1/me").get_json()
    caplog.clear()
    caplog.set_level(logging.INFO, logger=ACCESS)
    visitor = app.test_client()
    assert visitor.get(f"/api/v1/experiments/{saved['id']}?token={token}").status_code in (
        401, 404)
    assert visitor.get(f"/api/v1/experiments/{saved['id']}",
                       headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert visitor.get("/invitations/chinv_" + "q" * 43).status_code in (302, 303, 404)
    anonymous, by_token, invitation = access_records(caplog)
    assert anonymous.user_id == "-" and anonymous.status in (401, 404)
    assert by_token.user_id == me["id"]  # the token's account, never the token
    assert invitation.route == "/invitations/<token>"
    for record in (anonymous, by_token, invitation):
        line = logs.JsonLines().format(record)
        assert token not in line and "q" * 20 not in line
        assert "?" not in json.loads(line)["path"]  # no query string
