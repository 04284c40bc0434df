"""Split mode behind one address: three service processes and `chaoshub route` in front of them.

Everything a browser or a script does goes through the router, as it would through the Ingress.
The processes share one Redis, as in a cluster: a session or token ended in auth must be refused by
dashboard and experiment at once, not once a cached answer expires.
"""

from __future__ import annotations

import http.client
import json
import re
import uuid
from urllib.parse import urlsplit

import pytest
import redis
import requests
import schemathesis

from chaoshub import create_app
from chaoshub.core import db
from tests.conftest import FIXTURES, PASSWORD
from tests.helpers import BIN, clean_env, free_port, start, stop, wait_until_up
from tests.otlp_receiver import Receiver

pytestmark = pytest.mark.split

SERVICES = ("auth", "dashboard", "experiment")
# Keys of this module's own: other test runs may share the Redis server.
PREFIX = f"chaoshub-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """The folder of the processes' instances and logs."""
    return tmp_path_factory.mktemp("split-router")


@pytest.fixture(scope="module")
def receiver():
    """Where the services send their traces."""
    running = Receiver()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def hub(root, receiver, redis_url):
    """The three services on one Redis, and the router: (router URL, service URLs, Redis)."""
    cache = redis.Redis.from_url(redis_url)
    ports = {name: free_port() for name in (*SERVICES, "router")}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    service_urls = {f"{s.upper()}_SERVICE_URL": urls[s] for s in SERVICES}
    started = []
    try:
        # Started together, then awaited: the services migrate their databases in parallel.
        for service in SERVICES:
            # PROXY_HOPS: the services read the client's address from the router's headers.
            # Traces to the receiver, sent at once rather than every few seconds.
            env = clean_env(CHAOSHUB_INSTANCE_PATH=str(root / service), REDIS_URL=redis_url,
                            CACHE_PREFIX=PREFIX, PROXY_HOPS="1", **service_urls,
                            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url,
                            OTEL_BSP_SCHEDULE_DELAY="100")
            command = ["run", "--service", service, "--port", str(ports[service])]
            started.append((service, start([str(BIN / "chaoshub"), *command], root, env,
                                           root / f"{service}.log")))
        started.append(("router", start([str(BIN / "chaoshub"), "route", "--port",
                                         str(ports["router"])], root,
                                        clean_env(**service_urls), root / "router.log")))
        for name, process in started:
            path = "/signin" if name == "router" else "/status/live"
            wait_until_up(f"{urls[name]}{path}", process, root / f"{name}.log")
        yield urls["router"], urls, cache
    finally:
        stop(*(process for _, process in started))


def browser(hub_url: str) -> requests.Session:
    """A browser that has loaded the sign-in page, so it holds a CSRF cookie."""
    session = requests.Session()
    assert session.get(f"{hub_url}/signin").status_code == 200
    return session


def form(session: requests.Session, url: str, **fields) -> requests.Response:
    token = session.cookies.get("chaoshub_csrf")
    return session.post(url, data={**fields, "csrf_token": token}, allow_redirects=False)


def signed_in(hub_url: str, username: str) -> requests.Session:
    session = browser(hub_url)
    signup = form(session, f"{hub_url}/signup", username=username, password=PASSWORD)
    assert signup.status_code == 303, signup.text
    # Sign-up signed the account in. Land on the home page as a browser does: it fetches the
    # new personal org at once.
    assert session.get(f"{hub_url}/", allow_redirects=False).status_code == 200
    return session


def post_experiment(session, hub_url, org, workspace, **headers) -> requests.Response:
    document = json.loads((FIXTURES / "experiment.json").read_text())
    csrf = session.cookies.get("chaoshub_csrf")
    return session.post(f"{hub_url}/api/v1/orgs/{org}/workspaces/{workspace}/experiments",
                        json=document, headers={"X-CSRF-Token": csrf or "", **headers})


