"""An API token as read from the settings, a prompt or the environment: trimmed, and never in
a message (an error of the HTTP library may quote the Authorization header it refused)."""

from __future__ import annotations

HIDDEN = "***"


def trimmed(token: str) -> str:
    """The token without the spaces and line end a copy, a file or a CI secret adds to it."""
    return token.strip()


def hidden(text: str, token: str) -> str:
    """`text` with the token, as it is or as Python quotes it, replaced by `***`."""
    for form in {token, token.strip(), repr(token)[1:-1]}:
        if len(form) >= 8:  # a token is far longer: a short one would blank out words
            text = text.replace(form, HIDDEN)
    return text
