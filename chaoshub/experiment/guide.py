"""The first-run guide of an empty workspace: a token for the CLI in one click, the commands to
log in, and a first experiment that passes wherever the hub answers, to run and watch arrive."""

from __future__ import annotations

from urllib.parse import quote

from chaoshub.core import client_setup
from chaoshub.core.web import external_url

FIRST_RUN_FILE = "first-run.json"


def first_experiment(hub_url: str) -> dict:
    """An experiment that holds wherever this hub answers: its steady state is the hub's health
    endpoint answering 200, and its method waits a second."""
    return {
        "version": "1.0.0",
        "title": "My first run: the hub answers",
        "description": "A first experiment to watch a run arrive on the hub. Its steady state "
                       "is that the hub's health endpoint answers 200; its method waits a "
                       "second. Replace both with your own system's.",
        "tags": ["first-run"],
        "steady-state-hypothesis": {
            "title": "The hub answers",
            "probes": [{
                "type": "probe", "name": "hub-answers", "tolerance": 200,
                "provider": {"type": "http", "url": f"{hub_url}/status/health",
                             "timeout": 5},
            }],
        },
        "method": [{
            "type": "action", "name": "wait-a-moment",
            "provider": {"type": "process", "path": "sleep", "arguments": "1"},
        }],
        "rollbacks": [],
    }


def first_run_steps(org: str, workspace: str) -> dict:
    """What the guide shows: the hub's address, the install command and the file's link."""
    place = f"/{quote(org, safe='')}/{quote(workspace, safe='')}"
    return {"install": client_setup.INSTALL, "place": f"{org}/{workspace}",
            "login": client_setup.login_command(external_url(""), org, workspace),
            "file_url": f"{place}/experiment/-/{FIRST_RUN_FILE}", "file": FIRST_RUN_FILE}