def test_sign_up_through_the_router_creates_the_personal_org(hub):
    hub_url, urls, _ = hub
    alice = signed_in(hub_url, "alice")
    assert alice.cookies.get("chaoshub_session")
    page = alice.get(f"{hub_url}/", allow_redirects=False)
    assert page.status_code == 200
    assert "Hello, alice" in page.text
    assert re.findall(r'class="ws-name"[^>]*>(\w+)<', page.text) == ["Personal", "Public"]
    # The org's own page lives at the root too, served by dashboard through the router.
    assert alice.get(f"{hub_url}/alice", allow_redirects=False).status_code == 200
    # A workspace's page is experiment's, with dashboard's parts (members, feed) asked for below;
    # a member form that fails comes back from dashboard, on the same page.
    csrf = {"X-CSRF-Token": alice.cookies.get("chaoshub_csrf")}
    assert alice.post(f"{hub_url}/api/v1/orgs", json={"name": "alice-team"},
                      headers=csrf).status_code == 201
    assert alice.post(f"{hub_url}/api/v1/orgs/alice-team/workspaces", json={"name": "alpha"},
                      headers=csrf).status_code == 201
    workspace = alice.get(f"{hub_url}/alice-team/alpha", allow_redirects=False)
    assert workspace.status_code == 200 and 'data-testid="experiment-filters"' in workspace.text
    assert "Members of this workspace" in workspace.text
    assert alice.get(f"{urls['dashboard']}/alice-team/alpha").status_code == 404
    failed = form(alice, f"{hub_url}/alice-team/alpha/-/members", username="nobody-here")
    assert failed.status_code == 404 and "nobody-here" in failed.text
    # Dashboard's pages live at the root, beside auth's: /alice is her org, /signin auth's page.
    # The router keeps no cookies of its own: another browser is nobody.
    visitor = requests.get(f"{hub_url}/", allow_redirects=False)
    assert visitor.status_code in (302, 303) and visitor.headers["Location"].endswith("/signin")


def test_experiment_writes_ask_the_dashboard_for_permission_through_the_router(hub):
    hub_url, _, _ = hub
    owner = signed_in(hub_url, "owner2")
    other = signed_in(hub_url, "other2")

    created = post_experiment(owner, hub_url, "owner2", "personal")
    assert created.status_code == 201, created.text
    assert owner.get(f"{hub_url}{created.headers['Location']}").status_code == 200

    assert other.get(f"{hub_url}{created.headers['Location']}").status_code == 404
    refused = post_experiment(other, hub_url, "owner2", "Public")
    assert refused.status_code == 403 and refused.json()["error"] == "forbidden"
    assert post_experiment(other, hub_url, "owner2", "Personal").status_code == 404


def test_the_router_never_reaches_the_services_internal_calls(hub):
    hub_url, urls, _ = hub
    call = "/internal/rpc/dashboard/list_orgs"
    # The dashboard process does answer there (the caller has no claim)...
    assert requests.post(f"{urls['dashboard']}{call}", json={}).status_code == 401
    # ...but not through the public address, however the path is written.
    refused = requests.post(f"{hub_url}{call}", json={})
    assert refused.status_code == 404 and refused.json()["error"] == "not_found"
    connection = http.client.HTTPConnection(urlsplit(hub_url).netloc, timeout=5)
    connection.request("POST", "/signin/..%2Finternal/rpc/auth/resolve_credentials", body=b"{}",
                       headers={"Content-Type": "application/json"})
    assert connection.getresponse().status == 404
    connection.close()
    assert requests.get(f"{hub_url}/status/health").status_code == 404


def test_an_ended_session_is_refused_at_once_by_every_process(hub):
    hub_url, urls, cache = hub
    bob = signed_in(hub_url, "bob")
    assert bob.get(f"{hub_url}/", allow_redirects=False).status_code == 200
    assert post_experiment(bob, hub_url, "bob", "personal").status_code == 201
    # Resolving the session for dashboard and experiment cached it in the shared Redis.
    cached = set(cache.keys(f"{PREFIX}:auth:session:*"))
    assert cached
    stolen = {name: bob.cookies.get(name) for name in ("chaoshub_session", "chaoshub_csrf")}

    assert form(bob, f"{hub_url}/signout").status_code == 303
    assert len(cached - set(cache.keys(f"{PREFIX}:auth:session:*"))) == 1  # bob's, forgotten
    for base in (hub_url, urls["dashboard"]):
        replay = requests.get(f"{base}/", cookies=stolen, allow_redirects=False)
        assert replay.status_code in (302, 303), base
    for base in (hub_url, urls["experiment"]):
        replay = requests.Session()
        replay.cookies.update(stolen)
        assert post_experiment(replay, base, "bob", "personal").status_code == 401, base


