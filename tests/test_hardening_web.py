"""Findings 2, 8, 9, 10, 14 (valid tokens from a limited address) and 15 of the security review:
redirects, secrets in logs and redirects, the Host header, sign-up limits, claim shapes."""

from __future__ import annotations

import logging
import threading
import time

import jwt
import pytest
import requests
from werkzeug.serving import make_server

from chaoshub import create_app
from chaoshub.auth import secrets as token_secrets
from chaoshub.core import claims, db
from chaoshub.core.config import ConfigError, load_settings
from chaoshub.core.errors import Unauthorized
from chaoshub.core.logs import scrub
from chaoshub.core.web import safe_next
from tests.conftest import PASSWORD, csrf, post_json, sign_in, sign_up, signed_up_client
from tests.experiment_data import make_token

# Finding 2: open redirects ---------------------------------------------------------------------

CONTROL_CHARACTERS = [chr(c) for c in range(0x20)] + ["\x7f"]
OFF_SITE = [
    "//evil.example/x", "///evil.example", "/\\evil.example", "\\\\evil.example",
    "https://evil.example/", "http:/evil.example", "javascript:alert(1)", "evil.example",
    "/%09/evil.example", "/%0a/evil.example", "/%0d/evil.example", "/%2F/evil.example",
    "/%2f%2fevil.example", "/%5Cevil.example", "/%5c%5cevil.example", " /evil.example",
    "%2F%2Fevil.example", "/%00/evil.example",
] + [f"/{c}/evil.example" for c in CONTROL_CHARACTERS] + [
    f"{c}//evil.example" for c in CONTROL_CHARACTERS]


@pytest.mark.parametrize("target", OFF_SITE)
def test_open_redirect_next_never_leaves_the_site(target):
    assert safe_next(target) == "/"


@pytest.mark.parametrize("target", ["/", "/alice/Personal", "/alice/Personal?tag=db&x=%2F#runs",
                                    "/invitations/pending", "/settings/tokens"])
def test_open_redirect_paths_on_this_site_are_kept(target):
    assert safe_next(target) == target


@pytest.mark.parametrize("target", ["/\t/evil.example", "/%09/evil.example", "/\\evil.example",
                                    "/%2F/evil.example", "/\n/evil.example"])
def test_open_redirect_through_the_sign_in_form_lands_at_home(app, target):
    browser = app.test_client()
    assert sign_up(browser, "alice").status_code == 303
    page = browser.get("/signin", query_string={"next": target})
    assert "evil.example" not in page.get_data(as_text=True)
    answer = browser.post("/signin", data={"username": "alice", "password": PASSWORD,
                                           "next": target, "csrf_token": csrf(browser)})
    assert answer.status_code == 303 and answer.headers["Location"] == "/"


# Finding 8: secrets in logs and redirects --------------------------------------------------------


def test_secrets_in_log_lines_are_scrubbed():
    token = token_secrets.new_token()
    line = (f'"GET /invitations/chinv_{"x" * 43}?a=1 HTTP/1.1" 302 Bearer {token} '
            f"/api/v1/me?token={token}&access_token=abc&Password=hunter2 hint chub_ab12 "
            "/auth/callback/corp?code=c0de&state=st4te")
    clean = scrub(line)
    assert "chinv_x" not in clean and token not in clean and "hunter2" not in clean
    assert "c0de" not in clean and "st4te" not in clean
    assert "abc" not in clean and "a=1" in clean and "hint chub_ab12" in clean


def test_secrets_never_reach_the_access_log_or_a_redirect(app, caplog):
    owner = signed_up_client(app, "olga")
    assert post_json(owner, "/api/v1/orgs", {"name": "team"}).status_code == 201
    link = post_json(owner, "/api/v1/orgs/team/invitations", {"role": "member"}).get_json()
    api_token = make_token(owner, ["experiments:read"])
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        with caplog.at_level(logging.INFO):
            opened = requests.get(f"{base}/invitations/{link['token']}", allow_redirects=False,
                                  timeout=5)
            queried = requests.get(f"{base}/api/v1/me?token={api_token}", timeout=5)
            authorized = requests.get(f"{base}/api/v1/me", timeout=5,
                                      headers={"Authorization": f"Bearer {api_token}"})
    finally:
        server.shutdown()
        thread.join()
    assert opened.status_code == 302 and link["token"] not in opened.headers["Location"]
    assert queried.status_code == 401 and authorized.status_code == 200
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "/invitations/chinv_" in logged and "/api/v1/me?token=" in logged  # lines were logged
    assert link["token"] not in logged and api_token not in logged


# Finding 9: the Host header ----------------------------------------------------------------------


def test_host_header_builds_links_only_in_development(app, sample_experiment):
    # Production requires PUBLIC_URL (below); a development hub reached at another address
    # (a LAN address, a container's name) still answers with links that work there.
    alice = signed_up_client(app, "alice")
    token = make_token(alice, ["experiments:read", "experiments:write"])
    posted = app.test_client().post("/api/alice/Personal/experiment", json=sample_experiment,
                                    headers={"Host": "192.168.1.5:5000",
                                             "Authorization": f"Bearer {token}"})
    assert posted.status_code == 201
    assert posted.headers["Location"].startswith("http://192.168.1.5:5000/alice/Personal/")


