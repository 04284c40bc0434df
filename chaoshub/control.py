"""Kept for settings files that older `chaoshub login` wrote (`module: chaoshub.control`): the
control is `chaoshub_client.control` now. Only `chaos run` imports this, never the server."""

from chaoshub_client.control import *  # noqa: F403
