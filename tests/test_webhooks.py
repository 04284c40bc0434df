"""Webhooks: signed deliveries to a real receiver on 127.0.0.1, retried until it answers, what
runs and the kill switch announce, what the API shows (never the secret), who may manage them,
and the targets the hub refuses (SSRF)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import logging
import socket
import threading
from datetime import datetime

import pytest

from chaoshub.experiment import webhook_delivery, webhook_targets, worker
from tests.conftest import csrf, post_json, signed_up_client
from tests.experiment_data import create, experiment, make_token, variant
from tests.run_data import deviating, process, runnable, wait_for
from tests.webhook_receiver import start as start_receiver
from tests.webhook_receiver import stop as stop_receiver

HOOKS = "/api/v1/orgs/alice/workspaces/Personal/webhooks"
RUNNER = ["experiments:read", "experiments:write", "executions:read", "executions:write",
          "runs:execute"]


@pytest.fixture
def hub(app):
    # The receivers listen on loopback; retries come in milliseconds, a silent one in 1 s.
    app.config.update(ALLOW_PRIVATE_TARGETS=True, WEBHOOK_RETRY_SCALE=0.0001,
                      WEBHOOK_TIMEOUT_SECONDS=1.0, PUBLIC_URL="https://hub.example.com")
    return app


@pytest.fixture
def alice(hub):
    return signed_up_client(hub, "alice")


@pytest.fixture
def receiver():
    found = start_receiver()
    yield found
    stop_receiver(found)


@pytest.fixture
def other_receiver():
    found = start_receiver()
    yield found
    stop_receiver(found)


def deliver(app) -> int:
    """What a worker's delivery thread does once."""
    with app.app_context():
        return webhook_delivery.deliver_due()


def deliver_until(app, predicate, what: str):
    return wait_for(lambda: (deliver(app), predicate())[1], 15, what)


def subscribe(browser, url: str, events: list[str], kind: str = "webhook") -> dict:
    made = post_json(browser, HOOKS, {"url": url, "events": events, "kind": kind})
    assert made.status_code == 201, made.get_json()
    return made.get_json()


def verified(secret: str, received) -> dict:
    """The body, once its Standard Webhooks signature checks out (by hand, with hmac)."""
    headers = {k.lower(): v for k, v in received.headers.items()}
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + received.body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    offered = [s.split(",", 1)[1] for s in headers["webhook-signature"].split(" ")]
    assert any(hmac.compare_digest(expected, s) for s in offered), "the signature is wrong"
    return json.loads(received.body)


def change(browser, experiment_id: str, title: str, document: dict | None = None) -> None:
    document = {**(document or experiment()), "title": title}
    answer = browser.put(f"/api/v1/experiments/{experiment_id}", json=document,
                         headers={"X-CSRF-Token": csrf(browser)})
    assert answer.status_code == 200, answer.get_json()


def test_a_signed_body_is_retried_until_the_receiver_takes_it(hub, alice, receiver):
    receiver.codes = [500, 500, 500, 200]
    hook = subscribe(alice, receiver.url, ["experiment.changed"])
    secret = hook["secret"]
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32
    made = create(alice)
    change(alice, made["id"], "Changed once")

    deliver_until(hub, lambda: len(receiver.received) == 4, "four attempts")
    bodies = [verified(secret, r) for r in receiver.received]
    assert {b["type"] for b in bodies} == {"experiment.changed"}
    data = bodies[-1]["data"]
    assert data["experiment"]["id"] == made["id"] and data["experiment"]["version"] == 2
    assert data["experiment"]["url"] == \
        f"https://hub.example.com/alice/Personal/experiment/{made['id']}"
    # One message, however often it is tried: receivers drop repeats by its id.
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 1

    log = alice.get(f"/api/v1/webhooks/{hook['id']}/deliveries").get_json()["deliveries"]
    assert len(log) == 1 and log[0]["status"] == "delivered"
    assert [a["status_code"] for a in log[0]["attempts"]] == [500, 500, 500, 200]
    assert all(a["duration_ms"] >= 0 and a["attempted_at"] for a in log[0]["attempts"])
    assert deliver(hub) == 0  # delivered: nothing more is owed

    # Redelivered on request, with the same message id, and logged as a fifth attempt.
    again = alice.post(f"/api/v1/webhooks/{hook['id']}/deliveries/{log[0]['id']}/redeliver",
                       headers={"X-CSRF-Token": csrf(alice)})
    assert again.status_code == 202 and again.get_json()["status"] == "pending"
    deliver_until(hub, lambda: len(receiver.received) == 5, "the redelivery")
    assert verified(secret, receiver.received[-1])["data"] == data
    log = alice.get(f"/api/v1/webhooks/{hook['id']}/deliveries").get_json()["deliveries"]
    assert [a["status_code"] for a in log[0]["attempts"]] == [500, 500, 500, 200, 200]


