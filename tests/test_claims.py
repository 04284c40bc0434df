"""UserClaims: what a verifier accepts, and every forgery it must reject."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from chaoshub.core import claims
from chaoshub.core.errors import Unauthorized

ISSUER = "chaoshub"


@pytest.fixture
def ring() -> claims.KeyRing:
    return claims.KeyRing.from_private_keys([Ed25519PrivateKey.generate()])


@pytest.fixture
def verifier(ring) -> claims.Verifier:
    return claims.Verifier(ISSUER, claims.local_key_source(ring))


def make(ring, **changes) -> str:
    fields = dict(issuer=ISSUER, sub="account-1", name="Alice", scopes=["*"], ttl=60)
    fields.update(changes)
    return claims.issue(ring, **fields)


def test_a_claim_carries_who_and_what(ring, verifier):
    token = make(ring)
    payload = jwt.decode(token, options={"verify_signature": False})
    assert set(payload) == {"iss", "aud", "sub", "iat", "exp", "jti", "name", "scopes"}
    assert 55 <= payload["exp"] - payload["iat"] <= 65
    assert jwt.get_unverified_header(token) == {"alg": "EdDSA", "kid": ring.signing_kid,
                                                "typ": "JWT"}
    claim = verifier.verify(token)
    assert (claim.sub, claim.name, claim.scopes) == ("account-1", "Alice", ("*",))
    assert claim.allows("experiments:write")


def test_scopes_limit_what_a_claim_allows(ring, verifier):
    claim = verifier.verify(make(ring, scopes=["experiments:read"]))
    assert claim.allows("experiments:read")
    assert not claim.allows("experiments:write")


def test_alg_none_is_rejected(ring, verifier):
    payload = jwt.decode(make(ring), options={"verify_signature": False})
    token = jwt.encode(payload, None, algorithm="none", headers={"kid": ring.signing_kid})
    with pytest.raises(Unauthorized, match="algorithm"):
        verifier.verify(token)


def test_hs256_signed_with_the_public_key_is_rejected(ring, verifier):
    public_pem = ring.private_keys[0].public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    payload = jwt.decode(make(ring), options={"verify_signature": False})
    header = base64.urlsafe_b64encode(json.dumps(
        {"alg": "HS256", "typ": "JWT", "kid": ring.signing_kid}).encode()).rstrip(b"=")
    body = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=")
    import hashlib
    import hmac

    signature = base64.urlsafe_b64encode(
        hmac.new(public_pem, header + b"." + body, hashlib.sha256).digest()).rstrip(b"=")
    token = b".".join([header, body, signature]).decode()
    with pytest.raises(Unauthorized, match="algorithm"):
        verifier.verify(token)


def test_an_unknown_kid_is_rejected(verifier):
    stranger = claims.KeyRing.from_private_keys([Ed25519PrivateKey.generate()])
    with pytest.raises(Unauthorized, match="unknown key"):
        verifier.verify(make(stranger))


def test_a_key_pretending_to_be_ours_is_rejected(ring, verifier):
    other = Ed25519PrivateKey.generate()
    payload = jwt.decode(make(ring), options={"verify_signature": False})
    token = jwt.encode(payload, other, algorithm="EdDSA", headers={"kid": ring.signing_kid})
    with pytest.raises(Unauthorized, match="not valid"):
        verifier.verify(token)


def test_a_wrong_audience_is_rejected(ring, verifier):
    with pytest.raises(Unauthorized, match="(?i)audience"):
        verifier.verify(make(ring, audience="somebody-else"))


def test_a_claim_for_one_service_is_refused_by_another(ring, verifier):
    token = make(ring, audience="experiment")
    strict = claims.Verifier(ISSUER, claims.local_key_source(ring), audiences=("experiment",))
    assert strict.verify(token).aud == "experiment"
    with pytest.raises(Unauthorized, match="(?i)audience"):
        verifier.verify(token, audience="dashboard")


def test_a_wrong_issuer_is_rejected(ring, verifier):
    with pytest.raises(Unauthorized, match="(?i)issuer"):
        verifier.verify(make(ring, issuer="evil"))


def test_an_expired_claim_is_rejected(ring, verifier):
    payload = jwt.decode(make(ring), options={"verify_signature": False})
    payload.update(iat=int(time.time()) - 120, exp=int(time.time()) - 60)
    token = jwt.encode(payload, ring.private_keys[0], algorithm="EdDSA",
                       headers={"kid": ring.signing_kid})
    with pytest.raises(Unauthorized, match="expired"):
        verifier.verify(token)


def test_a_verified_claim_is_not_trusted_past_its_expiry(ring, verifier):
    token = make(ring, ttl=1)
    assert verifier.verify(token).sub == "account-1"
    time.sleep(2.1)  # exp has whole-second precision
    with pytest.raises(Unauthorized, match="expired"):
        verifier.verify(token)


def test_a_tampered_payload_is_rejected(ring, verifier):
    token = make(ring, scopes=["experiments:read"])
    assert verifier.verify(token)  # cached as good: the forgery must not ride on that
    header, body, signature = token.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload["scopes"] = ["*"]
    forged_body = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    with pytest.raises(Unauthorized, match="not valid"):
        verifier.verify(f"{header}.{forged_body}.{signature}")


@pytest.mark.parametrize("workspace,auth_time", [(None, None), ("ws-1", None),
                                                 (None, 1_700_000_000)])
def test_the_claim_issue_hands_back_is_the_one_a_verifier_reads(ring, verifier, workspace,
                                                                auth_time):
    # The auth process trusts the claims it signs without decoding them: what it trusts must be
    # exactly what any other process reads out of the token.
    token, claim = claims.issue_with_claim(ring, issuer=ISSUER, sub="account-1", name="Alice",
                                           scopes=("experiments:read",), ttl=60,
                                           workspace=workspace, auth_time=auth_time)
    assert verifier.verify(token) == claim
    assert claim.auth_time == auth_time


def test_a_sign_in_time_that_is_not_whole_seconds_is_refused(ring, verifier):
    now = int(time.time())
    payload = {"iss": ISSUER, "aud": claims.HUB_AUDIENCE, "sub": "account-1", "iat": now,
               "exp": now + 60, "jti": "j-1", "name": "Alice", "scopes": ["*"],
               "auth_time": "yesterday"}
    token = jwt.encode(payload, ring.private_keys[0], algorithm="EdDSA",
                       headers={"kid": ring.signing_kid})
    with pytest.raises(Unauthorized, match="auth_time"):
        verifier.verify(token)


def test_a_trusted_claim_still_answers_only_for_its_audience(ring, verifier):
    token, claim = claims.issue_with_claim(ring, issuer=ISSUER, sub="account-1", name="Alice",
                                           scopes=["*"], ttl=60)
    verifier.trust(token, claim)
    assert verifier.verify(token) is claim
    with pytest.raises(Unauthorized, match="(?i)audience"):
        verifier.verify(token, audience="dashboard")


def test_garbage_is_rejected(verifier):
    for token in ("", "not-a-jwt", "a.b.c", None):
        with pytest.raises(Unauthorized):
            verifier.verify(token)


def test_rotation_keeps_claims_of_the_previous_key_valid():
    old, new = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    before = claims.KeyRing.from_private_keys([old])
    after = claims.KeyRing.from_private_keys([new, old])
    verifier = claims.Verifier(ISSUER, claims.local_key_source(after))
    assert verifier.verify(make(before)).sub == "account-1"
    fresh = make(after)
    assert jwt.get_unverified_header(fresh)["kid"] == claims.key_id(new.public_key())
    assert verifier.verify(fresh).sub == "account-1"
    assert {k["kid"] for k in after.jwks()["keys"]} == {
        claims.key_id(new.public_key()), claims.key_id(old.public_key())}


def test_a_pem_bundle_loads_every_key_active_first():
    keys = [Ed25519PrivateKey.generate() for _ in range(2)]
    bundle = "\n".join(claims.private_key_pem(k) for k in keys)
    loaded = claims.load_private_keys(bundle)
    assert [claims.key_id(k.public_key()) for k in loaded] == [
        claims.key_id(k.public_key()) for k in keys]
    with pytest.raises(ValueError):
        claims.load_private_keys("no key here")


def test_the_jwks_endpoint_publishes_public_keys_only(client, app):
    response = client.get("/auth/.well-known/jwks.json")
    assert response.status_code == 200
    keys = response.get_json()["keys"]
    assert len(keys) == 1
    key = keys[0]
    assert {key["kty"], key["crv"], key["alg"], key["use"]} == {"OKP", "Ed25519", "EdDSA", "sig"}
    assert "d" not in key
    with app.app_context():
        assert key["kid"] == claims.key_ring().signing_kid


def test_signing_keys_come_from_configuration(settings, tmp_path):
    from chaoshub import create_app

    key = Ed25519PrivateKey.generate()
    app = create_app({**settings, "CHAOSHUB_SIGNING_KEY": claims.private_key_pem(key),
                      "CHAOSHUB_SIGNING_KEY_FILE": ""})
    kid = app.test_client().get("/auth/.well-known/jwks.json").get_json()["keys"][0]["kid"]
    assert kid == claims.key_id(key.public_key())


def test_a_development_key_is_generated_into_the_instance_folder(settings, tmp_path):
    from chaoshub import create_app

    instance = tmp_path / "fresh-instance"
    create_app({**settings, "CHAOSHUB_INSTANCE_PATH": str(instance),
                "CHAOSHUB_SIGNING_KEY_FILE": ""})
    pem = (instance / "signing-key.pem").read_text()
    assert "PRIVATE KEY" in pem
    assert (instance / "signing-key.pem").stat().st_mode & 0o077 == 0


def test_the_verifier_remembers_a_bounded_number_of_claims_newest_kept(ring, verifier,
                                                                       monkeypatch):
    monkeypatch.setattr(claims, "VERIFIED_MAX", 50)
    decoded = []
    decode = verifier._decode
    monkeypatch.setattr(verifier, "_decode",
                        lambda token, audience: decoded.append(token) or decode(token, audience))
    tokens = [make(ring, sub=f"account-{n}") for n in range(120)]
    for token in tokens:
        verifier.verify(token)
    assert len(verifier._verified) == 50  # bounded: the oldest went, one at a time
    decoded.clear()
    assert verifier.verify(tokens[-1]).sub == "account-119"  # a recent one is remembered
    assert verifier.verify(tokens[0]).sub == "account-0"  # an old one is checked again
    assert decoded == [tokens[0]]
