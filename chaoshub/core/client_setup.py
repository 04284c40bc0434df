"""What pages tell people to type to connect the Chaos Toolkit to the hub (the client's own
commands: client/)."""

from __future__ import annotations

import shlex

CLIENT_PACKAGE = "chaoshub-client"  # client/pyproject.toml
INSTALL = f"pip install chaostoolkit {CLIENT_PACKAGE}"


def login_command(hub_url: str, org: str, workspace: str) -> str:
    """The `chaoshub login` line that makes `chaos run` report to `org`/`workspace`; it asks for
    the token, unseen, so that no token lands in a shell's history."""
    words = ["chaoshub", "login", "--url", hub_url, "--org", org, "--workspace", workspace]
    return " ".join(shlex.quote(w) for w in words)
