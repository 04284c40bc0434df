"""The server's `chaoshub` subcommands: serve the hub, migrate its databases, bootstrap accounts.

The `chaoshub` command itself belongs to the chaoshub-client package, which loads these through
the `chaoshub.commands` entry points that pyproject.toml lists (one per command of `main`).
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import click
from werkzeug.serving import WSGIRequestHandler

from chaoshub import create_app
from chaoshub.core import events, heap, metrics, migrate, process
from chaoshub.core.config import SERVICES, ConfigError
from chaoshub.core.errors import HubError

SERVICE_CHOICE = click.Choice(SERVICES)


def _app(service: str | None = None):
    overrides = {"CHAOSHUB_SERVICES": service} if service else None
    try:
        return create_app(overrides)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


@click.group()
def main() -> None:
    """ChaosHub: keep, run and read Chaos Toolkit experiments."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=int, help="Port to listen on.")
@click.option("--service", type=SERVICE_CHOICE, help="Host only this service (split mode).")
@click.option("--production", is_flag=True, help="Serve with gunicorn instead of the dev server.")
@click.option("--workers", default=2, show_default=True, help="gunicorn workers (--production).")
@click.option("--migrate/--no-migrate", "run_migrations", default=True, show_default=True,
              help="Migrate the hosted services' databases to head first.")
@click.option("--worker/--no-worker", "embedded_worker", default=True, show_default=True,
              help="Start one worker process beside the server to run experiments (when it "
                   "hosts the experiment service).")
def run(host, port, service, production, workers, run_migrations, embedded_worker) -> None:
    """Serve the hub (or one of its services)."""
    process.hide_from_children()  # a run's child of the same user reads nothing of the server
    if production:
        metrics.prepare_multiprocess_dir()  # before the app is made: its metrics go there
    app = _app(service)
    if run_migrations:
        migrate.upgrade(app)
    _reserve_org_names(app)
    hosted = ", ".join(app.config["CHAOSHUB_SERVICES"])
    click.echo(f"ChaosHub ({hosted}) on http://{host}:{port}  instance: {app.instance_path}")
    if embedded_worker and "experiment" in app.config["CHAOSHUB_SERVICES"]:
        _start_embedded_worker(service)
    # Once, here: gunicorn's workers fork from this process with the app loaded.
    heap.freeze_loaded()
    if production:
        # Each worker starts polling for events on its first request: a thread started here
        # would stay in the master, which serves nothing.
        _serve_with_gunicorn(app, host, port, workers)
    else:
        events.start_polling(app)  # what waited while this process was down arrives now
        app.run(host=host, port=port, debug=False, use_reloader=False, threaded=True,
                request_handler=_NoAccessLog)


class _NoAccessLog(WSGIRequestHandler):
    """The dev server's requests, without its access log: the hub writes a line of its own."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Nothing: chaoshub.access logs each request."""


@main.command()
@click.option("--burst", is_flag=True, help="Quit once no run waits.")
def worker(burst) -> None:
    """Run the experiments queued on the hub: from Redis (RQ) when REDIS_URL is set, else by
    polling the database."""
    _work(None, burst)


def _work(service: str | None, burst: bool = False, parent: int | None = None) -> None:
    from chaoshub.core import logs
    from chaoshub.experiment import service as experiment

    # A worker serves no /metrics: values it wrote to the server's folder would stay there.
    os.environ.pop(metrics.MULTIPROC_ENV, None)
    app = _app(service)
    logs.install()
    where = (f"the {app.config['RUNS_QUEUE']} queue of Redis" if app.config["REDIS_URL"]
             else "the database (no REDIS_URL)")
    click.echo(f"ChaosHub worker: runs from {where}")
    experiment.serve_runs(app, burst, parent)


