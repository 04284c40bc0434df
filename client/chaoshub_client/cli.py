"""The `chaoshub` command: `login`, and the subcommands other installed packages register."""

from __future__ import annotations

import os
from importlib.metadata import entry_points
from pathlib import Path
from urllib.parse import urlparse

import click
import yaml

from chaoshub_client.hub_run import hub_run
from chaoshub_client.login_check import LoginProblem, check_login
from chaoshub_client.spool import spool
from chaoshub_client.tokens import trimmed
from chaoshub_client.yaml_errors import yaml_problem

# Other distributions add subcommands here (the server: run, db, user, token, route, audit).
COMMANDS_GROUP = "chaoshub.commands"
CONTROL_MODULE = "chaoshub_client.control"


class HubCommands(click.Group):
    """A group of its own commands plus those registered under `chaoshub.commands`."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command name, own and registered."""
        registered = {ep.name for ep in entry_points(group=COMMANDS_GROUP)}
        return sorted(set(super().list_commands(ctx)) | registered)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        """The command called `name`, loading a registered one only when it is asked for."""
        # Loaded on demand: `chaoshub login` never imports the server, even where it is installed.
        command = super().get_command(ctx, name)
        if command is not None:
            return command
        for ep in entry_points(group=COMMANDS_GROUP):
            if ep.name == name:
                return ep.load()
        return None


@click.group(cls=HubCommands)
def main() -> None:
    """ChaosHub: keep, run and read Chaos Toolkit experiments."""


@main.command()
@click.option("--url", required=True, help="The hub's address, e.g. https://hub.example.com.")
@click.option("--token", required=True, envvar="CHAOSHUB_TOKEN", prompt="API token",
              hide_input=True,
              help="An API token with executions:write (and experiments:write to publish new "
                   "experiments); also read from CHAOSHUB_TOKEN, else asked for (hidden).")
@click.option("--org", default=None, help="The org runs are reported to (its name).")
@click.option("--workspace", default=None, help="The workspace runs are reported to.")
@click.option("--settings", "settings_path", default="~/.chaostoolkit/settings.yaml",
              show_default=True, type=click.Path(dir_okay=False),
              help="The Chaos Toolkit settings file to write.")
def login(url, token, org, workspace, settings_path) -> None:
    """Make `chaos run` report runs to this hub: checks the token, org and workspace with the
    hub, then writes the Chaos Toolkit's settings."""
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise click.BadParameter("use the hub's http(s) address", param_hint="--url")
    url = url.rstrip("/")
    token = trimmed(token)
    path = Path(settings_path).expanduser()
    settings = {}
    if path.exists():
        try:
            settings = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise click.ClickException(f"{path} is not valid YAML: {yaml_problem(exc)}") from exc
        if not isinstance(settings, dict):
            raise click.ClickException(f"{path} does not hold a YAML mapping")

    def section(parent: dict, key: str) -> dict:
        # Merged into what is there: other vendors, hubs and controls stay as they were.
        if not isinstance(parent.get(key), dict):
            parent[key] = {}
        return parent[key]

    hub = section(section(settings, "vendor"), "chaoshub")
    hub.update({"hub_url": url, "token": token})
    for key, value in (("organization", org), ("workspace", workspace)):
        if value:
            hub[key] = value
    try:
        # What runs will use (an org or workspace kept from before too) is checked, and
        # nothing is written when the hub says it cannot work.
        checked = check_login(url, token, _text(hub.get("organization")),
                              _text(hub.get("workspace")))
    except LoginProblem as problem:
        raise click.ClickException(f"{problem}; the settings were not written") from problem
    # chaoslib sends this when it loads an experiment from the hub's URL.
    section(settings, "auths")[parsed.netloc] = {"type": "bearer", "value": token}
    section(settings, "controls")["chaoshub"] = {
        "provider": {"type": "python", "module": CONTROL_MODULE}}
    path.parent.mkdir(parents=True, exist_ok=True)
    # The file holds a token: readable by its owner only, from the first byte written.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        yaml.safe_dump(settings, out, sort_keys=False, allow_unicode=True)
    os.chmod(path, 0o600)
    where = f"{hub.get('organization', '?')}/{hub.get('workspace', '?')}"
    click.echo(f"{path}: `chaos run` now reports runs to {url} ({where}) as "
               f"{checked.username}")
    for warning in checked.warnings:
        click.secho(f"Warning: {warning}", err=True, fg="yellow")
    if "organization" not in hub or "workspace" not in hub:
        click.echo("name the org and workspace with --org and --workspace (or CHAOSHUB_ORG "
                   "and CHAOSHUB_WORKSPACE when running)", err=True)


main.add_command(spool)
main.add_command(hub_run)


def _text(value) -> str | None:
    return value if isinstance(value, str) and value else None
