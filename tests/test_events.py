"""Domain events: the outbox, delivery pulled by the subscriber, idempotent handlers, retries."""

from __future__ import annotations

import logging
import sqlite3
import time

import pytest
import requests
from sqlalchemy import delete, func, select

from chaoshub import create_app
from chaoshub.auth.models import OutboxAck as AuthOutboxAck
from chaoshub.auth.models import OutboxEvent as AuthOutboxEvent
from chaoshub.core import db, events
from chaoshub.core.claims import verify
from chaoshub.core.db import transaction
from chaoshub.core.errors import Forbidden
from chaoshub.core.transport import INTERFACES
from chaoshub.dashboard import service as dashboard
from chaoshub.dashboard.models import Org, OutboxAck, OutboxEvent
from chaoshub.dashboard.public import domain_events
from chaoshub.experiment import service as experiments
from chaoshub.experiment import store as experiment_store
from chaoshub.experiment.models import Experiment, HandledEvent
from tests.conftest import FIXTURES, PASSWORD, sign_in, sign_up
from tests.helpers import BIN, clean_env, free_port, start, stop, wait_until_up
from tests.test_orgs import Accounts
from tests.test_split import browser, form, signed_in

SERVICES = ("auth", "dashboard", "experiment")


@pytest.fixture
def hub(app):
    with app.app_context():
        yield Accounts()


def experiments_in(workspace_id: str) -> int:
    with transaction("experiment") as session:
        return session.scalar(select(func.count()).select_from(Experiment)
                              .where(Experiment.workspace_id == workspace_id))


def handled(event_id: str) -> int:
    with transaction("experiment") as session:
        return session.scalar(select(func.count()).select_from(HandledEvent)
                              .where(HandledEvent.event_id == event_id))


def auth_events() -> list[events.Event]:
    with transaction("auth") as session:
        return [row.as_event() for row in session.scalars(
            select(AuthOutboxEvent).order_by(AuthOutboxEvent.position))]


def dashboard_events() -> list[events.Event]:
    with transaction("dashboard") as session:
        return [row.as_event() for row in session.scalars(
            select(OutboxEvent).order_by(OutboxEvent.position))]


def experiments_subscription(app) -> events.Subscription:
    return next(s for s in events.subscriptions(app) if s.emitter == "dashboard")


def a_workspace_with_experiments(alice: str, name: str, document: dict, count: int = 2) -> str:
    dashboard.create_workspace(alice, "team", name)
    for _ in range(count):
        experiments.create_experiment(alice, "team", name, document)
    return dashboard.authorize(alice, "team", name, "read").id


def test_an_event_has_the_documented_shape(hub, sample_experiment):
    alice = hub.claim("alice")
    dashboard.create_org(alice, "team")
    workspace_id = a_workspace_with_experiments(alice, "lab", sample_experiment, count=0)
    dashboard.delete_workspace(alice, "team", "lab")

    event, = dashboard_events()
    dumped = event.model_dump(mode="json")
    assert set(dumped) == {"id", "type", "version", "occurred_at", "actor", "subject", "payload"}
    assert (event.type, event.version, event.actor) == ("workspace.deleted", 1, verify(alice).sub)
    assert event.subject == events.Subject(kind="workspace", id=workspace_id)
    assert event.payload == {"org_id": dashboard.get_org(alice, "team").id, "name": "lab"}
    assert event.occurred_at.tzinfo is not None
    assert events.Event.model_validate(dumped) == event


def test_deleting_a_workspace_is_applied_once_and_a_redelivery_changes_nothing(
        app, hub, sample_experiment, monkeypatch):
    alice = hub.claim("alice")
    dashboard.create_org(alice, "team")
    lab = a_workspace_with_experiments(alice, "lab", sample_experiment)
    kept = experiments.create_experiment(alice, "alice", "Personal", sample_experiment)

    dashboard.delete_workspace(alice, "team", "lab")
    event, = dashboard_events()
    assert experiments_in(lab) == 0 and handled(event.id) == 1
    assert dashboard.pending_events("experiment", list(experiments.WORKSPACE_EVENTS)) == []

    # The acknowledgement was lost: the event comes again, and the handler does not run.
    with transaction("dashboard") as session:
        session.execute(delete(OutboxAck))
    calls = []
    monkeypatch.setattr(experiment_store, "delete_experiments",
                        lambda *args: calls.append(args))
    assert events.deliver(experiments_subscription(app)) == 0
    assert calls == [] and handled(event.id) == 1
    assert dashboard.pending_events("experiment", list(experiments.WORKSPACE_EVENTS)) == []
    assert experiments.get_experiment(alice, kept.id).id == kept.id


