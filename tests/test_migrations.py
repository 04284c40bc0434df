"""Each service's Alembic history: one head, and models that match what the migrations build."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from chaoshub.core import migrate
from chaoshub.core.config import SERVICES
from chaoshub.core.db import database


@pytest.mark.parametrize("service", SERVICES)
def test_each_history_has_one_head(service):
    assert len(migrate.heads(service)) == 1


def test_models_match_the_migrations(app, backend):
    with app.app_context():
        for service in SERVICES:
            with database(service).engine.connect() as connection:
                context = MigrationContext.configure(
                    connection,
                    opts={"compare_type": True,
                          "version_table": migrate.version_table(service)},
                )
                diff = compare_metadata(context, migrate.metadata(service))
                assert diff == [], f"{service} ({backend}): {diff}"


def test_each_database_holds_only_its_own_tables_and_version(app, backend):
    with app.app_context():
        for service in SERVICES:
            tables = set(inspect(database(service).engine).get_table_names())
            expected = set(migrate.metadata(service).tables) | {migrate.version_table(service)}
            assert tables == expected
    assert migrate.current(app) == {s: migrate.heads(s)[0] for s in SERVICES}


def test_upgrade_and_downgrade_round_trip(tmp_path, signing_key_file):
    from alembic import command

    from chaoshub import create_app

    app = create_app({
        "CHAOSHUB_INSTANCE_PATH": str(tmp_path),
        "CHAOSHUB_SIGNING_KEY_FILE": str(signing_key_file),
    })
    migrate.upgrade(app)
    for service in SERVICES:
        config = migrate.alembic_config(service)
        with app.extensions["chaoshub.databases"][service].engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "base")
    assert migrate.current(app) == dict.fromkeys(SERVICES)
    migrate.upgrade(app)
    assert migrate.current(app) == {s: migrate.heads(s)[0] for s in SERVICES}
