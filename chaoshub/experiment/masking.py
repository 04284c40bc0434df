"""Secrets' values taken out of what a run reports (its events and its journal).

A run's process may print a secret it was given (a process activity echoing a variable), or a
library may put it in an error message. Every string of a reported value is searched for each
secret as given, and in its base64 and URL-encoded forms, longest first; each occurrence becomes
MASK. Object keys are masked too.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus

MASK = "********"


class Masker:
    """Masks a set of secret values wherever they appear in JSON-like data."""

    def __init__(self, secrets: Iterable[str]):
        forms: set[str] = set()
        for secret in secrets:
            if not secret:
                continue
            raw = secret.encode("utf-8")
            encoded = base64.b64encode(raw).decode()
            forms.update({secret, quote(secret, safe=""), quote_plus(secret), encoded,
                          encoded.rstrip("="), base64.urlsafe_b64encode(raw).decode().rstrip("=")})
        self.forms = sorted(forms, key=len, reverse=True)

    def __bool__(self) -> bool:
        return bool(self.forms)

    def text(self, value: str) -> str:
        """`value` with every form of every secret replaced by MASK."""
        for form in self.forms:
            if form in value:
                value = value.replace(form, MASK)
        return value

    def data(self, value: Any) -> Any:
        """A copy of JSON-like `value` with every string (keys too) masked."""
        if not self.forms:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(k) if isinstance(k, str) else k: self.data(v)
                    for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.data(v) for v in value]
        return value