def test_host_header_is_ignored_when_public_url_is_set(settings, sample_experiment):
    app = create_app({**settings, "PUBLIC_URL": "https://hub.example.com"})
    try:
        alice = signed_up_client(app, "alice")
        token = make_token(alice, ["experiments:read", "experiments:write"])
        posted = app.test_client().post("/api/alice/Personal/experiment", json=sample_experiment,
                                        headers={"Host": "evil.example",
                                                 "Authorization": f"Bearer {token}"})
        assert posted.status_code == 201
        assert posted.headers["Location"].startswith("https://hub.example.com/alice/Personal/")
    finally:
        db.dispose(app)


def test_host_header_outside_trusted_hosts_is_refused(settings):
    app = create_app({**settings, "TRUSTED_HOSTS": "hub.example.com"})
    try:
        assert app.test_client().get("/signin", headers={"Host": "evil.example"}
                                     ).status_code == 400
        assert app.test_client().get("/signin", headers={"Host": "hub.example.com"}
                                     ).status_code == 200
    finally:
        db.dispose(app)


def test_host_header_production_needs_public_url(tmp_path):
    base = {"CHAOSHUB_ENV": "production", "SECRET_KEY": "s", "CHAOSHUB_SIGNING_KEY_FILE": "k",
            "CHAOSHUB_INSTANCE_PATH": str(tmp_path)}
    with pytest.raises(ConfigError, match="PUBLIC_URL"):
        load_settings(base)
    assert load_settings({**base, "PUBLIC_URL": "https://hub.example.com/"})["PUBLIC_URL"] == (
        "https://hub.example.com")


# Finding 10: sign-up limits ----------------------------------------------------------------------


def test_sign_up_is_rate_limited_per_address(app):
    browser = app.test_client()
    limit = app.config["SIGNUP_LIMIT_PER_HOUR"]
    answers = [sign_up(browser, f"user{n}").status_code for n in range(limit)]
    assert answers == [303] * limit
    refused = sign_up(browser, "one-more")
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert sign_in(browser, "one-more").status_code == 401  # nothing was made
    elsewhere = app.test_client()
    elsewhere.environ_base["REMOTE_ADDR"] = "198.51.100.4"
    assert sign_up(elsewhere, "one-more").status_code == 303


# Finding 14: a limited address keeps its valid tokens ----------------------------------------


def test_valid_token_works_from_an_address_over_the_bad_token_limit(app):
    alice = signed_up_client(app, "alice")
    good = make_token(alice, ["experiments:read"])
    shared = app.test_client()  # a NAT or CI runners: one address, many clients
    wrong = {"Authorization": f"Bearer {token_secrets.new_token()}"}
    malformed = {"Authorization": "Bearer chub_nope"}
    assert {shared.get("/api/v1/me", headers=wrong).status_code for _ in range(30)} == {401}
    assert shared.get("/api/v1/me", headers=wrong).status_code == 429
    assert shared.get("/api/v1/me", headers=malformed).status_code == 429
    me = shared.get("/api/v1/me", headers={"Authorization": f"Bearer {good}"})
    assert me.status_code == 200 and me.get_json()["username"] == "alice"


# Finding 15: what the claim verifier accepts ------------------------------------------------------


@pytest.fixture
def ring() -> claims.KeyRing:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return claims.KeyRing.from_private_keys([Ed25519PrivateKey.generate()])


def _signed(ring, **changes) -> str:
    now = int(time.time())
    payload = {"iss": "chaoshub", "aud": "chaoshub", "sub": "account-1", "iat": now,
               "exp": now + 60, "jti": "j1", "name": "Alice", "scopes": ["experiments:read"]}
    payload.update(changes)
    payload = {k: v for k, v in payload.items() if v is not None}
    return jwt.encode(payload, ring.private_keys[0], algorithm="EdDSA",
                      headers={"kid": ring.signing_kid})


@pytest.mark.parametrize("changes", [
    {"exp": int(time.time()) + 86_400},                      # lives a day
    {"iat": int(time.time()) + 3600, "exp": int(time.time()) + 3660},  # issued in the future
    {"aud": ["chaoshub", "other"]},                          # an audience list
    {"scopes": "experiments:read experiments:write"},        # scopes as a string
    {"scopes": [1, 2]},
    {"sub": 42}, {"name": ["Alice"]}, {"ws": 7}, {"jti": 1},
    {"exp": float(int(time.time()) + 60)},
], ids=lambda c: ",".join(c))
def test_claim_verifier_accepts_only_the_shapes_the_issuer_makes(ring, changes):
    verifier = claims.Verifier("chaoshub", claims.local_key_source(ring))
    assert verifier.verify(_signed(ring)).scopes == ("experiments:read",)
    with pytest.raises(Unauthorized):
        verifier.verify(_signed(ring, **changes))


def test_claim_lifetime_setting_stays_within_what_verifiers_accept(tmp_path):
    with pytest.raises(ConfigError, match="CLAIM_TTL"):
        load_settings({"CLAIM_TTL": 3600, "CHAOSHUB_INSTANCE_PATH": str(tmp_path)})