def test_a_receiver_that_never_takes_it_is_given_up_after_the_schedule(hub, alice, receiver):
    # The whole schedule in about a second (at the fixture's scale it takes eleven).
    hub.config["WEBHOOK_RETRY_SCALE"] = 0.00001
    receiver.codes = [503]
    hook = subscribe(alice, receiver.url, ["experiment.changed"])
    change(alice, create(alice)["id"], "Changed")
    attempts = len(webhook_delivery.SCHEDULE) + 1
    deliver_until(hub, lambda: len(receiver.received) == attempts, "every attempt")
    assert deliver(hub) == 0
    log = alice.get(f"/api/v1/webhooks/{hook['id']}/deliveries").get_json()["deliveries"]
    assert log[0]["status"] == "failed" and log[0]["next_attempt_at"] is None
    assert [a["status_code"] for a in log[0]["attempts"]] == [503] * attempts


def test_a_deviating_run_tells_those_who_subscribed_to_it(hub, alice, receiver,
                                                          other_receiver):
    deviations = subscribe(alice, receiver.url, ["run.deviated"])
    subscribe(alice, other_receiver.url, ["run.finished", "experiment.changed"])
    token = make_token(alice, RUNNER)
    made = create(alice, document=deviating())
    started = hub.test_client().post(f"/api/v1/experiments/{made['id']}/runs", json={},
                                     headers={"Authorization": f"Bearer {token}"})
    assert started.status_code == 202, started.get_json()
    run_id = started.get_json()["id"]
    with hub.app_context():
        assert worker.execute(run_id, "test-worker") == "finished"

    deliver_until(hub, lambda: receiver.received, "the deviation's notification")
    assert deliver(hub) == 0
    body = verified(deviations["secret"], receiver.received[0])
    assert body["type"] == "run.deviated"
    run = body["data"]["run"]
    assert (run["id"], run["outcome"], run["origin"]) == (run_id, "deviated", "hub")
    assert run["url"] == (f"https://hub.example.com/alice/Personal/experiment/{made['id']}"
                          f"/run/{run_id}")
    assert len(receiver.received) == 1  # run.started was not asked for
    assert other_receiver.received == []  # neither a deviation nor a change was asked for


def test_runs_reported_by_the_cli_announce_their_start_and_their_outcome(hub, alice, receiver):
    hook = subscribe(alice, receiver.url, ["run.started", "run.failed", "run.finished"])
    token = make_token(alice, RUNNER)
    client = hub.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    made = create(alice)
    outcomes = []
    for outcome in ("probe-error", "passed"):
        opened = client.post("/api/v1/runs", json={
            "org": "alice", "workspace": "Personal", "experiment": experiment(),
            "experiment_id": made["id"]}, headers=headers)
        assert opened.status_code == 201, opened.get_json()
        run_id = opened.get_json()["id"]
        finished = client.put(f"/api/v1/runs/{run_id}/journal", json=variant(outcome),
                              headers=headers)
        assert finished.status_code in (200, 201), finished.get_json()
        outcomes.append(run_id)
    deliver_until(hub, lambda: len(receiver.received) == 4, "four notifications")
    told = [(b["type"], b["data"]["run"]["id"]) for b in
            (verified(hook["secret"], r) for r in receiver.received)]
    assert sorted(told) == sorted([("run.started", outcomes[0]), ("run.failed", outcomes[0]),
                                   ("run.started", outcomes[1]),
                                   ("run.finished", outcomes[1])])


def test_the_kill_switch_is_announced_engaged_and_released(hub, alice, receiver):
    hook = subscribe(alice, receiver.url, ["killswitch.engaged", "killswitch.released"])
    for engaged in (True, False):
        answer = post_json(alice, "/api/v1/orgs/alice/kill-switch",
                           {"engaged": engaged, "reason": "game day" if engaged else ""})
        assert answer.status_code == 200, answer.get_json()
    deliver_until(hub, lambda: len(receiver.received) == 2, "both notifications")
    bodies = sorted((verified(hook["secret"], r) for r in receiver.received),
                    key=lambda b: b["timestamp"])
    assert [b["type"] for b in bodies] == ["killswitch.engaged", "killswitch.released"]
    assert bodies[0]["data"]["reason"] == "game day" and bodies[0]["data"]["by"] == "alice"


class Silent:
    """A receiver that takes connections and never answers."""

    def __init__(self):
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.accepted: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        try:
            while True:
                self.accepted.append(self.socket.accept()[0])
        except OSError:
            return

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.socket.getsockname()[1]}/hook"

    def close(self):
        self.socket.close()
        for held in self.accepted:
            held.close()


