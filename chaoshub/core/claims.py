"""UserClaim: the short-lived signed JWT that every call between services carries."""

from __future__ import annotations

import functools
import hashlib
import itertools
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from flask import Flask, current_app, has_request_context, request
from jwt.algorithms import OKPAlgorithm

from chaoshub.core import request_memo
from chaoshub.core.config import MAX_CLAIM_TTL, instance_file
from chaoshub.core.errors import ServiceUnavailable, Unauthorized

ALGORITHM = "EdDSA"
HUB_AUDIENCE = "chaoshub"
ANONYMOUS = "anonymous"
# Every scope an API token may carry, in the order the token form offers them (`runs:execute` is
# offered already: runs on the hub will check it).
Scope = Literal[
    "experiments:read", "experiments:write", "executions:read", "executions:write", "runs:execute",
    "orgs:read", "audit:read",
]
SCOPES: tuple[Scope, ...] = get_args(Scope)
# What a browser session's claim carries instead of scopes: all of its user's rights.
SESSION_SCOPES = ("*",)
_SESSION_SCOPES = frozenset(SESSION_SCOPES)
# What a verifier accepts of a claim's lifetime (issued ones live CLAIM_TTL, a minute by default),
# and of the clocks of the processes that sign and check it.
MAX_LIFETIME = MAX_CLAIM_TTL
CLOCK_SKEW = 30
# Claims a verifier remembers as checked: a busy worker's last seconds of them. Past this, the
# oldest (first to expire) goes; a claim not remembered is only checked again.
VERIFIED_MAX = 4096


@dataclass(frozen=True)
class UserClaim:
    """What a verified claim says: who acts, with which rights."""

    sub: str
    name: str
    scopes: tuple[str, ...]
    jti: str
    exp: int
    aud: str = HUB_AUDIENCE
    workspace: str | None = None  # an API token restricted to one workspace carries its id
    run: str | None = None  # a claim made to report one hub run carries its id
    # A signed-in session's claim: when that session began (seconds since the epoch), so that a
    # service can ask for a recent sign-in without the session's cookie.
    auth_time: int | None = None

    @property
    def anonymous(self) -> bool:
        """True for the claim of a visitor who is not signed in."""
        return self.sub == ANONYMOUS

    @property
    def is_session(self) -> bool:
        """True when the claim comes from a signed-in browser session, not an API token."""
        return not self.anonymous and _SESSION_SCOPES.issubset(self.scopes)

    def allows(self, scope: str) -> bool:
        """True when the credential behind this claim carries `scope` (a session has them all)."""
        return self.is_session or scope in self.scopes


@dataclass
class KeyRing:
    """Signing keys (private, auth only) and the public keys claims are checked against."""

    private_keys: list[Ed25519PrivateKey] = field(default_factory=list)
    public_keys: dict[str, Ed25519PublicKey] = field(default_factory=dict)

    @classmethod
    def from_private_keys(cls, keys: list[Ed25519PrivateKey]) -> KeyRing:
        """A ring that signs with the first key and accepts all of them."""
        return cls(keys, {key_id(k.public_key()): k.public_key() for k in keys})

    @functools.cached_property
    def signing_kid(self) -> str:
        """The `kid` of the key new claims are signed with."""
        return key_id(self.private_keys[0].public_key())

    def jwks(self) -> dict[str, Any]:
        """The public keys as a JSON Web Key Set."""
        keys = []
        for kid, public in self.public_keys.items():
            jwk = OKPAlgorithm.to_jwk(public, as_dict=True)
            keys.append({**jwk, "kid": kid, "alg": ALGORITHM, "use": "sig"})
        return {"keys": keys}


def key_id(public: Ed25519PublicKey) -> str:
    """A stable id for a public key: the start of its SHA-256."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def load_private_keys(pem: str) -> list[Ed25519PrivateKey]:
    """Every Ed25519 private key in a PEM bundle, the active one first."""
    keys = []
    marker = "-----END PRIVATE KEY-----"
    for block in pem.split(marker):
        if "-----BEGIN" not in block:
            continue
        key = serialization.load_pem_private_key((block + marker).strip().encode(), None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("signing keys must be Ed25519 private keys")
        keys.append(key)
    if not keys:
        raise ValueError("no private key found in the signing key PEM")
    return keys


def private_key_pem(key: Ed25519PrivateKey) -> str:
    """A private key as PKCS#8 PEM text."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def development_key_file(instance_path: str) -> Path:
    """The instance folder's signing key, generated on first use."""
    return instance_file(instance_path, "signing-key.pem",
                         lambda: private_key_pem(Ed25519PrivateKey.generate()))


def issue(ring: KeyRing, **fields: Any) -> str:
    """Sign a new UserClaim with the ring's active key (the fields of `issue_with_claim`)."""
    return issue_with_claim(ring, **fields)[0]