def _start_embedded_worker(service: str | None) -> None:
    import multiprocessing

    # A fresh interpreter, not a fork of a server that may hold threads and connections; a
    # daemon, so that it stops with the server.
    process = multiprocessing.get_context("spawn").Process(
        target=_work, args=(service, False, os.getpid()), name="chaoshub-worker", daemon=True)
    process.start()
    # SIGTERM exits through Python, whose exit stops the daemon worker; a SIGKILLed server
    # leaves it orphaned, and it notices within seconds.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    click.echo(f"ChaosHub embedded worker: pid {process.pid}")


def _reserve_org_names(app) -> None:
    # Orgs made before auth kept the namespace that usernames share with them: auth learns
    # their names before this process serves a sign-up. Idempotent, so every start does it.
    if "dashboard" not in app.config["CHAOSHUB_SERVICES"]:
        return
    from chaoshub.dashboard import service as dashboard

    with app.app_context():
        try:
            taken = dashboard.reserve_existing_names()
        except HubError as exc:
            click.echo(f"warning: org names not reserved with auth yet (restart to retry): {exc}",
                       err=True)
            return
    for name in taken:
        click.echo(f"warning: the org name {name!r} is an account's too", err=True)


def _serve_with_gunicorn(app, host: str, port: int, workers: int) -> None:
    from gunicorn.app.base import BaseApplication

    class Hub(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            # Threads: a run's live events hold one each while they are watched.
            self.cfg.set("threads", 16)
            # No access log of gunicorn's: the hub writes one line per request (chaoshub.access).
            self.cfg.set("child_exit", metrics.child_exit)

        def load(self):
            return app

    # What this process counted making the app (its pools' connections) is no worker's.
    metrics.forget_process(os.getpid())
    Hub().run()


@main.group()
def db() -> None:
    """Database migrations, one history per service."""


@db.command()
@click.option("--service", type=SERVICE_CHOICE, help="Only this service's database.")
@click.option("--revision", default="head", show_default=True)
def upgrade(service, revision) -> None:
    """Migrate the databases (all three by default) to a revision."""
    app = _app()
    services = (service,) if service else app.config["CHAOSHUB_SERVICES"]
    migrate.upgrade(app, tuple(services), revision)
    for name, current in migrate.current(app).items():
        if name in services:
            click.echo(f"{name}: {current}")
    if revision == "head" and {"auth", "dashboard"} <= set(services):
        # Servers under gunicorn never pass through `chaoshub run`: the migration step (the
        # Kubernetes Job, before any server starts) is where a deployment reserves them.
        _reserve_org_names(app)


@db.command()
def current() -> None:
    """Show the revision each database is at, and its head."""
    app = _app()
    for name, revision in migrate.current(app).items():
        heads = ", ".join(migrate.heads(name))
        state = "up to date" if revision in migrate.heads(name) else f"head is {heads}"
        click.echo(f"{name}: {revision or '(empty)'} ({state})")


@main.group()
def user() -> None:
    """Accounts."""


@user.command("create")
@click.option("--username", required=True)
@click.option("--display-name", default="")
@click.option("--password-stdin", is_flag=True, required=True,
              help="Read the password from standard input (never from the command line).")
def create_user(username, display_name, password_stdin) -> None:
    """Create a local account and its personal org, as the sign-up form does."""
    from chaoshub.auth import service as auth

    password = sys.stdin.readline().rstrip("\r\n")
    app = _app()
    with app.app_context():
        try:
            account = auth.create_local_account(username, password, display_name)
        except HubError as exc:
            raise _click_error(exc) from exc
    click.echo(f"created {account.username} ({account.id}) with its personal org")


@main.group()
def token() -> None:
    """API tokens."""


@token.command("create")
@click.option("--username", required=True, help="The account the token acts for.")
@click.option("--name", required=True, help="What the token is for, e.g. 'CI on main'.")
@click.option("--scopes", required=True,
              help="Comma-separated scopes, or the presets read-only / full.")
@click.option("--expires-in-days", type=int, default=None, help="Default 90.")
def create_token(username, name, scopes, expires_in_days) -> None:
    """Make an API token and print its secret (shown this once)."""
    from chaoshub.auth import service as auth

    app = _app()
    with app.app_context():
        try:
            new = auth.create_token_for(username, name,
                                        [s.strip() for s in scopes.split(",") if s.strip()],
                                        expires_in_days)
        except HubError as exc:
            raise _click_error(exc) from exc
    click.echo(f"# {new.token.name}: {', '.join(new.token.scopes)}; "
               f"expires {new.token.expires_at:%Y-%m-%d}", err=True)
    click.echo(new.secret)


def _click_error(exc: HubError) -> click.ClickException:
    details = "; ".join(f"{d.get('pointer')}: {d.get('message')}" for d in (exc.details or [])
                        if isinstance(d, dict))
    return click.ClickException(f"{exc.message}{': ' + details if details else ''}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=int, help="Port to listen on.")
def route(host, port) -> None:
    """Serve one public address in front of split services (their *_SERVICE_URL settings)."""
    from werkzeug.serving import run_simple

    from chaoshub.core import logs
    from chaoshub.router import Router, RouterRequestHandler, log_settings, max_body, service_urls

    try:
        urls, limit = service_urls(), max_body()
        # Its lines (the access log's too) scrubbed and shaped as the services' are.
        logs.configure(*log_settings())
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    targets = ", ".join(f"{service} at {url}" for service, url in urls.items())
    click.echo(f"ChaosHub router on http://{host}:{port}: {targets}")
    run_simple(host, port, Router(urls, max_body=limit), threaded=True,
               request_handler=RouterRequestHandler)


@main.group()
def audit() -> None:
    """Orgs' audit logs."""


@audit.command("verify")
@click.option("--org", "org_name", default=None, help="Only this org's chain (any of its names).")
def verify_audit(org_name) -> None:
    """Walk every org's audit chain; exit 1 naming the first broken entry of each broken one."""
    from chaoshub.dashboard import service as dashboard

    app = _app()
    with app.app_context():
        try:
            breaks = dashboard.verify_audit_chains(org_name)
        except HubError as exc:
            raise _click_error(exc) from exc
    for broken in breaks:
        org = broken.org_name or f"deleted org {broken.org_id}"
        click.echo(f"{org}: audit entry {broken.entry_id} is broken: {broken.reason}", err=True)
    if breaks:
        sys.exit(1)
    click.echo(f"audit chains intact ({'org ' + org_name if org_name else 'every org'})")


@main.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--keys/--no-keys", "with_keys", default=True, show_default=True,
              help="Copy the signing, service, session and run-secrets keys too.")
def backup(folder, with_keys) -> None:
    """Back up the three databases and the keys into FOLDER (new or empty), while the hub
    serves."""
    from chaoshub.core import backup as backups

    app = _app_of_every_service()
    try:
        manifest = backups.backup(app, folder, with_keys)
    except backups.BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    for service, database in manifest["databases"].items():
        rows = sum(table["rows"] for table in database["tables"])
        click.echo(f"{service}: {rows} rows at revision {database['revision']}")
    keys = ", ".join(key["name"] for key in manifest["keys"]) or "none"
    click.echo(f"keys: {keys}")
    click.echo(f"backup written to {folder} (owner-only: it holds the hub's secrets)")


@main.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--keys/--no-keys", "with_keys", default=True, show_default=True,
              help="Put the backup's keys in the instance folder.")
def restore(folder, with_keys) -> None:
    """Restore a backup into empty databases migrated to its revisions (hub stopped)."""
    from chaoshub.core import backup as backups

    app = _app_of_every_service()
    try:
        restored = backups.restore(app, folder, with_keys)
    except backups.BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    for service, rows in restored.rows.items():
        click.echo(f"{service}: {rows} rows restored")
    click.echo(f"keys: {', '.join(restored.keys) or 'none'} in {app.instance_path}")
    for name in restored.overridden:
        click.echo(f"warning: this hub's settings name another {name} than the backup's "
                   "(the instance folder's copy is used only without them)", err=True)


def _app_of_every_service():
    # Backups take every database at once, whatever this process would host.
    return _app(",".join(SERVICES))