def test_an_event_whose_handler_fails_is_retried_and_applied_once(
        app, hub, sample_experiment, monkeypatch, caplog):
    alice = hub.claim("alice")
    dashboard.create_org(alice, "team")
    lab = a_workspace_with_experiments(alice, "lab", sample_experiment)
    ops = a_workspace_with_experiments(alice, "ops", sample_experiment, count=1)
    real = experiment_store.delete_experiments

    def broken(*args):
        raise RuntimeError("the experiment database is away")

    monkeypatch.setattr(experiment_store, "delete_experiments", broken)
    with caplog.at_level(logging.WARNING, logger="chaoshub.core.events"):
        # Dashboard's side is done whatever happens to the experiment service.
        dashboard.delete_workspace(alice, "team", "lab")
        dashboard.delete_org(alice, "team")
    assert "(workspace.deleted from dashboard) not handled by experiment yet" in caplog.text
    assert experiments_in(lab) == 2 and experiments_in(ops) == 1

    monkeypatch.setattr(experiment_store, "delete_experiments", real)
    subscription = experiments_subscription(app)
    assert events.deliver(subscription) == 2  # in order: the workspace, then the org
    assert experiments_in(lab) == experiments_in(ops) == 0
    assert events.deliver(subscription) == 0
    assert [handled(e.id) for e in dashboard_events()] == [1, 1]


def personal_orgs(name: str) -> int:
    with transaction("dashboard") as session:
        return session.scalar(select(func.count()).select_from(Org)
                              .where(Org.name_key == name, Org.personal))


def test_an_account_created_makes_its_personal_org_once_and_a_redelivery_changes_nothing(
        app, hub):
    alice = hub.claim("alice")
    created, = [e for e in auth_events() if e.type == "account.created"]
    assert (created.subject.id, created.actor) == (verify(alice).sub, verify(alice).sub)
    assert created.payload == {"username": "alice", "display_name": "alice"}
    # In one process the org is there as soon as the sign-up returns.
    org = dashboard.get_org(alice, "alice")
    assert org.personal and [w.name for w in org.workspaces] == ["Personal", "Public"]

    with transaction("auth") as session:
        session.execute(delete(AuthOutboxAck))
    dashboards = next(s for s in events.subscriptions(app) if s.emitter == "auth")
    assert events.deliver(dashboards) == 0
    assert personal_orgs("alice") == 1
    assert dashboard.get_org(alice, "alice").id == org.id


def test_the_home_page_fetches_a_personal_org_not_there_yet_or_says_it_is_coming(
        app, client, monkeypatch):
    # Patched where auth's events are handled (dashboard/public/domain_events.py).
    real = domain_events.create_personal_org

    def away(*args):
        raise RuntimeError("the dashboard database is away")

    monkeypatch.setattr(domain_events, "create_personal_org", away)
    sign_up(client, "dora")
    sign_in(client, "dora")
    with app.app_context():
        assert personal_orgs("dora") == 0
        home = client.get("/")
        assert home.status_code == 200 and b'data-testid="setting-up"' in home.data

        monkeypatch.setattr(domain_events, "create_personal_org", real)
        home = client.get("/")  # the miss fetches auth's waiting event
        assert b'data-testid="setting-up"' not in home.data and b"Personal" in home.data
        assert personal_orgs("dora") == 1


def test_only_the_subscriber_reads_and_acknowledges_an_outbox(app):
    assert INTERFACES["auth"].functions["pending_events"].callers == {"dashboard"}
    assert INTERFACES["auth"].functions["ack_events"].callers == {"dashboard"}
    assert INTERFACES["dashboard"].functions["pending_events"].callers == {"experiment"}
    assert INTERFACES["dashboard"].functions["ack_events"].callers == {"experiment"}
    # No public function deletes a workspace's experiments: only dashboard's event does.
    assert "delete_workspace_contents" not in INTERFACES["experiment"].functions
    with app.app_context():
        with pytest.raises(Forbidden):
            dashboard.pending_events("auth", ["workspace.deleted"])
        with pytest.raises(Forbidden):
            dashboard.ack_events("auth", [])


