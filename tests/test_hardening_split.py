"""Split mode's borders: findings 6, 13 and 14 of the security review (issue 11).

6: /internal/rpc serves only the hub's services, each proven by an assertion signed with its own
key, and each function only the services it names; 13: the router streams bodies, refuses one
over the cap before holding it, and forwards chunked ones; 14: a process hosting only some
services does not start without being told how many proxies stand in front of it.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from werkzeug.serving import make_server

import chaoshub.auth.service  # noqa: F401  (each registers its interface in INTERFACES)
import chaoshub.dashboard.service  # noqa: F401
import chaoshub.experiment.service  # noqa: F401
from chaoshub.core import service_identity
from chaoshub.core.claims import KeyRing, load_private_keys
from chaoshub.core.config import SERVICES, ConfigError, load_settings
from chaoshub.core.service_identity import HEADER, TYPE, request_digest
from chaoshub.core.transport import INTERFACES, RPC_PREFIX
from chaoshub.router import Router, RouterRequestHandler
from tests.conftest import FIXTURES, PASSWORD
from tests.helpers import BIN, clean_env, free_port, signed_in_session, start, stop, wait_until_up

split = pytest.mark.split
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """The three services behind the router: (router URL, service URLs, root folder, router)."""
    root = tmp_path_factory.mktemp("hardening-split")
    ports = {name: free_port() for name in (*SERVICES, "router")}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    service_urls = {f"{s.upper()}_SERVICE_URL": urls[s] for s in SERVICES}
    started = []
    try:
        for service in SERVICES:
            env = clean_env(CHAOSHUB_INSTANCE_PATH=str(root / service), PROXY_HOPS="1",
                            PASSWORD_HASHING="fast", **service_urls)
            command = ["run", "--service", service, "--port", str(ports[service])]
            started.append((service, start([str(BIN / "chaoshub"), *command], root, env,
                                           root / f"{service}.log")))
        router = start([str(BIN / "chaoshub"), "route", "--port", str(ports["router"])], root,
                       clean_env(**service_urls), root / "router.log")
        started.append(("router", router))
        for name, process in started:
            path = "/signin" if name == "router" else "/status/live"
            wait_until_up(f"{urls[name]}{path}", process, root / f"{name}.log")
        yield urls["router"], urls, root, router
    finally:
        stop(*(process for _, process in started))


def service_key(root, service: str) -> Ed25519PrivateKey:
    """The key a service process generated in its instance folder."""
    return load_private_keys((root / service / "service-key.pem").read_text())[0]


def rpc(urls, service: str, name: str, body: dict, claim: str = "", caller: str | None = None,
        key: Ed25519PrivateKey | None = None, root=None, **changes) -> requests.Response:
    """Call a function at /internal/rpc as `caller` would (signing with `key`, else its own)."""
    data = json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if claim:
        headers["Authorization"] = f"Bearer {claim}"
    if caller:
        signer = KeyRing.from_private_keys([key or service_key(root, caller)])
        now = int(time.time())
        digest = request_digest(f"{service}/{name}", headers.get("Authorization", ""), data)
        payload = {"iss": caller, "sub": caller, "aud": service, "iat": now, "exp": now + 60,
                   "jti": uuid.uuid4().hex, "req": digest, **changes}
        headers[HEADER] = jwt.encode(payload, signer.private_keys[0], algorithm="EdDSA",
                                     headers={"kid": signer.signing_kid, "typ": TYPE})
    return requests.post(f"{urls[service]}{RPC_PREFIX}/{service}/{name}", data=data,
                         headers=headers, timeout=10)


def claim_of(urls, root, session: requests.Session) -> str:
    """The signed claim auth issues for a browser's session, asked for as dashboard does."""
    answer = rpc(urls, "auth", "resolve_credentials",
                 {"session_token": session.cookies["chaoshub_session"]},
                 caller="dashboard", root=root)
    assert answer.status_code == 200, answer.text
    return answer.json()["result"]


