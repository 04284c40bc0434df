"""The hub as three processes, one service each: the vertical slice works across them.

Claims cross process borders and are verified with the JWKS auth publishes: no process but
auth holds a signing key, and no secret is shared.
"""

from __future__ import annotations

import json
import re

import pytest
import requests

from tests.conftest import FIXTURES, PASSWORD
from tests.experiment_data import variant
from tests.helpers import BIN, clean_env, free_port, start, stop, wait_until_up

pytestmark = pytest.mark.split

SERVICES = ("auth", "dashboard", "experiment")


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """Start auth, dashboard and experiment as separate processes with their own databases."""
    root = tmp_path_factory.mktemp("split")
    ports = {service: free_port() for service in SERVICES}
    urls = {service: f"http://127.0.0.1:{port}" for service, port in ports.items()}
    processes = []
    try:
        for service in SERVICES:
            # PROXY_HOPS: each process is reached directly, with no proxy in front.
            env = clean_env(
                CHAOSHUB_INSTANCE_PATH=str(root / service), PROXY_HOPS="0",
                **{f"{s.upper()}_SERVICE_URL": url for s, url in urls.items() if s != service},
            )
            log = root / f"{service}.log"
            process = start([str(BIN / "chaoshub"), "run", "--service", service,
                             "--port", str(ports[service])], root, env, log)
            processes.append(process)
            wait_until_up(f"{urls[service]}/status/live", process, log)
        yield urls, root
    finally:
        stop(*processes)


def browser(urls) -> requests.Session:
    session = requests.Session()
    session.get(f"{urls['auth']}/signin")
    return session


def form(session, url, **fields):
    token = session.cookies.get("chaoshub_csrf")
    return session.post(url, data={**fields, "csrf_token": token}, allow_redirects=False)


def signed_in(urls, username) -> requests.Session:
    session = browser(urls)
    assert form(session, f"{urls['auth']}/signup", username=username,
                password=PASSWORD).status_code == 303
    # Sign-up signed the account in. Land on the home page as a browser does: it fetches the
    # new personal org at once.
    assert session.get(f"{urls['dashboard']}/", allow_redirects=False).status_code == 200
    return session


def post_experiment(session, urls, org, workspace, document):
    return session.post(
        f"{urls['experiment']}/api/v1/orgs/{org}/workspaces/{workspace}/experiments",
        json=document, headers={"X-CSRF-Token": session.cookies.get("chaoshub_csrf")},
    )


def test_each_process_hosts_one_service_and_owns_one_database(hub):
    urls, root = hub
    for service in SERVICES:
        files = {p.name for p in (root / service).iterdir()}
        assert f"{service}.db" in files
        assert not {f"{s}.db" for s in SERVICES if s != service} & files
        health = requests.get(f"{urls[service]}/status/health").json()
        expected = {f"{service}_database": "ok", "redis": "absent"}
        if service == "experiment":  # where runs live: their queue, and the workers
            assert health["checks"]["workers"] in ("ok", "none")  # its embedded one, once up
            expected |= {"runs_queue": "ok", "workers": health["checks"]["workers"]}
        assert health["checks"] == expected
    assert (root / "auth" / "signing-key.pem").exists()
    assert not (root / "dashboard" / "signing-key.pem").exists()
    assert not (root / "experiment" / "signing-key.pem").exists()
    # Pages of a service that lives elsewhere are not served here.
    assert requests.get(f"{urls['auth']}/", allow_redirects=False).status_code == 404


def test_sign_up_creates_the_personal_org_across_processes(hub):
    urls, _ = hub
    alice = signed_in(urls, "alice")
    page = alice.get(f"{urls['dashboard']}/", allow_redirects=False)
    assert page.status_code == 200
    assert "Hello, alice" in page.text
    assert re.findall(r'class="ws-name">(\w+)<', page.text) == ["Personal", "Public"]


def test_a_refused_sign_up_leaves_no_account_in_auth(hub):
    urls, _ = hub
    session = browser(urls)
    refused = form(session, f"{urls['auth']}/signup", username="status", password=PASSWORD)
    assert refused.status_code == 422 and "reserved" in refused.text
    signin = form(session, f"{urls['auth']}/signin", username="status", password=PASSWORD)
    assert signin.status_code == 401