def test_the_poller_retries_with_backoff_until_the_event_is_applied(
        settings, sample_experiment, monkeypatch):
    assert [events.backoff(n, 2) for n in (1, 2, 3, 5, 9)] == [4, 8, 16, 60, 60]
    app = create_app({**settings, "EVENTS_POLL_SECONDS": 0.05})
    real, failures = experiment_store.delete_experiments, []

    def flaky(*args):
        if len(failures) < 3:
            failures.append(time.monotonic())
            raise RuntimeError("not yet")
        real(*args)

    monkeypatch.setattr(experiment_store, "delete_experiments", flaky)
    try:
        with app.app_context():
            alice = Accounts().claim("alice")
            dashboard.create_org(alice, "team")
            lab = a_workspace_with_experiments(alice, "lab", sample_experiment)
            dashboard.delete_workspace(alice, "team", "lab")  # fails once right away
            events.start_polling(app)
            deadline = time.monotonic() + 10
            while experiments_in(lab) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert experiments_in(lab) == 0
            event, = dashboard_events()
            assert handled(event.id) == 1
        # Right after the commit, at the poller's start, then after a backoff.
        assert len(failures) == 3 and failures[2] - failures[1] >= events.backoff(1, 0.05)
    finally:
        events.stop_polling(app)
        db.dispose(app)


# Split: the receiving service is down while the change is made ------------------------------


class SplitHub:
    """Three processes, one service each, that a test stops and starts again."""

    def __init__(self, root):
        self.root = root
        self.ports = {service: free_port() for service in SERVICES}
        self.urls = {s: f"http://127.0.0.1:{port}" for s, port in self.ports.items()}
        self.processes = {}
        self.launches = 0

    def start(self, service: str) -> None:
        env = clean_env(
            CHAOSHUB_INSTANCE_PATH=str(self.root / service), PROXY_HOPS="0",
            PASSWORD_HASHING="fast", EVENTS_POLL_SECONDS="0.3",
            **{f"{s.upper()}_SERVICE_URL": url for s, url in self.urls.items() if s != service})
        self.launches += 1
        log = self.root / f"{service}-{self.launches}.log"
        process = start([str(BIN / "chaoshub"), "run", "--service", service, "--port",
                         str(self.ports[service])], self.root, env, log)
        self.processes[service] = process
        wait_until_up(f"{self.urls[service]}/status/live", process, log)

    def stop(self, service: str) -> None:
        stop(self.processes.pop(service))

    def query(self, service: str, sql: str, *args) -> list[tuple]:
        """Rows of a service's own SQLite database, read beside its process."""
        with sqlite3.connect(self.root / service / f"{service}.db") as connection:
            return connection.execute(sql, args).fetchall()


@pytest.fixture(scope="module")
def split_hub(tmp_path_factory):
    hub = SplitHub(tmp_path_factory.mktemp("events-split"))
    try:
        for service in SERVICES:
            hub.start(service)
        yield hub
    finally:
        stop(*(hub.processes.pop(service) for service in list(hub.processes)))