def test_a_receiver_that_hangs_or_is_down_never_holds_up_a_run(hub, alice):
    silent = Silent()
    down = socket.create_server(("127.0.0.1", 0))
    down_url = f"http://127.0.0.1:{down.getsockname()[1]}/hook"
    down.close()  # nothing listens there now
    try:
        hung = subscribe(alice, silent.url, ["run.started", "run.finished"])
        gone = subscribe(alice, down_url, ["run.started", "run.finished"])
        token = make_token(alice, RUNNER)
        made = create(alice, document=runnable())
        started = hub.test_client().post(f"/api/v1/experiments/{made['id']}/runs", json={},
                                         headers={"Authorization": f"Bearer {token}"})
        assert started.status_code == 202
        with hub.app_context():
            # The run sends nothing itself: it ends as it would with no webhook at all.
            assert worker.execute(started.get_json()["id"], "test-worker") == "finished"
        assert deliver(hub) == 4  # two notifications to each, tried by the workers
        for hook, error in ((hung, "no answer within 1 s"), (gone, "could not connect")):
            log = alice.get(f"/api/v1/webhooks/{hook['id']}/deliveries").get_json()
            assert {d["type"] for d in log["deliveries"]} == {"run.started", "run.finished"}
            for delivery in log["deliveries"]:
                assert delivery["status"] == "pending" and delivery["next_attempt_at"]
                assert [a["status_code"] for a in delivery["attempts"]] == [None]
                assert delivery["attempts"][0]["error"].startswith(error)
    finally:
        silent.close()


def test_a_receiver_that_hangs_holds_up_no_other_delivery(hub, alice, receiver):
    hub.config["WEBHOOK_TIMEOUT_SECONDS"] = 2.0
    silent = Silent()
    try:
        hung = subscribe(alice, silent.url, ["killswitch.engaged", "killswitch.released"])
        answering = subscribe(alice, receiver.url, ["killswitch.released"])
        for engaged in (True, False):  # the silent receiver's first delivery is due first
            assert post_json(alice, "/api/v1/orgs/alice/kill-switch",
                             {"engaged": engaged, "reason": "drill"}).status_code == 200
        assert deliver(hub) == 3
        timed_out = [d["attempts"][0] for d in alice.get(
            f"/api/v1/webhooks/{hung['id']}/deliveries").get_json()["deliveries"]]
        assert [a["error"].startswith("no answer within") for a in timed_out] == [True, True]
        [taken] = alice.get(
            f"/api/v1/webhooks/{answering['id']}/deliveries").get_json()["deliveries"]
        assert taken["status"] == "delivered" and len(receiver.received) == 1
        # Sent while the silent receiver held its senders, not after they gave up on it.
        assert (datetime.fromisoformat(taken["attempts"][0]["attempted_at"])
                < min(datetime.fromisoformat(a["attempted_at"]) for a in timed_out))
    finally:
        silent.close()


def test_private_targets_are_refused_unless_the_operator_allows_them(hub, alice, receiver):
    hub.config["ALLOW_PRIVATE_TARGETS"] = False
    for url in (receiver.url, "http://localhost:8080/x", "http://10.1.2.3/x",
                "http://[::1]/x", "http://2130706433/x", "http://100.64.0.1/x",
                "http://169.254.169.254/latest/meta-data", "ftp://example.com/x",
                "http://user:pw@example.com/x"):
        refused = post_json(alice, HOOKS, {"url": url, "events": ["run.started"]})
        assert refused.status_code == 422, url
        assert refused.get_json()["details"][0]["pointer"] == "/url"
    # Cloud metadata stays out of reach whatever the operator allows.
    hub.config["ALLOW_PRIVATE_TARGETS"] = True
    refused = post_json(alice, HOOKS, {"url": "http://169.254.169.254/", "events": ["run.started"]})
    assert refused.status_code == 422
    metadata = post_json(alice, HOOKS, {"url": "http://metadata.google.internal/",
                                        "events": ["run.started"]})
    assert metadata.status_code == 422

    # A name that resolves to a private address is refused when the delivery is made (this
    # machine's own name: /etc/hosts gives it a loopback address).
    name = socket.gethostname()
    if webhook_targets.address_problem(
            ipaddress.ip_address(socket.gethostbyname(name)), False) is None:
        pytest.skip(f"{name} resolves to a public address here")
    hook = subscribe(alice, f"http://{name}:{receiver.server.server_address[1]}/hook",
                     ["experiment.changed"])
    hub.config["ALLOW_PRIVATE_TARGETS"] = False
    change(alice, create(alice)["id"], "Changed")
    assert deliver(hub) == 1
    assert receiver.received == []
    log = alice.get(f"/api/v1/webhooks/{hook['id']}/deliveries").get_json()["deliveries"]
    assert log[0]["status"] == "failed"  # no retry would change it
    assert log[0]["attempts"][0]["error"].startswith(f"refused: {name} resolves to")


