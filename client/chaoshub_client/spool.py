"""`chaoshub spool`: the journals runs could not publish, why, and sending them again."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import click
import yaml

from chaoshub_client.yaml_errors import yaml_problem

SETTINGS_HELP = "The Chaos Toolkit settings `chaoshub login` wrote (for the hub's token)."
OUTCOMES = {
    "sent": "sent: the run is on the hub",
    "parked": "still waiting",
    "refused": "set aside: the hub refused it for what it is",
    "retry": "kept: the hub could not be reached, or was too busy",
}


def _folder_option(command):
    return click.option("--spool-dir", type=click.Path(file_okay=False, path_type=Path),
                        default=None, envvar="CHAOSHUB_SPOOL_DIR",
                        help="Where journals wait (default: ~/.chaoshub/spool; also "
                             "CHAOSHUB_SPOOL_DIR).")(command)


@click.group(invoke_without_command=True)
@_folder_option
@click.pass_context
def spool(ctx: click.Context, spool_dir: Path | None) -> None:
    """List the journals `chaos run` could not publish, and why; `send` sends them again."""
    if ctx.invoked_subcommand is not None:
        return
    # Imported when used: `chaoshub` alone (and the server's commands) never load the control.
    from chaoshub_client.control import REJECTED_SUFFIX, parked_journals, spool_folder

    folder = spool_dir or spool_folder()
    paths = parked_journals(folder)
    if not paths:
        click.echo(f"No journal is waiting in {folder}.")
        return
    click.echo(f"{len(paths)} journal(s) in {folder}:")
    for path in paths:
        record = _read(path)
        state = ("set aside (sent again only by `chaoshub spool send`)"
                 if path.name.endswith(REJECTED_SUFFIX) else "waiting (sent again by the next "
                 "run, or `chaoshub spool send`)")
        click.echo(f"\n{path.name}\n  {state}")
        if record is None:
            click.echo("  not readable as a journal this client wrote")
            continue
        journal = record.get("journal") if isinstance(record.get("journal"), dict) else {}
        title = (journal.get("experiment") or {}).get("title") if isinstance(
            journal.get("experiment"), dict) else None
        click.echo(f"  run of {title or 'an untitled experiment'!r}, "
                   f"{journal.get('status', '?')}, at {journal.get('start', '?')}")
        click.echo(f"  for {record.get('org')}/{record.get('workspace')} on "
                   f"{record.get('hub_url')}, kept since {record.get('spooled_at')}")
        click.echo(f"  why: {record.get('reason') or 'not recorded'}")


@spool.command()
@_folder_option
@click.option("--settings", "settings_path", default="~/.chaostoolkit/settings.yaml",
              show_default=True, type=click.Path(dir_okay=False), help=SETTINGS_HELP)
def send(spool_dir: Path | None, settings_path: str) -> None:
    """Send every kept journal again, with the token logged in for its hub; says what came
    of each, and exits 1 when any is still kept."""
    from chaoshub_client.control import HubReporter, HubSettings, parked_journals, spool_folder

    folder = spool_dir or spool_folder()
    paths = parked_journals(folder)
    if not paths:
        click.echo(f"No journal is waiting in {folder}.")
        return
    settings = _settings(Path(settings_path).expanduser())
    kept = 0
    for path in paths:
        record = _read(path)
        if record is None:
            click.echo(f"{path.name}: skipped: not readable as a journal this client wrote")
            kept += 1
            continue
        url = str(record.get("hub_url") or "")
        token = _token(settings, url)
        if not token:
            click.echo(f"{path.name}: skipped: no token for {url} (run `chaoshub login --url "
                       f"{url} ...` or set CHAOSHUB_TOKEN)")
            kept += 1
            continue
        reporter = HubReporter(HubSettings(url, token, str(record.get("org") or ""),
                                           str(record.get("workspace") or "")), folder)
        outcome, reason = reporter.resend(path)
        if outcome != "sent":
            kept += 1
        said = OUTCOMES.get(outcome, f"skipped: {reason}")
        detail = "" if outcome in ("sent", "skipped") else f" ({reason})"
        click.echo(f"{path.name}: {said}{detail}")
    if kept:
        raise click.ClickException(f"{kept} of {len(paths)} journal(s) still kept in {folder}")
    click.echo(f"All {len(paths)} journal(s) sent.")


def _read(path: Path) -> dict[str, Any] | None:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _settings(path: Path) -> dict[str, Any]:
    try:
        settings = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else {}
    except (OSError, yaml.YAMLError) as exc:
        raise click.ClickException(f"{path} cannot be read: {yaml_problem(exc)}") from exc
    return settings if isinstance(settings, dict) else {}


def _token(settings: dict[str, Any], url: str) -> str | None:
    """The token for the hub at `url`: CHAOSHUB_TOKEN, else the one `chaoshub login` wrote for
    that hub (never another hub's token)."""
    vendor = settings.get("vendor") if isinstance(settings.get("vendor"), dict) else {}
    hub = vendor.get("chaoshub") if isinstance(vendor.get("chaoshub"), dict) else {}
    # The environment's token goes only to the hub it is for: CHAOSHUB_URL's, else the
    # settings' (a journal may be kept for another hub).
    named = os.environ.get("CHAOSHUB_URL") or str(hub.get("hub_url") or "")
    if os.environ.get("CHAOSHUB_TOKEN") and named.rstrip("/") == url:
        return os.environ["CHAOSHUB_TOKEN"]
    if str(hub.get("hub_url") or "").rstrip("/") == url and isinstance(hub.get("token"), str):
        return hub["token"]
    auths = settings.get("auths") if isinstance(settings.get("auths"), dict) else {}
    entry = auths.get(urlparse(url).netloc)
    if isinstance(entry, dict) and entry.get("type", "bearer") == "bearer" and \
            isinstance(entry.get("value"), str):
        return entry["value"]
    return None