def audit_entries(hub_url: str, session: requests.Session, org: str) -> list[dict]:
    answer = session.get(f"{hub_url}/api/v1/orgs/{org}/audit")
    assert answer.status_code == 200, answer.text
    return answer.json()["entries"]


def memory_kib(pid: int, field: str) -> int:
    """A process's memory figure from /proc (VmRSS, VmHWM...), in KiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(rf"^{field}:\s+(\d+) kB", status, re.MULTILINE).group(1))


# 6. /internal/rpc authenticates its callers -----------------------------------------------------


@split
def test_finding_6_every_internal_function_refuses_a_caller_without_a_service_assertion(hub):
    hub_url, urls, root, _ = hub
    claim = claim_of(urls, root, signed_in_session(hub_url, "ivy"))
    intruder = Ed25519PrivateKey.generate()
    checked = set()
    for service, interface in INTERFACES.items():
        for name in interface.functions:
            # A real user's claim is no credential here, nor an assertion the service's key did
            # not sign, nor an assertion made for another call.
            for caller, key, changes in ((None, None, {}), ("dashboard", intruder, {}),
                                         ("experiment", intruder, {}),
                                         ("dashboard", None, {"req": "0" * 64})):
                if caller == service:
                    continue
                answer = rpc(urls, service, name, {}, claim, caller, key, root, **changes)
                assert answer.status_code == 401, (service, name, caller, answer.text)
                assert answer.json()["error"] == "unauthorized"
                checked.add((service, name))
    assert len(checked) == sum(len(i.functions) for i in INTERFACES.values()) > 60


@split
def test_finding_6_an_assertion_must_be_fresh_and_meant_for_the_callee(hub):
    _, urls, root, _ = hub
    call = ("auth", "resolve_credentials", {})
    assert rpc(urls, *call, caller="dashboard", root=root).status_code == 200
    now = int(time.time())
    for changes in ({"aud": "dashboard"}, {"sub": "experiment"}, {"iat": now - 600,
                    "exp": now - 540}, {"exp": now + 3600}, {"iss": "router"}):
        answer = rpc(urls, *call, caller="dashboard", root=root, **changes)
        assert answer.status_code == 401, (changes, answer.text)
    # Experiment's key does not sign for dashboard.
    forged = rpc(urls, *call, caller="dashboard", key=service_key(root, "experiment"))
    assert forged.status_code == 401
    # One assertion, one call: the same bytes sent again are refused.
    first = rpc(urls, *call, caller="dashboard", root=root, jti="replayed-once")
    again = rpc(urls, *call, caller="dashboard", root=root, jti="replayed-once")
    assert first.status_code == 200 and again.status_code == 401, again.text
    assert "used already" in again.json()["message"]


@split
def test_finding_6_a_service_calls_only_what_its_role_allows(hub):
    hub_url, urls, root, _ = hub
    claim = claim_of(urls, root, signed_in_session(hub_url, "otto"))
    refused = [
        ("experiment", "auth", "sign_in", {"username": "otto", "password": PASSWORD}),
        ("experiment", "auth", "sign_up", {"username": "eve", "password": PASSWORD}),
        ("experiment", "auth", "create_token", {"name": "t", "scopes": ["full"]}),
        ("experiment", "auth", "pending_events", {"subscriber": "dashboard",
                                                  "types": ["account.sign_in"]}),
        ("auth", "dashboard", "record_activities", {"entries": []}),
        ("auth", "dashboard", "ack_events", {"subscriber": "experiment", "ids": []}),
        ("dashboard", "experiment", "create_experiment", {}),
    ]
    for caller, service, name, body in refused:
        answer = rpc(urls, service, name, body, claim, caller, root=root)
        assert answer.status_code == 403, (caller, service, name, answer.text)
        assert answer.json()["error"] == "forbidden"
    # What each service's own work needs still goes through.
    allowed = rpc(urls, "auth", "get_account", {}, claim, "dashboard", root=root)
    assert allowed.status_code == 200 and allowed.json()["result"]["username"] == "otto"
    granted = rpc(urls, "dashboard", "grant", {"org": "otto", "workspace": "Personal"}, claim,
                  "experiment", root=root)
    assert granted.status_code == 200 and granted.json()["result"]["allowed"]


@split
def test_finding_6_no_user_claim_writes_an_audit_feed_or_account_entry(hub):
    hub_url, urls, root, _ = hub
    mary = signed_in_session(hub_url, "mary")
    claim = claim_of(urls, root, mary)
    org = mary.get(f"{hub_url}/api/v1/orgs/mary").json()
    # Her sign-in reaches the log as an event, within a poll or so: wait for it first.
    deadline = time.monotonic() + 15
    while not (before := audit_entries(hub_url, mary, "mary")) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert [e["event"] for e in before] == ["auth.sign_in"]
    forged = [
        ("record_activities", {"entries": [{
            "id": str(uuid.uuid4()), "org_id": org["id"], "actor_id": str(uuid.uuid4()),
            "kind": "member.removed", "summary": "mary removed mallory",
            "audited": {"member": "mallory"}, "created_at": "2026-01-01T00:00:00Z"}]}),
    ]
    for name, body in forged:
        answer = rpc(urls, "dashboard", name, body, claim)
        assert answer.status_code == 401, (name, answer.text)
        # Experiment's own word writes only its own kinds of event into an audit log.
        answer = rpc(urls, "dashboard", name, body, caller="experiment", root=root)
        assert answer.status_code == 200 and answer.json()["result"] == 0, answer.text
    assert audit_entries(hub_url, mary, "mary") == before
    feed = mary.get(f"{hub_url}/api/v1/orgs/mary/activity").json()["entries"]
    assert not [e for e in feed if e["kind"] == "member.removed"]


@split
def test_finding_6_each_service_still_makes_the_calls_its_work_needs(hub):
    hub_url, _, root, _ = hub
    refused_before = internal_refusals(root)
    quinn, rex, sam = (signed_in_session(hub_url, name) for name in ("quinn", "rex", "sam"))
    api = f"{hub_url}/api/v1"
    assert quinn.post(f"{api}/orgs", json={"name": "qcorp"}).status_code == 201
    assert quinn.post(f"{api}/orgs/qcorp/workspaces", json={"name": "lab"}).status_code == 201
    added = quinn.post(f"{api}/orgs/qcorp/members", json={"username": "rex", "role": "member"})
    assert added.status_code == 201, added.text  # dashboard asks auth.find_account
    document = json.loads((FIXTURES / "experiment.json").read_text())
    created = quinn.post(f"{api}/orgs/qcorp/workspaces/lab/experiments", json=document)
    assert created.status_code == 201, created.text  # experiment asks dashboard.authorize
    experiment_id = created.json()["id"]
    # Experiment hands its feed entries to dashboard.record_activities after the answer.
    deadline = time.monotonic() + 10
    while "experiment.created" not in (kinds := {
            e["kind"] for e in quinn.get(f"{api}/orgs/qcorp/activity").json()["entries"]}):
        assert time.monotonic() < deadline, kinds
        time.sleep(0.1)
    by_author = rex.get(f"{api}/orgs/qcorp/workspaces/lab/experiments?author=quinn")
    assert len(by_author.json()["experiments"]) == 1  # experiment asks auth.find_account
    page = rex.get(f"{hub_url}/qcorp/lab")
    assert page.status_code == 200 and document["title"] in page.text  # asks dashboard.grant
    assert quinn.get(f"{hub_url}/qcorp/lab/experiment/{experiment_id}").status_code == 200
    moved = quinn.post(f"{api}/experiments/{experiment_id}/move",
                       json={"org": "quinn", "workspace": "Personal"})
    assert moved.status_code == 200, moved.text  # experiment asks dashboard's workspaces
    token = quinn.post(f"{api}/tokens", json={"name": "ci", "scopes": ["experiments:read"],
                                              "workspace": "qcorp/lab"})
    assert token.status_code == 201, token.text  # auth asks dashboard.authorize
    link = quinn.post(f"{api}/orgs/qcorp/invitations", json={"role": "viewer"}).json()
    accepted = sam.post(f"{api}/invitations/{link['token']}/accept")
    assert accepted.status_code == 200, accepted.text  # dashboard asks auth.get_account
    assert quinn.delete(f"{api}/orgs/qcorp/workspaces/lab").status_code == 204
    assert internal_refusals(root) == refused_before


def internal_refusals(root) -> int:
    """How many calls between services were refused (401 or 403) so far, by the services' logs."""
    logs = "".join((root / f"{service}.log").read_text() for service in SERVICES)
    return len(re.findall(r"POST /internal/rpc/\S+ HTTP/1.1\S*\" 40[13]", logs))