def test_a_redirect_to_a_private_address_is_refused(hub, alice, receiver, other_receiver):
    hook = subscribe(alice, receiver.url, ["experiment.changed"])
    receiver.codes = [307]
    receiver.location = "http://169.254.169.254/latest/meta-data/iam"
    change(alice, create(alice)["id"], "Changed")
    assert deliver(hub) == 1
    log = alice.get(f"/api/v1/webhooks/{hook['id']}/deliveries").get_json()["deliveries"]
    assert log[0]["status"] == "failed"
    assert "cloud metadata" in log[0]["attempts"][0]["error"]
    # A redirect to an allowed target is followed (the hub's own loopback, allowed here).
    receiver.location = other_receiver.url
    again = alice.post(f"/api/v1/webhooks/{hook['id']}/deliveries/{log[0]['id']}/redeliver",
                       headers={"X-CSRF-Token": csrf(alice)})
    assert again.status_code == 202
    deliver_until(hub, lambda: other_receiver.received, "the redirected delivery")
    assert verified(hook["secret"], other_receiver.received[0])["type"] == "experiment.changed"


@pytest.mark.parametrize("address, refused", [
    ("127.0.0.1", True), ("10.0.0.1", True), ("172.16.5.4", True), ("192.168.1.1", True),
    ("100.64.0.1", True), ("169.254.10.10", True), ("0.0.0.0", True), ("::1", True),
    ("fc00::1", True), ("fe80::1", True), ("::ffff:10.0.0.1", True), ("224.0.0.1", True),
    ("8.8.8.8", False), ("2606:4700:4700::1111", False),
])
def test_addresses_the_hub_will_not_call(address, refused):
    problem = webhook_targets.address_problem(ipaddress.ip_address(address), False)
    assert (problem is not None) == refused
    assert webhook_targets.address_problem(ipaddress.ip_address(address), True) is None


def test_the_secret_is_shown_once_and_never_again(hub, alice, receiver, caplog):
    caplog.set_level(logging.DEBUG)
    hook = subscribe(alice, receiver.url, ["experiment.changed"])
    secret = hook["secret"]
    change(alice, create(alice)["id"], "Changed")
    deliver_until(hub, lambda: receiver.received, "the delivery")
    answers = [alice.get(f"/api/v1/webhooks/{hook['id']}"), alice.get(HOOKS),
               alice.get(f"/api/v1/webhooks/{hook['id']}/deliveries"),
               alice.patch(f"/api/v1/webhooks/{hook['id']}", json={"description": "ci"},
                           headers={"X-CSRF-Token": csrf(alice)}),
               alice.get("/alice/Personal/-/notifications"),
               alice.get(f"/alice/Personal/-/notifications/{hook['id']}"),
               alice.get("/api/v1/orgs/alice/activity"), alice.get("/alice/-/audit")]
    for answer in answers:
        assert answer.status_code == 200, answer.request.path
        text = answer.get_data(as_text=True)
        assert secret not in text and secret[6:] not in text, answer.request.path
        assert "secret" not in (answer.get_json() or {}), answer.request.path
    assert secret not in caplog.text and secret[6:] not in caplog.text