def eventually(check, timeout: float = 20.0):
    """The first truthy answer of `check`, polled until `timeout`; the last answer otherwise."""
    deadline = time.monotonic() + timeout
    while not (answer := check()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return answer


@pytest.mark.split
def test_a_workspace_deleted_while_experiment_is_down_loses_its_experiments_once_it_is_back(
        split_hub):
    urls = split_hub.urls
    alice = signed_in(urls, "alice")
    alice.headers["X-CSRF-Token"] = alice.cookies["chaoshub_csrf"]
    api = f"{urls['dashboard']}/api/v1/orgs"
    assert alice.post(api, json={"name": "acme"}).status_code == 201
    assert alice.post(f"{api}/acme/workspaces", json={"name": "lab"}).status_code == 201
    document = (FIXTURES / "experiment.json").read_text()
    created = [alice.post(f"{urls['experiment']}/api/v1/orgs/{org}/workspaces/{ws}/experiments",
                          data=document, headers={"Content-Type": "application/json"})
               for org, ws in (("acme", "lab"), ("acme", "lab"), ("alice", "Personal"))]
    assert [c.status_code for c in created] == [201, 201, 201]
    lab = created[0].json()["workspace_id"]

    split_hub.stop("experiment")
    assert alice.delete(f"{api}/acme/workspaces/lab").status_code == 204
    (event_id,), = split_hub.query("dashboard", "SELECT id FROM dashboard_outbox_events "
                                   "WHERE type = 'workspace.deleted'")
    count = "SELECT count(*) FROM experiments WHERE workspace_id = ?"
    assert split_hub.query("experiment", count, lab) == [(2,)]

    split_hub.start("experiment")
    assert eventually(lambda: split_hub.query("experiment", count, lab) == [(0,)])
    handled = "SELECT count(*) FROM experiment_handled_events WHERE event_id = ?"
    acked = "SELECT subscriber FROM dashboard_outbox_acks WHERE event_id = ?"
    assert eventually(lambda: split_hub.query("dashboard", acked, event_id)) == [("experiment",)]
    assert split_hub.query("experiment", handled, event_id) == [(1,)]
    kept = alice.get(f"{urls['experiment']}/api/v1/experiments/{created[2].json()['id']}")
    assert kept.status_code == 200


@pytest.mark.split
def test_a_sign_in_while_dashboard_is_down_reaches_the_audit_log_once_it_is_back(split_hub):
    urls = split_hub.urls
    bob = signed_in(urls, "bob")
    audit = f"{urls['dashboard']}/api/v1/orgs/bob/audit?event=auth."

    def sign_ins() -> int:
        answer = bob.get(audit)
        return len(answer.json()["entries"]) if answer.status_code == 200 else 0

    assert eventually(lambda: sign_ins() == 1)
    split_hub.stop("dashboard")
    again = requests.Session()
    again.get(f"{urls['auth']}/signin")
    assert form(again, f"{urls['auth']}/signin", username="bob",
                password=PASSWORD).status_code == 303
    waiting = ("SELECT count(*) FROM auth_outbox_events WHERE type = 'account.sign_in' AND id "
               "NOT IN (SELECT event_id FROM auth_outbox_acks)")
    assert split_hub.query("auth", waiting) == [(1,)]

    split_hub.start("dashboard")
    assert eventually(lambda: sign_ins() == 2)
    assert eventually(lambda: split_hub.query("auth", waiting) == [(0,)])
    time.sleep(1)  # a few more polls: nothing comes twice
    assert sign_ins() == 2
    bobs = split_hub.query("auth", "SELECT id FROM auth_outbox_events WHERE actor = "
                           "(SELECT id FROM accounts WHERE username_key = 'bob')")
    handled = split_hub.query("dashboard", "SELECT event_id FROM dashboard_handled_events")
    assert len(bobs) == 3 and set(bobs) <= set(handled)  # signed up, then in twice


@pytest.mark.split
def test_a_sign_up_while_dashboard_is_down_gets_its_personal_org_once_it_is_back(split_hub):
    urls = split_hub.urls
    split_hub.stop("dashboard")
    carol = browser(urls)
    assert form(carol, f"{urls['auth']}/signup", username="carol",
                password=PASSWORD).status_code == 303
    assert form(carol, f"{urls['auth']}/signin", username="carol",
                password=PASSWORD).status_code == 303
    waiting = ("SELECT count(*) FROM auth_outbox_events WHERE type = 'account.created' AND id "
               "NOT IN (SELECT event_id FROM auth_outbox_acks)")
    assert split_hub.query("auth", waiting) == [(1,)]

    split_hub.start("dashboard")
    orgs = "SELECT count(*) FROM orgs WHERE name_key = 'carol' AND personal"
    assert eventually(lambda: split_hub.query("dashboard", orgs) == [(1,)])
    assert eventually(lambda: split_hub.query("auth", waiting) == [(0,)])
    home = carol.get(f"{urls['dashboard']}/")
    assert home.status_code == 200 and b'data-testid="setting-up"' not in home.content
    time.sleep(1)  # a few more polls: nothing comes twice
    assert split_hub.query("dashboard", orgs) == [(1,)]
    assert split_hub.query("dashboard", "SELECT count(*) FROM workspaces w JOIN orgs o ON "
                           "o.id = w.org_id WHERE o.name_key = 'carol'") == [(2,)]
