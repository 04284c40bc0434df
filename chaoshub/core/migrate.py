"""One Alembic history per service database, under migrations/<service>."""

from __future__ import annotations

import importlib
import os
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask
from sqlalchemy import MetaData

from chaoshub.core.db import EXTENSION as DATABASES

MIGRATIONS = Path(
    os.environ.get("CHAOSHUB_MIGRATIONS_PATH", Path(__file__).resolve().parents[2] / "migrations")
)


def version_table(service: str) -> str:
    """Each history keeps its own version table, even if two services shared a database."""
    return f"alembic_version_{service}"


def metadata(service: str) -> MetaData:
    """The SQLAlchemy metadata of a service's models."""
    return importlib.import_module(f"chaoshub.{service}.models").Base.metadata


def alembic_config(service: str) -> Config:
    """The Alembic configuration of one service's history."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS / service))
    config.set_main_option("version_table", version_table(service))
    config.attributes["service"] = service
    return config


def heads(service: str) -> list[str]:
    """The head revisions of a service's history (one, when the history is healthy)."""
    return list(ScriptDirectory.from_config(alembic_config(service)).get_heads())


def upgrade(app: Flask, services: tuple[str, ...] | None = None, revision: str = "head") -> None:
    """Migrate the databases of `services` (all hosted ones by default) to `revision`."""
    for service in services or app.config["CHAOSHUB_SERVICES"]:
        config = alembic_config(service)
        with app.extensions[DATABASES][service].engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)


def current(app: Flask) -> dict[str, str | None]:
    """The revision each hosted service's database is at."""
    revisions = {}
    for service in app.config["CHAOSHUB_SERVICES"]:
        with app.extensions[DATABASES][service].engine.connect() as connection:
            ctx = MigrationContext.configure(
                connection, opts={"version_table": version_table(service)}
            )
            revisions[service] = ctx.get_current_revision()
    return revisions


def run_env() -> None:
    """The body of every migrations/<service>/env.py: migrate over the given connection."""
    config = context.config
    service = config.attributes["service"]
    connection = config.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=metadata(service),
        version_table=version_table(service),
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