def test_a_slack_notification_is_a_formatted_message_with_a_link(hub, alice, receiver):
    slack_url = receiver.url + "/T000/B000/XXXXsecretpart"
    hook = subscribe(alice, slack_url, ["run.started"], kind="slack")
    assert hook["secret"] is None and hook["url"] == "http://127.0.0.1/…"
    assert "secretpart" not in alice.get(f"/api/v1/webhooks/{hook['id']}").get_data(True)
    made = create(alice, document=runnable("Slack me"))
    token = make_token(alice, RUNNER)
    started = hub.test_client().post(f"/api/v1/experiments/{made['id']}/runs", json={},
                                     headers={"Authorization": f"Bearer {token}"})
    run_id = started.get_json()["id"]
    with hub.app_context():
        worker.execute(run_id, "test-worker")
    deliver_until(hub, lambda: receiver.received, "the Slack message")
    received = receiver.received[0]
    assert received.path == "/hook/T000/B000/XXXXsecretpart"
    message = json.loads(received.body)
    link = f"https://hub.example.com/alice/Personal/experiment/{made['id']}/run/{run_id}"
    assert "*Slack me*" in message["text"] and link in message["text"]
    assert message["blocks"][0]["type"] == "section"
    buttons = [e for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert buttons[0]["url"] == link
    # In production only Slack's own address is taken.
    hub.config["ALLOW_PRIVATE_TARGETS"] = False
    refused = post_json(alice, HOOKS, {"url": "https://example.com/services/x",
                                       "events": ["run.started"], "kind": "slack"})
    assert refused.status_code == 422
    taken = post_json(alice, HOOKS, {"url": "https://hooks.slack.com/services/T/B/x",
                                     "events": ["run.started"], "kind": "slack"})
    assert taken.status_code == 201 and taken.get_json()["url"] == "https://hooks.slack.com/…"


def test_only_maintainers_and_owners_manage_webhooks(hub, alice, receiver):
    bob = signed_up_client(hub, "bob")
    carol = signed_up_client(hub, "carol")
    assert post_json(alice, "/api/v1/orgs", {"name": "team"}).status_code == 201
    assert post_json(alice, "/api/v1/orgs/team/workspaces", {"name": "lab"}).status_code == 201
    added = post_json(alice, "/api/v1/orgs/team/members", {"username": "bob", "role": "member"})
    assert added.status_code == 201, added.get_json()
    team_hooks = "/api/v1/orgs/team/workspaces/lab/webhooks"
    hook = post_json(alice, team_hooks, {"url": receiver.url, "events": ["run.started"]})
    assert hook.status_code == 201
    hook_id = hook.get_json()["id"]
    # A member sees the workspace but may not manage its webhooks; an outsider sees nothing.
    assert bob.get(team_hooks).status_code == 403
    assert bob.get(f"/api/v1/webhooks/{hook_id}").status_code == 403
    assert post_json(bob, team_hooks, {"url": receiver.url,
                                       "events": ["run.started"]}).status_code == 403
    assert carol.get(team_hooks).status_code == 404
    assert carol.get(f"/api/v1/webhooks/{hook_id}").status_code == 404
    assert carol.delete(f"/api/v1/webhooks/{hook_id}",
                        headers={"X-CSRF-Token": csrf(carol)}).status_code == 404
    # A token without runs:execute may not; with it, the owner may.
    reader = make_token(alice, ["experiments:read"])
    assert hub.test_client().get(team_hooks, headers={
        "Authorization": f"Bearer {reader}"}).status_code == 403
    runner = make_token(alice, RUNNER)
    listed = hub.test_client().get(team_hooks, headers={"Authorization": f"Bearer {runner}"})
    assert [h["id"] for h in listed.get_json()["webhooks"]] == [hook_id]
    # Changed, turned off, then deleted, each in the audit log without a secret.
    turned_off = alice.patch(f"/api/v1/webhooks/{hook_id}", json={"active": False},
                             headers={"X-CSRF-Token": csrf(alice)})
    assert turned_off.status_code == 200 and turned_off.get_json()["active"] is False
    assert alice.delete(f"/api/v1/webhooks/{hook_id}",
                        headers={"X-CSRF-Token": csrf(alice)}).status_code == 204
    assert alice.get(f"/api/v1/webhooks/{hook_id}").status_code == 404
    audit = alice.get("/api/v1/orgs/team/audit").get_json()
    kinds = [e["event"] for e in audit["entries"]]
    assert {"webhook.created", "webhook.changed", "webhook.deleted"} <= set(kinds)
    assert "whsec_" not in json.dumps(audit)


def test_bad_bodies_are_refused_with_pointers(hub, alice):
    refused = post_json(alice, HOOKS, {"url": "https://example.com/x",
                                       "events": ["run.started", "run.exploded"]})
    assert refused.status_code == 422
    assert refused.get_json()["details"][0]["pointer"] == "/events/1"
    assert post_json(alice, HOOKS, {"url": "https://example.com/x",
                                    "events": []}).status_code == 422
    assert post_json(alice, HOOKS, {"url": "https://example.com/x", "events": ["run.started"],
                                    "kind": "sms"}).status_code == 422
    assert alice.get("/api/v1/webhooks/nope").status_code == 404
    assert alice.get("/api/v1/webhooks/nope/deliveries").status_code == 404


def test_the_notifications_page_adds_a_webhook_and_shows_its_secret_once(hub, alice, receiver):
    form = {"url": receiver.url, "events": ["experiment.changed", "run.deviated"],
            "kind": "webhook", "description": "ops", "csrf_token": csrf(alice)}
    made = alice.post("/alice/Personal/-/notifications", data=form)
    assert made.status_code == 201 and made.headers["Cache-Control"] == "no-store"
    html = made.get_data(as_text=True)
    secret = html.split('data-testid="secret" id="new-secret"')[0].rsplit('value="', 1)[1]
    secret = secret.split('"')[0]
    assert secret.startswith("whsec_")
    page = alice.get("/alice/Personal/-/notifications").get_data(as_text=True)
    assert receiver.url in page and secret not in page
    hook_id = alice.get(HOOKS).get_json()["webhooks"][0]["id"]
    change(alice, create(alice)["id"], "Changed")
    deliver_until(hub, lambda: receiver.received, "the delivery")
    verified(secret, receiver.received[0])
    log = alice.get(f"/alice/Personal/-/notifications/{hook_id}").get_data(as_text=True)
    assert "experiment.changed" in log and ">200<" in log
    # Redeliver and ping from the page; a member of another workspace finds nothing there.
    delivery_id = alice.get(f"/api/v1/webhooks/{hook_id}/deliveries").get_json()[
        "deliveries"][0]["id"]
    again = alice.post(f"/alice/Personal/-/notifications/{hook_id}/deliveries/{delivery_id}"
                       "/redeliver", data={"csrf_token": csrf(alice)})
    assert again.status_code == 303
    deliver_until(hub, lambda: len(receiver.received) == 2, "the redelivery")
    assert alice.post(f"/alice/Personal/-/notifications/{hook_id}/test",
                      data={"csrf_token": csrf(alice)}).status_code == 303
    deliver_until(hub, lambda: len(receiver.received) == 3, "the ping")
    assert verified(secret, receiver.received[-1])["type"] == "ping"
    bob = signed_up_client(hub, "bob")
    assert bob.get(f"/bob/Personal/-/notifications/{hook_id}").status_code == 404
    assert bob.get("/alice/Personal/-/notifications").status_code == 404
    # A bad URL shows the form again with the problem, and nothing is added.
    refused = alice.post("/alice/Personal/-/notifications",
                         data={**form, "url": "gopher://x", "csrf_token": csrf(alice)})
    assert refused.status_code == 422 and "http:// or https://" in refused.get_data(True)
    assert len(alice.get(HOOKS).get_json()["webhooks"]) == 1
    deleted = alice.post(f"/alice/Personal/-/notifications/{hook_id}/delete",
                         data={"csrf_token": csrf(alice)})
    assert deleted.status_code == 303
    assert alice.get(HOOKS).get_json()["webhooks"] == []


def test_the_log_forgets_ended_deliveries_after_30_days(hub, alice, receiver):
    from datetime import timedelta

    from chaoshub.core.models import utcnow

    hook = subscribe(alice, receiver.url, ["experiment.changed"])
    change(alice, create(alice)["id"], "Changed")
    deliver_until(hub, lambda: receiver.received, "the delivery")
    with hub.app_context():
        assert webhook_delivery.prune(utcnow() + timedelta(days=29)) == 0
        assert webhook_delivery.prune(utcnow() + timedelta(days=31)) == 1
    assert alice.get(f"/api/v1/webhooks/{hook['id']}/deliveries").get_json()["deliveries"] == []


def test_a_name_is_reached_at_the_address_checked_with_its_own_host_header(hub, receiver):
    # The connection goes to the address the check resolved (this machine's own name is in
    # /etc/hosts), never to a second resolution; the receiver still reads the name it was given.
    name = socket.gethostname()
    port = receiver.server.server_address[1]
    answer = webhook_targets.post(f"http://{name}:{port}/hook?x=1", b"{}",
                                  {"Content-Type": "application/json"}, 1.0, True)
    assert answer.ok and answer.excerpt == "ok", answer
    assert receiver.received[0].headers["Host"] == f"{name}:{port}"
    assert receiver.received[0].path == "/hook?x=1"
    refused = webhook_targets.post(f"http://{name}:{port}/hook", b"{}", {}, 1.0, False)
    assert refused.refused and receiver.received[1:] == []


def test_a_host_name_written_oddly_is_refused_or_reached_by_its_ascii_name(hub, alice, receiver):
    # Full-width digits name 127.0.0.1 once IDNA folds them (as the resolver does), so the
    # check sees that address; and a name the resolver takes is sent with its ASCII Host
    # header rather than failing every attempt out of the log (and being retried for ever).
    hub.config["ALLOW_PRIVATE_TARGETS"] = False
    folded = post_json(alice, HOOKS, {"url": "http://\uff11\uff12\uff17.0.0.1/x",
                                      "events": ["run.started"]})
    assert folded.status_code == 422, folded.get_json()
    port = receiver.server.server_address[1]
    answer = webhook_targets.post(f"http://\uff11\uff12\uff17.0.0.1:{port}/hook", b"{}", {},
                                  1.0, True)
    assert answer.ok, answer
    assert receiver.received[0].headers["Host"] == f"127.0.0.1:{port}"


def test_a_slack_url_stays_out_of_the_logs_even_at_debug_level(hub, alice, receiver, caplog):
    # urllib3 logs each request's path at DEBUG: a Slack URL's path is its credential.
    caplog.set_level(logging.DEBUG)
    subscribe(alice, receiver.url + "/T000/B000/XXXXsecretpart", ["experiment.changed"],
              kind="slack")
    change(alice, create(alice)["id"], "Changed")
    deliver_until(hub, lambda: receiver.received, "the Slack message")
    assert receiver.received[0].path.endswith("XXXXsecretpart")
    assert "urllib3" in caplog.text  # its lines are kept, without the path
    assert "secretpart" not in caplog.text



def test_a_run_stopped_at_its_maximum_duration_is_announced_aborted(hub, alice, receiver):
    # Its journal (interrupted) still comes in, but the hub ends it aborted: so does the news.
    hook = subscribe(alice, receiver.url, ["run.aborted", "run.interrupted", "run.finished"])
    token = make_token(alice, RUNNER)
    made = create(alice, document=runnable(method=[
        process("action", "wait", "/bin/sleep", "30")]))
    started = hub.test_client().post(f"/api/v1/experiments/{made['id']}/runs", json={},
                                     headers={"Authorization": f"Bearer {token}"})
    assert started.status_code == 202, started.get_json()
    hub.config.update(RUN_MAX_SECONDS=2, RUN_GRACE_SECONDS=5)
    with hub.app_context():
        assert worker.execute(started.get_json()["id"], "test-worker") == "aborted"
    deliver_until(hub, lambda: receiver.received, "the run's end")
    assert deliver(hub) == 0
    assert [verified(hook["secret"], r)["type"] for r in receiver.received] == ["run.aborted"]


@pytest.mark.parametrize("address, inside", [
    ("2002:7f00:1::1", "127.0.0.1"), ("2002:a9fe:a9fe::", "169.254.169.254"),
    ("2002:a00:1::1", "10.0.0.1"), ("64:ff9b::a9fe:a9fe", "169.254.169.254"),
])
def test_an_ipv4_address_inside_an_ipv6_one_is_checked_as_itself(address, inside):
    # 6to4 and NAT64 addresses carry an IPv4 one: a gateway takes them there.
    assert webhook_targets.address_problem(ipaddress.ip_address(address), False)
    metadata = inside == "169.254.169.254"
    allowed = webhook_targets.address_problem(ipaddress.ip_address(address), True)
    assert (allowed is not None and "cloud metadata" in allowed) == metadata


def test_the_log_forgets_every_old_delivery_however_many_ended(hub, alice, receiver,
                                                              monkeypatch):
    # Removed in batches until none is left: an hour's round keeps up with any traffic.
    from datetime import timedelta

    from chaoshub.core.models import utcnow

    monkeypatch.setattr(webhook_delivery, "PRUNE_BATCH", 2)
    hook = subscribe(alice, receiver.url, ["experiment.changed"])
    made = create(alice)
    for title in ("One", "Two", "Three"):
        change(alice, made["id"], title)
    deliver_until(hub, lambda: len(receiver.received) == 3, "the deliveries")
    with hub.app_context():
        assert webhook_delivery.prune(utcnow() + timedelta(days=31)) == 3
    assert alice.get(f"/api/v1/webhooks/{hook['id']}/deliveries").get_json()["deliveries"] == []


class Dripping:
    """A receiver that answers one byte at a time, each well within the read timeout, with a
    header that takes minutes to come."""

    def __init__(self, pause: float = 0.2):
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.pause, self.stopped = pause, threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        try:
            held, _ = self.socket.accept()
        except OSError:
            return
        answer = b"HTTP/1.1 200 OK\r\nX-Pad: " + b"a" * 2000 + b"\r\nContent-Length: 2\r\n\r\nok"
        try:
            for byte in answer:
                if self.stopped.wait(self.pause):
                    break
                held.sendall(bytes([byte]))
        except OSError:
            pass
        finally:
            held.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.socket.getsockname()[1]}/hook"

    def close(self):
        self.stopped.set()
        self.socket.close()