@split
def test_finding_6_sign_in_with_a_forged_client_ip_is_refused_from_outside(hub):
    hub_url, urls, root, _ = hub
    signed_in_session(hub_url, "nina")
    for n in range(25):
        guess = rpc(urls, "auth", "sign_in", {"username": "nina", "password": f"guess {n}",
                                              "client_ip": f"198.51.100.{n}"})
        assert guess.status_code == 401, guess.text
        assert guess.json()["message"] == "only the hub's services may call here"
    # Not even the right password opens a session there, nor for a service that never signs in.
    right = {"username": "nina", "password": PASSWORD, "client_ip": "198.51.100.99"}
    assert rpc(urls, "auth", "sign_in", right).status_code == 401
    assert rpc(urls, "auth", "sign_in", right, caller="dashboard", root=root).status_code == 403
    # Minting claims is the services' business too.
    assert rpc(urls, "auth", "resolve_credentials", {"client_ip": "x"}).status_code == 401


@split
def test_finding_6_keys_are_published_inside_only(hub):
    hub_url, urls, root, _ = hub
    for service in SERVICES:
        keys = requests.get(f"{urls[service]}/internal/jwks.json").json()["keys"]
        assert all("d" not in key for key in keys)  # public halves only
        ring = KeyRing.from_private_keys([service_key(root, service)])
        assert [k["kid"] for k in keys] == [ring.signing_kid]
    assert requests.get(f"{hub_url}/internal/jwks.json").status_code == 404


