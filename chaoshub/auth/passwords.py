"""Local passwords: the policy, and argon2 hashing with answers that take as long either way."""

from __future__ import annotations

import functools
import gzip
import secrets
from importlib import resources

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app

MIN_LENGTH = 10
MAX_LENGTH = 1024

HASHERS = {
    # argon2-cffi's own default: RFC 9106's low-memory profile (64 MiB, 3 passes).
    "standard": PasswordHasher(),
    # For test suites, which make hundreds of accounts; the configuration refuses it in
    # production. Hashes made with either verify with both: the parameters are in the hash.
    "fast": PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1),
}


def _hasher() -> PasswordHasher:
    return HASHERS[current_app.config["PASSWORD_HASHING"]]


@functools.cache
def common_passwords() -> frozenset[str]:
    """The 20,000 most common passwords (the list Django ships), lower-cased."""
    data = resources.files(__package__).joinpath("common-passwords.txt.gz").read_bytes()
    return frozenset(gzip.decompress(data).decode().split())


def problem(password: str, username: str = "") -> str | None:
    """Why `password` is not good enough, or None."""
    if not MIN_LENGTH <= len(password or "") <= MAX_LENGTH:
        return f"use at least {MIN_LENGTH} characters"
    if username and password.lower() == username.lower():
        return "must differ from the username"
    if password.lower() in common_passwords() or password.strip().lower() in common_passwords():
        return "this password is too common; pick a longer or less usual one"
    return None


def hash_password(password: str) -> str:
    """An argon2id hash of `password`."""
    return _hasher().hash(password)


def matches(stored_hash: str | None, password: str) -> bool:
    """Check `password` against `stored_hash`, spending the same time when there is no hash."""
    hasher = _hasher()
    try:
        hasher.verify(stored_hash or _dummy_hash(hasher), password)
    except (VerificationError, InvalidHashError):
        return False
    return stored_hash is not None


@functools.cache
def _dummy_hash(hasher: PasswordHasher) -> str:
    return hasher.hash(secrets.token_urlsafe(16))