def test_a_receiver_that_drips_its_answer_is_cut_off(hub):
    # Each byte comes within the read timeout; the attempt as a whole still has a deadline, so
    # one slow receiver cannot hold a worker's deliveries (nor outlast the lease and be sent
    # twice).
    dripping = Dripping()
    try:
        answer = webhook_targets.post(dripping.url, b"{}", {}, 1.0, True)
    finally:
        dripping.close()
    assert not answer.ok and answer.status is None
    assert answer.error.startswith("no whole answer within"), answer


def _tls_files(folder) -> tuple[str, str, str]:
    """A CA, and a certificate it signed for 127.0.0.1 with its key: (ca, cert, key) paths."""
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.now(UTC)

    def made(subject, issuer, key, signer, ca: bool, san=None):
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - timedelta(days=1))
                   .not_valid_after(now + timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), True))
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName(san), False)
        return builder.sign(signer, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    ca = made(ca_name, ca_name, ca_key, ca_key, True)
    cert = made(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]), ca_name,
                key, ca_key, False, [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    paths = [str(folder / name) for name in ("ca.pem", "cert.pem", "key.pem")]
    pem = serialization.Encoding.PEM
    for path, data in zip(paths, (ca.public_bytes(pem), cert.public_bytes(pem),
                                  key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption())), strict=True):
        with open(path, "wb") as file:
            file.write(data)
    return paths[0], paths[1], paths[2]