def test_experiment_writes_ask_the_dashboard_for_permission(hub):
    urls, _ = hub
    document = json.loads((FIXTURES / "experiment.json").read_text())
    owner = signed_in(urls, "owner1")
    other = signed_in(urls, "other1")

    created = post_experiment(owner, urls, "OWNER1", "personal", document)
    assert created.status_code == 201, created.text
    location = f"{urls['experiment']}{created.headers['Location']}"
    assert owner.get(location).json()["experiment"] == document

    # The dashboard's typed errors come back across the wire as the same answers.
    assert other.get(location).status_code == 404
    assert requests.get(location).status_code == 404
    refused = post_experiment(other, urls, "owner1", "Public", document)
    assert refused.status_code == 403 and refused.json()["error"] == "forbidden"
    hidden = post_experiment(other, urls, "owner1", "Personal", document)
    assert hidden.status_code == 404
    invalid = post_experiment(owner, urls, "owner1", "Personal", {"title": "t"})
    assert invalid.status_code == 422
    assert {p["pointer"] for p in invalid.json()["details"]} == {""}


def test_an_orgs_trends_ask_dashboard_which_workspaces_the_reader_sees(hub):
    urls, _ = hub
    document = json.loads((FIXTURES / "experiment.json").read_text())
    owner = signed_in(urls, "owner3")
    other = signed_in(urls, "other3")
    headers = {"X-CSRF-Token": owner.cookies.get("chaoshub_csrf")}
    for workspace, outcome in (("Personal", "deviated"), ("Public", "passed")):
        made = post_experiment(owner, urls, "owner3", workspace, document)
        assert made.status_code == 201, made.text
        ran = owner.post(f"{urls['experiment']}/api/v1/experiments/{made.json()['id']}"
                         "/executions", json=variant(outcome), headers=headers)
        assert ran.status_code == 201, ran.text
    trends = f"{urls['experiment']}/api/v1/orgs/owner3/trends"
    assert owner.get(trends).json()["totals"] == {"passed": 1, "deviated": 1}
    # The other sees the Public workspace, not its runs (outsiders see none by default).
    assert other.get(trends).json()["totals"] == {}
    page = owner.get(f"{urls['experiment']}/owner3/-/trends")
    assert page.status_code == 200 and 'data-testid="trend-bar"' in page.text


def test_a_forged_claim_is_refused_by_a_remote_service(hub):
    urls, _ = hub
    response = requests.post(
        f"{urls['dashboard']}/internal/rpc/dashboard/list_orgs",
        json={}, headers={"Authorization": "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."},
    )
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"


def test_only_the_public_interface_is_reachable_remotely(hub):
    urls, _ = hub
    # Only auth's own callback may vouch for a provider profile: it is not remotely callable.
    profile = {"provider": "github", "subject": "1", "username_hint": "mallory"}
    for name in ("sign_in_with_identity", "link_identity", "create_token_for"):
        response = requests.post(f"{urls['auth']}/internal/rpc/auth/{name}",
                                 json={"profile": profile})
        assert response.status_code == 404, name


def test_one_request_id_follows_a_request_into_the_service_it_calls(hub):
    urls, root = hub
    dora = signed_in(urls, "dora")
    # Dashboard makes the token by asking auth, another process, which logs it.
    made = dora.post(f"{urls['dashboard']}/api/v1/tokens",
                     json={"name": "traced", "scopes": ["experiments:read"]},
                     headers={"X-CSRF-Token": dora.cookies.get("chaoshub_csrf"),
                              "X-Request-Id": "trace-dora-1"})
    assert made.status_code == 201, made.text
    assert made.headers["X-Request-Id"] == "trace-dora-1"
    created = [line for line in (root / "auth.log").read_text().splitlines()
               if f"token {made.json()['id']} created" in line]
    assert len(created) == 1 and "[trace-dora-1]" in created[0], created


def test_each_process_counts_its_calls_to_the_others_in_its_metrics(hub):
    from prometheus_client.parser import text_string_to_metric_families

    urls, _ = hub
    signed_in(urls, "scraped1")  # dashboard's home page asks auth who is signed in
    calls, timed = {}, {}
    for family in text_string_to_metric_families(requests.get(f"{urls['dashboard']}/metrics",
                                                              timeout=10).text):
        for sample in family.samples:
            key = (sample.labels.get("service"), sample.labels.get("function"))
            if sample.name == "chaoshub_service_calls_total" and sample.labels["outcome"] == "ok":
                calls[key] = sample.value
            if sample.name == "chaoshub_service_call_duration_seconds_count":
                timed[key] = sample.value
    assert calls.get(("auth", "resolve_credentials"), 0) >= 1, calls
    assert timed[("auth", "resolve_credentials")] >= calls[("auth", "resolve_credentials")]
