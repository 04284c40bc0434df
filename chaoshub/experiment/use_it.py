"""The experiment page's "Use it" box: the commands that run an experiment from a person's own
machine and report each run to this hub, with the hub's address filled in."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from urllib.parse import urlparse

import yaml

from chaoshub.core import client_setup

# The control the client ships.
CONTROL_MODULE = "chaoshub_client.control"
TOKEN_PLACEHOLDER = "<your API token>"


@dataclass(frozen=True)
class UseIt:
    """Each command of the box, as a person types it."""

    install: str
    login: str
    settings: str
    run: str


def commands(hub: str, org: str, workspace: str, experiment_url: str) -> UseIt:
    """The commands for the experiment at `experiment_url` of `org`/`workspace` on the hub whose
    address is `hub` (no trailing slash)."""
    login = client_setup.login_command(hub, org, workspace)
    # What `chaoshub login` writes, for those who keep their settings by hand; auths first:
    # chaoslib sends it when it loads the experiment from the hub.
    settings = {
        "auths": {urlparse(hub).netloc: {"type": "bearer", "value": TOKEN_PLACEHOLDER}},
        "vendor": {"chaoshub": {"hub_url": hub, "token": TOKEN_PLACEHOLDER,
                                "organization": org, "workspace": workspace}},
        "controls": {"chaoshub": {"provider": {"type": "python", "module": CONTROL_MODULE}}},
    }
    return UseIt(install=client_setup.INSTALL, login=login,
                 settings=yaml.safe_dump(settings, sort_keys=False, allow_unicode=True).rstrip(),
                 run=f"chaos run {shlex.quote(experiment_url)}")