def test_a_redirect_from_https_to_plain_http_is_refused(hub, receiver, other_receiver,
                                                        tmp_path, monkeypatch):
    # The body (and what it tells of the workspace) never leaves TLS for a cleartext hop.
    import ssl

    ca, cert, key = _tls_files(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", ca)  # what the hub's default trust store reads
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    receiver.server.socket = context.wrap_socket(receiver.server.socket, server_side=True)
    secure = receiver.url.replace("http://", "https://")
    receiver.codes, receiver.location = [200], ""
    assert webhook_targets.post(secure, b"{}", {}, 1.0, True).ok  # TLS to it works
    receiver.codes, receiver.location = [307], other_receiver.url
    answer = webhook_targets.post(secure, b"{}", {}, 1.0, True)
    assert answer.refused and "https" in answer.error, answer
    assert other_receiver.received == []


def test_a_worker_leases_each_delivery_as_it_sends_it(hub, alice, receiver, monkeypatch):
    # A lease lasts one attempt: taken for a whole batch at once, those at the batch's end
    # ran out behind slow receivers, and another worker sent them as well. Each sender holds
    # the one it sends.
    from sqlalchemy import func, select

    from chaoshub.core.db import transaction
    from chaoshub.experiment.models import WebhookDelivery

    subscribe(alice, receiver.url, ["experiment.changed"])
    made = create(alice)
    titles = [f"Change {n}" for n in range(webhook_delivery.SENDERS + 2)]
    for title in titles:
        change(alice, made["id"], title)
    leased = []
    real = webhook_delivery.attempt

    def counted(delivery_id):  # a spy: the real attempt still sends
        with transaction("experiment") as session:
            leased.append(session.scalar(select(func.count()).select_from(WebhookDelivery)
                                         .where(WebhookDelivery.lease_until.is_not(None))))
        return real(delivery_id)

    monkeypatch.setattr(webhook_delivery, "attempt", counted)
    assert deliver(hub) == len(titles) < webhook_delivery.BATCH
    assert len(leased) == len(titles) and len(receiver.received) == len(titles)
    assert 1 <= max(leased) <= webhook_delivery.SENDERS


def test_a_webhook_turned_off_is_not_pinged_nor_redelivered_to(hub, alice, receiver):
    # Its workers send it nothing while it is off: a 202 saying "sent shortly" would be false.
    hook = subscribe(alice, receiver.url, ["experiment.changed"])
    pinged = alice.post(f"/api/v1/webhooks/{hook['id']}/test",
                        headers={"X-CSRF-Token": csrf(alice)})
    assert pinged.status_code == 202
    off = alice.patch(f"/api/v1/webhooks/{hook['id']}", json={"active": False},
                      headers={"X-CSRF-Token": csrf(alice)})
    assert off.status_code == 200
    for path in (f"/api/v1/webhooks/{hook['id']}/test",
                 f"/api/v1/webhooks/{hook['id']}/deliveries/{pinged.get_json()['id']}"
                 "/redeliver"):
        refused = alice.post(path, headers={"X-CSRF-Token": csrf(alice)})
        assert refused.status_code == 409, path
        assert "turned off" in refused.get_json()["message"]
    log = alice.get(f"/api/v1/webhooks/{hook['id']}/deliveries").get_json()["deliveries"]
    assert len(log) == 1
    page = alice.get(f"/alice/Personal/-/notifications/{hook['id']}").get_data(as_text=True)
    assert "Turn on" in page and "Redeliver" not in page and "Send a ping" not in page


def test_an_answer_with_a_nul_in_it_is_logged_once(hub, alice, receiver):
    # PostgreSQL keeps no NUL in text: the excerpt drops it, rather than the attempt going
    # unlogged (and the delivered message being sent again at every lease's end).
    receiver.answer = b"\x00ok\x00"
    hook = subscribe(alice, receiver.url, ["experiment.changed"])
    change(alice, create(alice)["id"], "Changed")
    assert deliver(hub) == 1
    log = alice.get(f"/api/v1/webhooks/{hook['id']}/deliveries").get_json()["deliveries"]
    assert log[0]["status"] == "delivered"
    assert [(a["status_code"], a["response_excerpt"]) for a in log[0]["attempts"]] == [
        (200, "ok")]