def issue_with_claim(
    ring: KeyRing,
    *,
    issuer: str,
    sub: str,
    name: str,
    scopes: tuple[str, ...] | list[str],
    ttl: int,
    audience: str = HUB_AUDIENCE,
    workspace: str | None = None,
    run: str | None = None,
    auth_time: int | None = None,
) -> tuple[str, UserClaim]:
    """Sign a new UserClaim: the token, and the claim it carries."""
    now = int(time.time())
    payload = {
        "iss": issuer,
        "aud": audience,
        "sub": sub,
        "iat": now,
        "exp": now + ttl,
        "jti": uuid.uuid4().hex,
        "name": name,
        "scopes": list(scopes),
    }
    if workspace:
        payload["ws"] = workspace
    if run:
        payload["run"] = run
    if auth_time:
        payload["auth_time"] = auth_time
    token = jwt.encode(
        payload, ring.private_keys[0], algorithm=ALGORITHM, headers={"kid": ring.signing_kid}
    )
    claim = UserClaim(sub=sub, name=name, scopes=tuple(scopes), jti=payload["jti"],
                      exp=payload["exp"], aud=audience, workspace=workspace or None,
                      run=run or None, auth_time=auth_time or None)
    return token, claim


class Verifier:
    """Checks claims against known public keys, remembering good ones until they expire."""

    def __init__(self, issuer: str, key_source, audiences: tuple[str, ...] = (HUB_AUDIENCE,)):
        self.issuer = issuer
        self.audiences = audiences
        self._key_source = key_source  # callable: kid -> public key or None
        # Oldest first: claims live one minute, so the oldest kept is the first to expire.
        self._verified: OrderedDict[str, UserClaim] = OrderedDict()
        self._lock = threading.Lock()

    def verify(self, token: str, audience: str | None = None) -> UserClaim:
        """The claim inside `token`, or Unauthorized if anything about it is wrong."""
        if not isinstance(token, str) or not token:
            raise Unauthorized("a signed claim is required")
        # Keyed by the whole token, not its jti: a forged token reusing a jti must not hit.
        cache_key = hashlib.sha256(token.encode()).hexdigest()
        now = time.time()
        cached = self._verified.get(cache_key)
        if cached and cached.exp > now and (audience is None or cached.aud == audience):
            return cached
        claim = self._decode(token, audience)
        self._keep(cache_key, claim, now)
        return claim

    def trust(self, token: str, claim: UserClaim) -> None:
        """Take a claim this process has just signed as verified, without decoding it again."""
        self._keep(hashlib.sha256(token.encode()).hexdigest(), claim, time.time())

    def _keep(self, cache_key: str, claim: UserClaim, now: float) -> None:
        # Bounded, and O(1) an insert: every request brings a new claim, and a sweep of the
        # whole cache on each insert once it was full took half a busy worker's CPU.
        with self._lock:
            self._verified[cache_key] = claim
            self._verified.move_to_end(cache_key)
            while len(self._verified) > VERIFIED_MAX:
                self._verified.popitem(last=False)

    def _decode(self, token: str, audience: str | None) -> UserClaim:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthorized("the claim is not a JWT") from exc
        if header.get("alg") != ALGORITHM:
            raise Unauthorized("the claim is not signed with the hub's algorithm")
        key = self._key_source(header.get("kid"))
        if key is None:
            raise Unauthorized("the claim is signed with an unknown key")
        try:
            payload = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=[audience] if audience else list(self.audiences),
                issuer=self.issuer,
                options={"require": ["iss", "aud", "sub", "iat", "exp", "jti"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("the claim has expired") from exc
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"the claim is not valid: {exc}") from exc
        problem = _shape_problem(payload)
        if problem:
            raise Unauthorized(f"the claim is not valid: {problem}")
        return UserClaim(
            sub=payload["sub"],
            name=payload.get("name", ""),
            scopes=tuple(payload.get("scopes", ())),
            jti=payload["jti"],
            exp=payload["exp"],
            aud=payload["aud"],
            workspace=payload.get("ws"),
            run=payload.get("run"),
            auth_time=payload.get("auth_time"),
        )


def _shape_problem(payload: dict[str, Any]) -> str | None:
    """What makes a signed payload something `issue_with_claim` never makes, if anything."""
    # A valid signature is not enough: a key that signs only what the issuer makes keeps a
    # mistake or a stolen key from minting a claim that lives for days or changes meaning.
    for name in ("sub", "jti", "aud"):
        if not isinstance(payload.get(name), str):
            return f"{name} must be a string"
    if not isinstance(payload.get("name", ""), str):
        return "name must be a string"
    scopes = payload.get("scopes", [])
    if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
        return "scopes must be a list of strings"
    for name in ("ws", "run"):
        if name in payload and not isinstance(payload[name], str):
            return f"{name} must be a string"
    if "auth_time" in payload and type(payload["auth_time"]) is not int:
        return "auth_time must be whole seconds"
    return lifetime_problem(payload, MAX_LIFETIME)


def lifetime_problem(payload: dict[str, Any], longest: int) -> str | None:
    """What is wrong with a token's `iat` and `exp` for a life of `longest` seconds, if any."""
    iat, exp = payload.get("iat"), payload.get("exp")
    if type(iat) is not int or type(exp) is not int:
        return "iat and exp must be whole seconds"
    if iat > time.time() + CLOCK_SKEW:
        return "it was issued in the future"
    if not 0 < exp - iat <= longest:
        return f"it may live {longest} seconds at most"
    return None


def local_key_source(ring: KeyRing):
    """Look keys up in this process's own key ring."""
    return ring.public_keys.get


def jwks_key_source(jwks_url: str, timeout: float):
    """Look keys up in the JWKS the auth service publishes, re-fetching on an unknown kid."""
    client = jwt.PyJWKClient(jwks_url, cache_keys=True, lifespan=300, timeout=timeout)

    def lookup(kid: str | None):
        if not kid:
            return None
        try:
            return client.get_signing_key(kid).key
        except jwt.PyJWKClientConnectionError as exc:
            raise ServiceUnavailable("the auth service's keys cannot be fetched") from exc
        except jwt.PyJWKClientError:
            return None

    return lookup


EXTENSION = "chaoshub.claims"
# A claim made for the request that holds it, in the process that made it (see `sign`).
LOCAL_PREFIX = "local."
_HANDLES = itertools.count(1)
# Calls from other processes (transport.RPC_PREFIX, which imports this module): what they get
# back must be checkable where they run.
REMOTE_CALLS = "/internal/"


def init_app(app: Flask) -> None:
    """Load the signing keys (when auth is hosted here) and build the claim verifier."""
    config = app.config
    ring = None
    if "auth" in config["CHAOSHUB_SERVICES"]:
        pem = config.get("CHAOSHUB_SIGNING_KEY")
        if not pem:
            path = config.get("CHAOSHUB_SIGNING_KEY_FILE") or development_key_file(
                config["CHAOSHUB_INSTANCE_PATH"]
            )
            pem = Path(path).read_text()
        ring = KeyRing.from_private_keys(load_private_keys(pem))
        source = local_key_source(ring)
    else:
        jwks_url = f"{config['AUTH_SERVICE_URL']}/auth/.well-known/jwks.json"
        source = jwks_key_source(jwks_url, config["SERVICE_TIMEOUT"])
    app.extensions[EXTENSION] = (ring, Verifier(config["CLAIM_ISSUER"], source))


def key_ring() -> KeyRing:
    """This process's signing keys; only the auth service has them."""
    ring = current_app.extensions[EXTENSION][0]
    if ring is None:
        raise RuntimeError("claims are signed by the auth service, which is not hosted here")
    return ring


def sign(*, sub: str, name: str, scopes: tuple[str, ...], workspace: str | None = None,
         run: str | None = None, auth_time: int | None = None) -> str:
    """A new claim made with this process's keys (auth). Within a request served here (not a
    call from another process), it is a handle to the claim kept for that request alone:
    nobody outside reads it, so nothing is signed; `portable` signs one that must leave."""
    config = current_app.config
    if has_request_context() and not request.path.startswith(REMOTE_CALLS):
        # Known by this request alone (its memo holds it): a number of the process suffices.
        claim = UserClaim(sub=sub, name=name, scopes=tuple(scopes), jti=str(next(_HANDLES)),
                          exp=int(time.time()) + config["CLAIM_TTL"],
                          workspace=workspace or None, run=run or None,
                          auth_time=auth_time or None)
        handle = LOCAL_PREFIX + claim.jti
        request_memo.keep(("claim", handle, None), claim)
        return handle
    token, claim = issue_with_claim(key_ring(), issuer=config["CLAIM_ISSUER"], sub=sub,
                                    name=name, scopes=scopes, ttl=config["CLAIM_TTL"],
                                    workspace=workspace, run=run, auth_time=auth_time)
    # Its own verifier trusts it as is: the caller does not pay for checking a signature
    # made a moment ago.
    current_app.extensions[EXTENSION][1].trust(token, claim)
    return token


def portable(token: str) -> str:
    """`token` as a signed claim that another process can check (a handle is signed now)."""
    if not token.startswith(LOCAL_PREFIX):
        return token
    claim = verify(token)
    config = current_app.config
    return issue_with_claim(key_ring(), issuer=config["CLAIM_ISSUER"], sub=claim.sub,
                            name=claim.name, scopes=claim.scopes,
                            ttl=max(1, claim.exp - int(time.time())),
                            workspace=claim.workspace, run=claim.run,
                            auth_time=claim.auth_time)[0]


def verify(token: str, audience: str | None = None) -> UserClaim:
    """The verified claim inside `token`; Unauthorized when it is not valid."""
    if token.startswith(LOCAL_PREFIX):
        # Made by this request, in this process: it is valid here and now, nowhere else.
        claim = request_memo.recall(("claim", token, None))
        if claim is None or (audience is not None and audience != claim.aud):
            raise Unauthorized("the claim is not valid here")
        if claim.exp < time.time():
            raise Unauthorized("the claim has expired")
        return claim
    # Every service function a request reaches verifies its claim: once per request is enough.
    verifier = current_app.extensions[EXTENSION][1]
    return request_memo.remember(("claim", token, audience),
                                 lambda: verifier.verify(token, audience))
