"""One id per request: echoed in the answer, on the log lines written while serving it, sent on
to other services; and log lines as JSON in production."""

from __future__ import annotations

import json
import logging
import re

import pytest

from chaoshub.core import logs, request_ids
from chaoshub.core.config import ConfigError, load_settings
from tests.conftest import PASSWORD, csrf

MADE = re.compile(r"[0-9a-f]{32}")


def test_every_answer_carries_an_id_and_a_sane_one_from_the_client_is_kept(client):
    made = client.get("/status/live").headers[request_ids.HEADER]
    assert MADE.fullmatch(made)
    assert client.get("/status/live").headers[request_ids.HEADER] != made
    kept = client.get("/status/live", headers={request_ids.HEADER: "ci-build-42.step:3"})
    assert kept.headers[request_ids.HEADER] == "ci-build-42.step:3"
    # Anything else is replaced: a log line or a header must not be bent by what a client sends.
    for odd in ("a b", "x" * 129, "id\u00e9", "a\tb"):
        answer = client.get("/status/live", headers={request_ids.HEADER: odd})
        assert MADE.fullmatch(answer.headers[request_ids.HEADER])


def test_a_refused_request_carries_its_id_too(client):
    answer = client.get("/api/v1/experiments/nope", headers={request_ids.HEADER: "refused-1"})
    assert answer.status_code in (401, 404)
    assert answer.headers[request_ids.HEADER] == "refused-1"


def test_log_lines_written_while_serving_carry_the_requests_id(client, caplog):
    caplog.set_level(logging.INFO)
    answer = client.post("/signup", headers={request_ids.HEADER: "sign-up-1"}, data={
        "username": "alice", "password": PASSWORD, "csrf_token": csrf(client)})
    assert answer.status_code == 303
    created = [r for r in caplog.records if "account created" in r.getMessage()]
    assert [r.request_id for r in created] == ["sign-up-1"]
    assert request_ids.current() is None  # nothing outside a request


def test_json_lines_hold_the_id_and_no_secret():
    record = logging.LogRecord("chaoshub.test", logging.WARNING, __file__, 1,
                               "token %s refused", ("chub_abcdefghijklmnopqrstuvwx",), None)
    record.request_id = "r-1"
    line = json.loads(logs.JsonLines().format(record))
    assert (line["level"], line["logger"], line["request_id"]) == ("WARNING", "chaoshub.test",
                                                                   "r-1")
    assert line["time"].endswith("+00:00")
    assert "abcdefghijklmnop" not in json.dumps(line)


def test_the_log_format_is_json_in_production_unless_asked(tmp_path):
    production = {"CHAOSHUB_ENV": "production", "SECRET_KEY": "s", "PUBLIC_URL": "https://h",
                  "CHAOSHUB_SIGNING_KEY_FILE": "k", "CHAOSHUB_INSTANCE_PATH": str(tmp_path)}
    assert load_settings(production)["CHAOSHUB_LOG_FORMAT"] == "json"
    assert load_settings({**production, "CHAOSHUB_LOG_FORMAT": "Text"})[
        "CHAOSHUB_LOG_FORMAT"] == "text"
    development = {"CHAOSHUB_INSTANCE_PATH": str(tmp_path)}
    assert load_settings(development)["CHAOSHUB_LOG_FORMAT"] == "text"
    with pytest.raises(ConfigError, match="CHAOSHUB_LOG_FORMAT"):
        load_settings({**development, "CHAOSHUB_LOG_FORMAT": "xml"})


def test_a_hub_run_carries_the_id_of_the_request_that_started_it_into_its_worker(app, caplog):
    from chaoshub.experiment import worker
    from tests.conftest import signed_up_client
    from tests.experiment_data import create, make_token
    from tests.run_data import process, runnable

    alice = signed_up_client(app, "alice")
    saved = create(alice, document=runnable(method=[process("action", "fails", "/bin/false")]))
    token = make_token(alice, ["experiments:read", "executions:read", "executions:write",
                               "runs:execute"])
    started = app.test_client().post(
        f"/api/v1/experiments/{saved['id']}/runs", json={},
        headers={"Authorization": f"Bearer {token}", request_ids.HEADER: "start-run-7"})
    assert started.status_code == 202, started.get_json()
    assert started.get_json()["request_id"] == "start-run-7"
    caplog.set_level(logging.INFO)
    with app.app_context():
        assert worker.poll(until_idle=True) == 1
    assert request_ids.current() is None  # the worker's id ends with its run
    run = alice.get(f"/api/v1/runs/{started.get_json()['id']}").get_json()
    assert run["request_id"] == "start-run-7" and run["events"]
    # Every event the worker kept came in under the id that queued the run.
    assert {event["request_id"] for event in run["events"]} == {"start-run-7"}
    worker_lines = [r for r in caplog.records if r.name.startswith("chaoshub.experiment")]
    assert worker_lines and {r.request_id for r in worker_lines} == {"start-run-7"}


def test_a_client_runs_events_carry_the_id_of_the_request_they_came_in_with(app):
    from tests import run_data
    from tests.conftest import signed_up_client
    from tests.experiment_data import make_token

    alice = signed_up_client(app, "alice")
    token = make_token(alice, ["experiments:write", "executions:write"])
    headers = {"Authorization": f"Bearer {token}"}
    opening = {"org": "alice", "workspace": "Personal", "experiment": run_data.runnable()}
    opened = app.test_client().post("/api/v1/runs", json=opening,
                                    headers={**headers, request_ids.HEADER: "open-1"})
    assert opened.status_code == 201, opened.get_json()
    run_id = opened.get_json()["id"]
    for seq, sent in ((1, "batch-1"), (2, "batch-2")):
        answer = app.test_client().post(
            f"/api/v1/runs/{run_id}/events", headers={**headers, request_ids.HEADER: sent},
            # A client's own request_id is not taken: the hub says which request it came with.
            json=[{"seq": seq, "type": "activity-started", "name": "x",
                   "request_id": "forged"}])
        assert answer.status_code == 200, answer.get_json()
    run = alice.get(f"/api/v1/runs/{run_id}").get_json()
    assert run["request_id"] == "open-1"
    assert [e["request_id"] for e in run["events"]] == ["batch-1", "batch-2"]