def test_a_revoked_token_is_refused_at_once_by_every_process(hub):
    hub_url, urls, cache = hub
    carol = signed_in(hub_url, "carol")
    # Kept to a workspace: dashboard resolves it, then asks auth (another process) for the token.
    made = carol.post(f"{hub_url}/api/v1/tokens", json={
        "name": "ci", "scopes": ["experiments:read", "experiments:write"],
        "workspace": "carol/personal"},
        headers={"X-CSRF-Token": carol.cookies.get("chaoshub_csrf")})
    assert made.status_code == 201, made.text
    assert made.json()["workspace"] == "carol/Personal"
    bearer = {"Authorization": f"Bearer {made.json()['secret']}"}
    script = requests.Session()
    # Twice: the first use is recorded in auth's database, which drops the cached entry.
    for _ in range(2):
        assert post_experiment(script, hub_url, "carol", "personal", **bearer).status_code == 201
    cached = set(cache.keys(f"{PREFIX}:auth:token:*"))
    assert cached

    revoked = carol.delete(f"{hub_url}{made.headers['Location']}",
                           headers={"X-CSRF-Token": carol.cookies.get("chaoshub_csrf")})
    assert revoked.status_code == 204
    assert cached - set(cache.keys(f"{PREFIX}:auth:token:*"))
    for base in (hub_url, urls["experiment"]):
        assert post_experiment(script, base, "carol", "personal", **bearer).status_code == 401


def operations(spec: dict) -> dict[str, str]:
    """Each operation of an OpenAPI document, as "METHOD path", with its operationId."""
    return {f"{method.upper()} {path}": operation["operationId"]
            for path, methods in spec["paths"].items() for method, operation in methods.items()}


def test_the_public_address_and_every_service_serve_the_whole_api_document(hub, tmp_path):
    hub_url, urls, _ = hub
    one_process = create_app({"CHAOSHUB_INSTANCE_PATH": str(tmp_path), "EVENTS_POLL_SECONDS": 0})
    expected = one_process.test_client().get("/api/v1/openapi.json").get_json()
    db.dispose(one_process)
    assert expected["openapi"].startswith("3.1")
    ids = list(operations(expected).values())
    assert len(ids) == len(set(ids))
    for base in (hub_url, *(urls[service] for service in SERVICES)):
        served = requests.get(f"{base}/api/v1/openapi.json", timeout=10).json()
        assert operations(served) == operations(expected), base
        assert served == expected, base  # the models and their schemas too
    # Every operation parses as OpenAPI, and the page at the public address lists them all.
    assert len([op.ok() for op in schemathesis.openapi.from_dict(expected)
                .get_all_operations()]) == len(ids)
    page = requests.get(f"{hub_url}/api/v1/docs", timeout=10)
    assert page.status_code == 200
    assert [i for i in ids if f'id="{i}"' not in page.text] == []


def test_one_request_is_one_trace_and_one_request_id_across_the_router_and_every_service(
        hub, root, receiver):
    hub_url, _, _ = hub
    tracer = signed_in(hub_url, "tracer")
    # No id from the client: the router makes it, and every service works under it.
    created = post_experiment(tracer, hub_url, "tracer", "Personal")
    assert created.status_code == 201, created.text
    request_id = created.headers["X-Request-Id"]
    spans = receiver.wait_for(lambda spans: {f"chaoshub-{s}" for s in SERVICES} <= {
        s["service"] for s in spans if s["attributes"].get("chaoshub.request_id") == request_id})
    spans = [s for s in spans if s["trace_id"] in {
        t["trace_id"] for t in spans if t["attributes"].get("chaoshub.request_id") == request_id}]
    first = next(s for s in spans if s["service"] == "chaoshub-experiment"
                 and s["parent_id"] == "")
    assert first["name"] == "POST /api/v1/orgs/<org>/workspaces/<workspace>/experiments"
    # One trace: each call's span is the parent of the span that served it.
    assert {s["trace_id"] for s in spans} == {first["trace_id"]}
    by_id = {s["span_id"]: s for s in spans}
    for served in (s for s in spans if s["service"] != "chaoshub-experiment"):
        call = by_id[served["parent_id"]]
        assert call["name"].startswith("call ") and served["name"].startswith("POST /internal")
    # And in the logs: each service's access line for its part of the request names the id.
    for service in SERVICES:
        lines = [line for line in (root / f"{service}.log").read_text().splitlines()
                 if f"[{request_id}]" in line]
        assert any(" POST /" in line for line in lines), (service, lines)