# 13. The router streams bodies -----------------------------------------------------------------


def post_raw(hub_url: str, path: str, headers: dict[str, str], body_chunks) -> int:
    """POST through a raw socket, sending the body from a thread while the answer is awaited:
    a server may answer before it has read the body. Returns the status code."""
    address = urlsplit(hub_url)
    sock = socket.create_connection((address.hostname, address.port), timeout=60)
    head = f"POST {path} HTTP/1.1\r\nHost: {address.netloc}\r\n" + "".join(
        f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n"

    def send() -> None:
        try:
            sock.sendall(head.encode())
            for chunk in body_chunks:
                sock.sendall(chunk)
        except OSError:
            pass  # the server answered and closed without reading it all: allowed

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    try:
        status_line = sock.makefile("rb").readline()
        sender.join(timeout=60)
    finally:
        sock.close()
    return int(status_line.split()[1])


@split
def test_finding_13_a_large_body_is_refused_without_the_router_holding_it(hub):
    hub_url, _, _, router = hub
    size = 256 * MiB
    peak_before = memory_kib(router.pid, "VmHWM")
    piece = b"x" * MiB
    status = post_raw(hub_url, "/api/v1/orgs/a/workspaces/b/experiments",
                      {"Content-Type": "application/json", "Content-Length": str(size)},
                      (piece for _ in range(size // MiB)))
    assert status == 413
    # Not even for a moment did the router hold the body (a generous bound: 1/4 of it).
    grown = memory_kib(router.pid, "VmHWM") - peak_before
    assert grown * 1024 < size // 4, f"the router's peak memory grew by {grown} KiB"
    assert requests.get(f"{hub_url}/signin").status_code == 200


@split
def test_finding_13_a_chunked_body_is_forwarded(hub):
    hub_url, _, _, _ = hub
    pia = signed_in_session(hub_url, "pia")
    document = (FIXTURES / "experiment.json").read_bytes()
    # A generator is sent chunked, with no Content-Length.
    created = pia.post(f"{hub_url}/api/v1/orgs/pia/workspaces/personal/experiments",
                       data=(document[i:i + 100] for i in range(0, len(document), 100)),
                       headers={"Content-Type": "application/json"})
    assert created.status_code == 201, created.text
    assert created.request.headers.get("Transfer-Encoding") == "chunked"
    read = pia.get(f"{hub_url}{created.headers['Location']}").json()["experiment"]
    assert read == json.loads(document)
    # With a chunk extension and a trailer field, as HTTP/1.1 allows.
    cookies = "; ".join(f"{name}={value}" for name, value in pia.cookies.items())
    framed = b"".join(b"%x;n=%d\r\n%s\r\n" % (len(document[i:i + 500]), i, document[i:i + 500])
                      for i in range(0, len(document), 500))
    status = post_raw(hub_url, "/api/v1/orgs/pia/workspaces/personal/experiments", {
        "Transfer-Encoding": "chunked", "Content-Type": "application/json", "Cookie": cookies,
        "X-CSRF-Token": pia.cookies["chaoshub_csrf"]}, [framed, b"0\r\nX-Sum: 1\r\n\r\n"])
    assert status in (200, 201)  # the same document again: the same experiment, or a new one


def test_finding_13_the_router_reads_chunked_bodies_as_http_defines_them():
    received = []

    def service(environ, start_response):
        received.append(environ["wsgi.input"].read())
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"read"]

    upstream = make_server("127.0.0.1", 0, service, threaded=True)
    router = make_server("127.0.0.1", 0, Router(
        {name: f"http://127.0.0.1:{upstream.port}" for name in SERVICES}, max_body=MiB),
        threaded=True, request_handler=RouterRequestHandler)
    for server in (upstream, router):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{router.port}"
    chunked = {"Transfer-Encoding": "chunked"}
    try:
        # Chunk extensions and trailer fields are HTTP/1.1: ignored and dropped, not a 500.
        assert post_raw(url, "/api/v1/x", chunked, [
            b"5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nX-Checksum: 1\r\n\r\n"]) == 200
        assert received.pop() == b"hello world"
        assert post_raw(url, "/api/v1/x", chunked, [b"5\r\nhello\r\n0\r\n\r\n"]) == 200
        assert received.pop() == b"hello"
        for malformed in (b"hello world\r\n\r\n", b"5\r\nhello world\r\n0\r\n\r\n",
                          b"+5\r\nhello\r\n0\r\n\r\n", b"1_0\r\n" + b"x" * 16 + b"\r\n0\r\n\r\n"):
            assert post_raw(url, "/api/v1/x", chunked, [malformed]) == 400, malformed
        assert post_raw(url, "/api/v1/x", {"Transfer-Encoding": "gzip, chunked"}, []) == 501
        # Over the cap: refused once passed, the service seeing no more than the cap.
        piece = b"%x\r\n%s\r\n" % (64 * 1024, b"x" * 64 * 1024)
        assert post_raw(url, "/api/v1/x", chunked, [piece] * 64 + [b"0\r\n\r\n"]) == 413
    finally:
        router.shutdown()
        upstream.shutdown()
    assert not received


# 14. A split process knows which proxies to believe --------------------------------------------


def test_finding_14_a_split_process_needs_proxy_hops(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PROXY_HOPS", raising=False)
    urls = {f"{s.upper()}_SERVICE_URL": f"http://{s}:8080" for s in SERVICES}
    with pytest.raises(ConfigError, match="PROXY_HOPS"):
        load_settings({"CHAOSHUB_SERVICES": "dashboard", **urls})
    assert load_settings({"CHAOSHUB_SERVICES": "dashboard", "PROXY_HOPS": "0",
                          **urls})["PROXY_HOPS"] == 0
    assert load_settings({"CHAOSHUB_SERVICES": "dashboard", "PROXY_HOPS": "1",
                          **urls})["PROXY_HOPS"] == 1
    # One process hosting everything is reached directly unless told otherwise.
    assert load_settings({})["PROXY_HOPS"] == 0


def test_finding_14_production_split_needs_a_service_key(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = {"CHAOSHUB_ENV": "production", "SECRET_KEY": "s", "PUBLIC_URL": "https://h",
                "CHAOSHUB_SERVICES": "dashboard", "PROXY_HOPS": "1",
                **{f"{s.upper()}_SERVICE_URL": f"http://{s}:8080" for s in SERVICES}}
    with pytest.raises(ConfigError, match="CHAOSHUB_SERVICE_KEY"):
        load_settings(settings)
    load_settings({**settings, "CHAOSHUB_SERVICE_KEY_FILE": "/run/key.pem"})


@split
def test_finding_14_a_split_service_refuses_to_start_without_proxy_hops(tmp_path):
    env = clean_env(CHAOSHUB_INSTANCE_PATH=str(tmp_path / "instance"),
                    **{f"{s.upper()}_SERVICE_URL": f"http://127.0.0.1:{free_port()}"
                       for s in SERVICES})
    env.pop("PROXY_HOPS", None)
    done = subprocess.run([str(BIN / "chaoshub"), "run", "--service", "dashboard", "--port",
                           str(free_port())], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=30)
    assert done.returncode != 0
    assert "PROXY_HOPS" in done.stderr


def test_finding_6_callers_name_exactly_the_services_whose_code_calls_a_function():
    package = Path(chaoshub.auth.service.__file__).parents[1]
    calling: dict[tuple[str, str], set[str]] = {}
    for path in package.rglob("*.py"):
        text, owner = path.read_text(), path.relative_to(package).parts[0]
        for service, interface in INTERFACES.items():
            aliases = re.findall(rf"from chaoshub\.{service} import service as (\w+)", text)
            if re.search(rf"from chaoshub\.{service} import service$", text, re.MULTILINE):
                aliases.append("service")
            # core/ and the app factory (which hands core auth's resolver) run in whichever
            # service serves the request; the CLI hosts them all.
            owners = set(SERVICES) if owner in ("core", "__init__.py") else {owner} & set(SERVICES)
            for alias in aliases:
                # Called, or handed over (a subscription names the emitter's functions).
                called = set(re.findall(rf"\b{alias}\.(\w+)\b", text))
                for name in called & set(interface.functions):
                    calling.setdefault((service, name), set()).update(owners - {service})
    for service, interface in INTERFACES.items():
        for name, function in interface.functions.items():
            assert function.callers == calling.get((service, name), set()), (service, name)


def test_finding_6_assertions_sign_as_the_hosted_service_a_function_allows():
    ring = KeyRing.from_private_keys([Ed25519PrivateKey.generate()])
    identity = service_identity.ServiceIdentity(ring, ("auth", "dashboard"), {}, 1.0)
    token = identity.sign("dashboard", "experiment", request_digest("experiment/x", "", b"{}"))
    payload = jwt.decode(token, ring.private_keys[0].public_key(), algorithms=["EdDSA"],
                         audience="experiment")
    assert payload["iss"] == payload["sub"] == "dashboard"
    assert payload["exp"] - payload["iat"] <= 60
    assert jwt.get_unverified_header(token)["typ"] == TYPE
    # The digest tells calls apart by function, claim and body alike.
    digests = {request_digest(*call) for call in [("a/f", "", b"{}"), ("a/g", "", b"{}"),
                                                   ("a/f", "Bearer x", b"{}"),
                                                   ("a/f", "", b'{"a": 1}')]}
    assert len(digests) == 4
