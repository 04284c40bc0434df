"""What pages tell people to type to connect the Chaos Toolkit to the hub (the client's own
commands: client/)."""

from __future__ import annotations

import shlex

CLIENT_PACKAGE = "chaoshub-client"  # client/pyproject.toml
INSTALL = f"pip install chaostoolkit {CLIENT_PACKAGE}"


def login_command(hub_url: str, org: str, workspace: str, token: str | None = None) -> str:
    """The `chaoshub login` line that makes `chaos run` report to `org`/`workspace` (without a
    token, the command asks for it)."""
    words = ["chaoshub", "login", "--url", hub_url]
    if token:
        words += ["--token", token]
    return " ".join(shlex.quote(w) for w in [*words, "--org", org, "--workspace", workspace])
