"""API token secrets: `chub_` + 30 random base62 characters + a 6-character CRC32 checksum.

The prefix and checksum let secret scanners find leaked tokens and let the hub reject a mistyped
one without touching the database.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import string
import zlib

PREFIX = "chub_"
ALPHABET = string.digits + string.ascii_letters
RANDOM_LENGTH = 30
CHECKSUM_LENGTH = 6
_BASE62 = re.compile("[0-9A-Za-z]+", re.ASCII)


def new_token() -> str:
    """A fresh API token secret."""
    body = "".join(secrets.choice(ALPHABET) for _ in range(RANDOM_LENGTH))
    return PREFIX + body + _checksum(body)


def well_formed(token: str) -> bool:
    """True when `token` has our prefix, length, alphabet and a matching checksum."""
    if not token.startswith(PREFIX) or len(token) != len(PREFIX) + RANDOM_LENGTH + CHECKSUM_LENGTH:
        return False
    body, checksum = token[len(PREFIX):-CHECKSUM_LENGTH], token[-CHECKSUM_LENGTH:]
    return _BASE62.fullmatch(body) is not None and secrets.compare_digest(checksum,
                                                                          _checksum(body))


def token_hash(token: str) -> str:
    """What the database keeps: the SHA-256 of the secret (it has 178 bits of entropy)."""
    return hashlib.sha256(token.encode()).hexdigest()


def hint(token: str) -> str:
    """The start of a token, shown in lists so people can tell their tokens apart."""
    return token[: len(PREFIX) + 4]


def _checksum(body: str) -> str:
    value = zlib.crc32(body.encode())
    digits = []
    for _ in range(CHECKSUM_LENGTH):
        value, remainder = divmod(value, len(ALPHABET))
        digits.append(ALPHABET[remainder])
    return "".join(reversed(digits))
