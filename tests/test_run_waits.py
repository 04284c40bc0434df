"""Waiting for a hub run's end in one request: POST .../runs?wait=N and GET /runs/{id}?wait=N."""

from __future__ import annotations

import threading
import time

import pytest

from chaoshub.experiment import worker
from tests.conftest import signed_up_client
from tests.experiment_data import create, make_token
from tests.run_data import deviating, runnable

RUNNER = ["experiments:read", "executions:read", "executions:write", "runs:execute"]


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def alice(app):
    return signed_up_client(app, "alice")


@pytest.fixture
def token(alice):
    return make_token(alice, RUNNER)


def worker_soon(app, delay: float = 0.5) -> threading.Thread:
    """A worker that takes the queued runs a moment after the request started waiting."""
    def work():
        time.sleep(delay)
        with app.app_context():
            worker.poll(until_idle=True)

    thread = threading.Thread(target=work)
    thread.start()
    return thread


@pytest.mark.parametrize(("document", "outcome", "deviated"), [
    (runnable(), "passed", False), (deviating(), "deviated", True)])
def test_a_run_started_with_wait_answers_once_it_has_ended(app, alice, token, document,
                                                            outcome, deviated):
    saved = create(alice, document=document)
    thread = worker_soon(app)
    started = app.test_client().post(f"/api/v1/experiments/{saved['id']}/runs?wait=120",
                                     json={}, headers=bearer(token))
    thread.join()
    assert started.status_code == 201, started.get_json()
    run = started.get_json()
    assert (run["status"], run["ended"], run["origin"]) == ("finished", True, "hub")
    assert started.headers["Location"] == f"/api/v1/runs/{run['id']}"
    execution = run["execution"]
    assert (execution["id"], execution["status"], execution["outcome"],
            execution["deviated"]) == (run["execution_id"], "completed", outcome, deviated)
    assert execution["junit_url"].endswith(f"/api/v1/executions/{execution['id']}/junit")
    junit = alice.get(execution["junit_url"].removeprefix("http://localhost"))
    assert junit.status_code == 200 and b"<testsuite" in junit.data
    assert run["events"][-1]["type"] == "run-finished"


def test_a_wait_that_runs_out_answers_202_with_the_run_as_it_is(app, alice, token):
    saved = create(alice, document=runnable())
    began = time.monotonic()
    started = app.test_client().post(f"/api/v1/experiments/{saved['id']}/runs?wait=1",
                                     json={}, headers=bearer(token))
    assert started.status_code == 202
    assert time.monotonic() - began >= 0.9
    run = started.get_json()
    assert (run["status"], run["ended"], run["execution"]) == ("queued", False, None)

    began = time.monotonic()
    polled = app.test_client().get(f"/api/v1/runs/{run['id']}?wait=1", headers=bearer(token))
    assert polled.status_code == 202 and time.monotonic() - began >= 0.9
    assert (polled.get_json()["status"], polled.get_json()["ended"]) == ("queued", False)
    # Without ?wait the answer is as before: at once, 200.
    plain = app.test_client().get(f"/api/v1/runs/{run['id']}", headers=bearer(token))
    assert plain.status_code == 200 and plain.get_json()["ended"] is False


def test_a_long_poll_ends_with_the_run(app, alice, token):
    saved = create(alice, document=runnable())
    run = app.test_client().post(f"/api/v1/experiments/{saved['id']}/runs", json={},
                                 headers=bearer(token)).get_json()
    assert (run["ended"], run["execution"]) == (False, None)
    thread = worker_soon(app)
    polled = app.test_client().get(f"/api/v1/runs/{run['id']}?wait=120", headers=bearer(token))
    thread.join()
    assert polled.status_code == 200
    assert polled.get_json()["execution"]["outcome"] == "passed"


def test_an_aborted_run_ends_the_wait_without_an_execution(app, alice, token):
    saved = create(alice, document=runnable())
    run = app.test_client().post(f"/api/v1/experiments/{saved['id']}/runs", json={},
                                 headers=bearer(token)).get_json()

    def abort():
        time.sleep(0.5)
        app.test_client().post(f"/api/v1/runs/{run['id']}/abort", json={},
                               headers=bearer(token))

    thread = threading.Thread(target=abort)
    thread.start()
    began = time.monotonic()
    polled = app.test_client().get(f"/api/v1/runs/{run['id']}?wait=60", headers=bearer(token))
    thread.join()
    assert polled.status_code == 200 and time.monotonic() - began < 10
    body = polled.get_json()
    assert (body["status"], body["ended"], body["execution"]) == ("aborted", True, None)


