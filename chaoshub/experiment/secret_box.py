"""Environments' secrets at rest: AES-256-GCM under the keys of RUN_SECRETS_KEY.

A sealed value names the key that sealed it (the first 8 hex digits of the key's SHA-256), so
keys can be rotated: the first key of the setting seals, every key listed opens. The value is
bound to where it belongs (`context`: its environment and name), so a sealed value copied to
another row does not open there.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import current_app

from chaoshub.core.config import ConfigError, run_secrets_keys
from chaoshub.core.errors import ServiceUnavailable

VERSION = "v1"
NONCE_BYTES = 12


class SecretUnreadable(Exception):
    """A sealed value no key of the settings opens (a lost key, or a value moved or altered)."""


def seal(value: str, context: str) -> str:
    """`value` encrypted under the first key, bound to `context`: `v1:<key id>:<base64>`."""
    key_id, key = _keys()[0]
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(key).encrypt(nonce, value.encode("utf-8"), context.encode("utf-8"))
    return f"{VERSION}:{key_id}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"


def open_sealed(token: str, context: str) -> str:
    """The value `seal` encrypted with this `context`; SecretUnreadable when it cannot be."""
    version, _, rest = token.partition(":")
    key_id, _, payload = rest.partition(":")
    key = dict(_keys()).get(key_id)
    if version != VERSION or key is None:
        raise SecretUnreadable("no key of RUN_SECRETS_KEY sealed this secret")
    try:
        raw = base64.urlsafe_b64decode(payload.encode())
        opened = AESGCM(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:],
                                     context.encode("utf-8"))
    except (InvalidTag, ValueError, binascii.Error) as exc:
        raise SecretUnreadable("the secret does not open with its key") from exc
    return opened.decode("utf-8")


def _keys() -> list[tuple[str, bytes]]:
    try:
        encoded = run_secrets_keys(current_app.config)
    except ConfigError as exc:
        # Said to whoever tries to keep or use a secret, and to the operator in the logs.
        raise ServiceUnavailable(str(exc)) from exc
    keys = []
    for text in encoded:
        try:
            key = base64.urlsafe_b64decode(text.encode() + b"=" * (-len(text) % 4))
        except (ValueError, binascii.Error):
            key = b""
        if len(key) != 32:
            raise ServiceUnavailable("RUN_SECRETS_KEY holds a key that is not 32 bytes of "
                                     "URL-safe base64")
        keys.append((hashlib.sha256(key).hexdigest()[:8], key))
    return keys
