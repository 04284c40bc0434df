"""Webhooks sent by real `chaoshub worker` processes (PostgreSQL, Redis): two workers share the
deliveries, each sent once per attempt, and a hub run's notifications arrive signed."""

from __future__ import annotations

import pytest

from tests.conftest import post_json, signed_up_client
from tests.experiment_data import create, make_token
from tests.helpers import BIN, clean_env, start, stop
from tests.run_data import runnable, wait_for
from tests.test_webhooks import HOOKS, RUNNER, change, verified
from tests.webhook_receiver import start as start_receiver
from tests.webhook_receiver import stop as stop_receiver

pytestmark = pytest.mark.workers


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_worker_processes_deliver_each_attempt_once(app, settings, tmp_path, backend):
    receiver = start_receiver()
    receiver.codes = [500, 200]
    env = clean_env(**{k: str(v) for k, v in settings.items()}, ALLOW_PRIVATE_TARGETS="true",
                    WEBHOOK_RETRY_SCALE="0.001", WEBHOOK_POLL_SECONDS="0.2",
                    LOG_LEVEL="INFO")
    workers = [start([str(BIN / "chaoshub"), "worker"], tmp_path, env, tmp_path / f"w{n}.log")
               for n in range(2)]
    app.config["ALLOW_PRIVATE_TARGETS"] = True  # the receiver listens on loopback
    try:
        alice = signed_up_client(app, "alice")
        made = post_json(alice, HOOKS, {"url": receiver.url,
                                        "events": ["experiment.changed", "run.started",
                                                   "run.finished"]})
        assert made.status_code == 201, made.get_json()
        hook = made.get_json()
        experiment_id = create(alice, document=runnable("Notified"))["id"]
        change(alice, experiment_id, "Notified, changed", runnable())
        wait_for(lambda: len(receiver.received) == 2, 60, "the change, tried twice")
        token = make_token(alice, RUNNER)
        started = app.test_client().post(f"/api/v1/experiments/{experiment_id}/runs", json={},
                                         headers={"Authorization": f"Bearer {token}"})
        assert started.status_code == 202, started.get_json()
        run_id = started.get_json()["id"]
        wait_for(lambda: len(receiver.received) == 4, 90, "the run's start and end")

        bodies = [verified(hook["secret"], r) for r in receiver.received]
        assert [b["type"] for b in bodies[:2]] == ["experiment.changed"] * 2
        assert sorted(b["type"] for b in bodies[2:]) == ["run.finished", "run.started"]
        assert all(b["data"]["run"]["id"] == run_id for b in bodies[2:])
        log = alice.get(f"/api/v1/webhooks/{hook['id']}/deliveries").get_json()["deliveries"]
        codes = {d["type"]: [a["status_code"] for a in d["attempts"]] for d in log}
        assert codes == {"experiment.changed": [500, 200], "run.started": [200],
                         "run.finished": [200]}
    finally:
        stop(*workers)
        stop_receiver(receiver)