@pytest.mark.parametrize("wait", ["601", "-1", "soon", "1.5"])
def test_a_bad_wait_is_a_400_and_starts_nothing(app, alice, token, wait):
    saved = create(alice, document=runnable())
    url = f"/api/v1/experiments/{saved['id']}/runs"
    refused = app.test_client().post(f"{url}?wait={wait}", json={}, headers=bearer(token))
    assert refused.status_code == 400, refused.get_json()
    assert refused.get_json()["error"] == "bad_request"
    assert [d["pointer"] for d in refused.get_json()["details"]] == ["/wait"]
    assert alice.get(url).get_json()["runs"] == []
    assert app.test_client().get(f"/api/v1/runs/any?wait={wait}",
                                 headers=bearer(token)).status_code == 400


def test_waiting_on_a_start_needs_executions_read_before_anything_starts(app, alice):
    saved = create(alice, document=runnable())
    url = f"/api/v1/experiments/{saved['id']}/runs"
    starter = make_token(alice, ["experiments:read", "runs:execute"])
    refused = app.test_client().post(f"{url}?wait=5", json={}, headers=bearer(starter))
    assert refused.status_code == 403 and "executions:read" in refused.get_json()["message"]
    assert alice.get(url).get_json()["runs"] == []


def test_the_hub_caps_waits_and_outsiders_never_wait(app, alice, token):
    app.config["RUN_WAIT_MAX_SECONDS"] = 1
    saved = create(alice, document=runnable())
    began = time.monotonic()
    started = app.test_client().post(f"/api/v1/experiments/{saved['id']}/runs?wait=600",
                                     json={}, headers=bearer(token))
    assert started.status_code == 202 and time.monotonic() - began < 5
    eve = make_token(signed_up_client(app, "eve"), RUNNER)
    began = time.monotonic()
    hidden = app.test_client().get(f"/api/v1/runs/{started.get_json()['id']}?wait=600",
                                   headers=bearer(eve))
    assert hidden.status_code == 404 and time.monotonic() - began < 1


def test_one_account_holds_two_waits_at_most_and_visitors_none(app, alice, token):
    saved = create(alice, document=runnable())
    run = app.test_client().post(f"/api/v1/experiments/{saved['id']}/runs", json={},
                                 headers=bearer(token)).get_json()
    url = f"/api/v1/runs/{run['id']}?wait=3"
    answers: list[float] = []

    def wait() -> None:
        began = time.monotonic()
        assert app.test_client().get(url, headers=bearer(token)).status_code == 202
        answers.append(time.monotonic() - began)

    threads = [threading.Thread(target=wait) for _ in range(2)]
    for thread in threads:
        thread.start()
    time.sleep(0.8)  # both waits are held now
    began = time.monotonic()
    third = app.test_client().get(url, headers=bearer(token))
    assert third.status_code == 202 and time.monotonic() - began < 1.5
    for thread in threads:
        thread.join()
    assert sorted(answers)[0] >= 2.9  # the first two waited their three seconds
    # Once they are over, the account waits again.
    began = time.monotonic()
    again = app.test_client().get(f"/api/v1/runs/{run['id']}?wait=1", headers=bearer(token))
    assert again.status_code == 202 and time.monotonic() - began >= 0.9


def test_a_visitor_reading_a_public_run_never_waits(app, alice, token):
    from tests.conftest import post_json

    assert post_json(alice, "/api/v1/orgs/alice/workspaces",
                     {"name": "open", "visibility": "public",
                      "outsider_executions": "full"}).status_code == 201
    saved = create(alice, workspace="open", document=runnable())
    run = app.test_client().post(f"/api/v1/experiments/{saved['id']}/runs", json={},
                                 headers=bearer(token)).get_json()
    began = time.monotonic()
    seen = app.test_client().get(f"/api/v1/runs/{run['id']}?wait=5")
    assert seen.status_code == 202 and seen.get_json()["status"] == "queued"
    assert time.monotonic() - began < 1.5  # read at once: no thread held for a visitor
