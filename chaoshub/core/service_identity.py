"""Service assertions: how a process proves to another which service is calling, with no secret
shared between them.

In split mode each process holds an Ed25519 key of its own (CHAOSHUB_SERVICE_KEY or
CHAOSHUB_SERVICE_KEY_FILE, else one generated in the instance folder) and publishes its public keys
at /internal/jwks.json. Each call it makes to another service carries, beside the user's claim, a
one-minute EdDSA JWT naming the calling service (iss, sub) and the called one (aud), bound to that
call by the SHA-256 of its function, user claim and body, so that a copy is good for no other
call. The called process checks it against the JWKS at the caller's *_SERVICE_URL.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import Blueprint, Flask, current_app, jsonify, request

from chaoshub.core.cache import cache
from chaoshub.core.claims import (
    ALGORITHM,
    KeyRing,
    lifetime_problem,
    load_private_keys,
    private_key_pem,
)
from chaoshub.core.config import SERVICES, instance_file
from chaoshub.core.errors import ServiceUnavailable, Unauthorized

HEADER = "X-ChaosHub-Service"
JWKS_PATH = "/internal/jwks.json"
LIFETIME = 60  # seconds: one call and the clocks' drift, no more
# The JWT type: neither a user claim nor any other JWT passes for an assertion.
TYPE = "chaoshub-service+jwt"
EXTENSION = "chaoshub.service_identity"
# The one service that runs in processes of its own beside a hub that hosts every service.
PEER_SERVICE = "experiment"


def request_digest(target: str, authorization: str, body: bytes) -> str:
    """The SHA-256 that ties an assertion to one call: its function, user claim and body."""
    digest = hashlib.sha256()
    for part in (target.encode(), authorization.encode(), body):
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()


class ServiceIdentity:
    """This process's service keys, and where the other services publish theirs."""

    def __init__(self, ring: KeyRing, hosted: tuple[str, ...], urls: dict[str, str],
                 timeout: float):
        self.ring = ring
        self.hosted = hosted
        self._clients = {
            service: jwt.PyJWKClient(f"{url}{JWKS_PATH}", cache_keys=True, lifespan=300,
                                     timeout=timeout)
            for service, url in urls.items() if service not in hosted and url
        }

    def sign(self, caller: str, callee: str, digest: str) -> str:
        """An assertion that `caller` (a service hosted here) makes the call with this digest."""
        now = int(time.time())
        payload = {"iss": caller, "sub": caller, "aud": callee, "iat": now,
                   "exp": now + LIFETIME, "jti": uuid.uuid4().hex, "req": digest}
        return jwt.encode(payload, self.ring.private_keys[0], algorithm=ALGORITHM,
                          headers={"kid": self.ring.signing_kid, "typ": TYPE})

    def verify(self, token: str, callee: str, digest: str) -> str:
        """The service that signed `token` for this call to `callee`; Unauthorized otherwise."""
        if not token:
            raise Unauthorized("only the hub's services may call here")
        try:
            header = jwt.get_unverified_header(token)
            caller = jwt.decode(token, options={"verify_signature": False}).get("iss")
        except jwt.PyJWTError as exc:
            raise Unauthorized("the service assertion is not a JWT") from exc
        if header.get("alg") != ALGORITHM or header.get("typ") != TYPE or caller not in SERVICES:
            raise Unauthorized("the service assertion is not one the hub's services make")
        key = self._key(caller, header.get("kid"))
        try:
            payload = jwt.decode(token, key, algorithms=[ALGORITHM], audience=callee,
                                 issuer=caller, options={"require": [
                                     "iss", "sub", "aud", "iat", "exp", "jti", "req"]})
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"the service assertion is not valid: {exc}") from exc
        if payload["sub"] != caller or payload["aud"] != callee or payload["req"] != digest:
            raise Unauthorized("the service assertion was made for another call")
        problem = lifetime_problem(payload, LIFETIME)
        if problem:
            raise Unauthorized(f"the service assertion is not valid: {problem}")
        # Bound to one call's bytes, an assertion could still be sent again as it is: once only.
        if cache().hit(cache().key("core", "assertion", payload["jti"]), LIFETIME) not in (1, None):
            raise Unauthorized("the service assertion has been used already")
        return caller

    def _key(self, caller: str, kid: str | None):
        if caller in self.hosted:
            # Another process of a service hosted here: a worker of the hub's, which hosts the
            # experiment service alone and holds this process's own service key. No other
            # service runs apart from a hub that hosts it.
            if caller != PEER_SERVICE:
                raise Unauthorized(f"the {caller} service is hosted here: it makes no calls")
            key = self.ring.public_keys.get(kid or "")
            if key is None:
                raise Unauthorized("the service assertion is signed with an unknown key")
            return key
        client = self._clients.get(caller)
        if client is None or not kid:
            raise Unauthorized("the service assertion is signed with an unknown key")
        try:
            return client.get_signing_key(kid).key
        except jwt.PyJWKClientConnectionError as exc:
            raise ServiceUnavailable(f"the {caller} service's keys cannot be fetched") from exc
        except jwt.PyJWKClientError as exc:
            raise Unauthorized("the service assertion is signed with an unknown key") from exc


def identity() -> ServiceIdentity:
    """This process's service identity (split mode only)."""
    return current_app.extensions[EXTENSION]


def assertion(callee: str, target: str, authorization: str, body: bytes,
              callers: frozenset[str]) -> str:
    """An assertion for one call to `callee`, made as the hosted service allowed to make it."""
    mine = identity()
    caller = next((s for s in mine.hosted if s in callers), mine.hosted[0])
    return mine.sign(caller, callee, request_digest(target, authorization, body))


def verified_caller(callee: str, target: str) -> str:
    """The service that made the request being served, proven by its assertion."""
    digest = request_digest(target, request.headers.get("Authorization", ""),
                            request.get_data(cache=True))
    return identity().verify(request.headers.get(HEADER, ""), callee, digest)


def development_key_file(instance_path: str) -> Path:
    """The instance folder's service key, generated on first use."""
    return instance_file(instance_path, "service-key.pem",
                         lambda: private_key_pem(Ed25519PrivateKey.generate()))


keys = Blueprint("service_keys", __name__)


@keys.get(JWKS_PATH)
def jwks():
    """The public keys this process signs its service assertions with."""
    return jsonify(identity().ring.jwks())


def init_app(app: Flask) -> None:
    """Load this process's service key and publish its public half."""
    config = app.config
    pem = config.get("CHAOSHUB_SERVICE_KEY")
    if not pem:
        path = config.get("CHAOSHUB_SERVICE_KEY_FILE") or development_key_file(
            config["CHAOSHUB_INSTANCE_PATH"])
        pem = Path(path).read_text()
    ring = KeyRing.from_private_keys(load_private_keys(pem))
    urls = {service: config[f"{service.upper()}_SERVICE_URL"] for service in SERVICES}
    app.extensions[EXTENSION] = ServiceIdentity(ring, config["CHAOSHUB_SERVICES"], urls,
                                                config["SERVICE_TIMEOUT"])
    app.register_blueprint(keys)
