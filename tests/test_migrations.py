"""Each service's Alembic history: one head, and models that match what the migrations build."""

from __future__ import annotations

import json

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

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


def test_tokens_made_from_presets_keep_what_their_preset_gives(tmp_path, signing_key_file):
    from chaoshub import create_app

    app = create_app({"CHAOSHUB_INSTANCE_PATH": str(tmp_path),
                      "CHAOSHUB_SIGNING_KEY_FILE": str(signing_key_file)})
    migrate.upgrade(app, ("auth",), "auth_0002")
    old_full = ["experiments:read", "experiments:write", "executions:read", "executions:write",
                "runs:execute"]
    made = {"full": old_full, "read-only": ["experiments:read", "executions:read"],
            "chosen": ["experiments:read", "executions:write"]}
    with app.extensions["chaoshub.databases"]["auth"].engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO accounts (id, username, username_key, display_name, created_at) "
            "VALUES ('a1', 'alice', 'alice', 'Alice', '2026-01-01')"))
        for name, scopes in made.items():
            connection.execute(text(
                "INSERT INTO api_tokens (id, account_id, name, token_hash, hint, scopes, "
                "created_at, expires_at) VALUES (:id, 'a1', :id, :id, 'chub_x', :scopes, "
                "'2026-01-01', '2027-01-01')"), {"id": name, "scopes": json.dumps(scopes)})
    migrate.upgrade(app)
    with app.extensions["chaoshub.databases"]["auth"].engine.begin() as connection:
        scopes = {row.id: json.loads(row.scopes) if isinstance(row.scopes, str) else row.scopes
                  for row in connection.execute(text("SELECT id, scopes FROM api_tokens"))}
    assert scopes == {"full": [*old_full, "orgs:read", "audit:read"],
                      "read-only": ["experiments:read", "executions:read", "orgs:read"],
                      "chosen": made["chosen"]}


def test_experiments_from_git_keep_every_version_tag_and_contribution(tmp_path,
                                                                     signing_key_file):
    # SQLite's batch mode would copy the experiments table, and dropping the old one there
    # deletes every row that cascades from it.
    from chaoshub import create_app

    app = create_app({
        "CHAOSHUB_INSTANCE_PATH": str(tmp_path),
        "CHAOSHUB_SIGNING_KEY_FILE": str(signing_key_file),
        "EXPERIMENT_DATABASE_URL": f"sqlite:///{tmp_path / 'experiment.db'}",
    })
    migrate.upgrade(app, ("experiment",), "experiment_0016")
    counted = ("experiments", "experiment_versions", "experiment_tags",
               "experiment_contributions")
    with app.app_context(), database("experiment").engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO experiments (id, workspace_id, org_id, title, description, tags,"
            " document, created_by, version, created_at, updated_at) VALUES ('e', 'w', 'o',"
            " 't', '', '[\"x\"]', '{}', 'a', 1, '2026-03-01', '2026-03-01')"))
        connection.execute(text(
            "INSERT INTO experiment_versions (id, experiment_id, number, content_hash,"
            " document, author, author_name, message, created_at) VALUES ('v', 'e', 1, 'h',"
            " '{}', 'a', 'a', 'm', '2026-03-01')"))
        connection.execute(text("INSERT INTO experiment_tags (experiment_id, tag)"
                                " VALUES ('e', 'x')"))
        connection.execute(text("INSERT INTO experiment_contributions (experiment_id, name,"
                                " level) VALUES ('e', 'availability', 'high')"))
    migrate.upgrade(app, ("experiment",))
    with app.app_context(), database("experiment").engine.connect() as connection:
        found = {name: connection.execute(text(f"SELECT count(*) FROM {name}")).scalar()
                 for name in counted}
        removed = connection.execute(text("SELECT removed_upstream FROM experiments")).scalar()
    assert found == dict.fromkeys(counted, 1)
    assert removed in (0, False)
    # And back: dropping the columns copies nothing that cascades either.
    from alembic import command

    config = migrate.alembic_config("experiment")
    with app.app_context(), database("experiment").engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "experiment_0016")
    with app.app_context(), database("experiment").engine.connect() as connection:
        found = {name: connection.execute(text(f"SELECT count(*) FROM {name}")).scalar()
                 for name in counted}
        columns = {row[1] for row in connection.execute(text("PRAGMA table_info(experiments)"))}
    app.extensions["chaoshub.databases"]["experiment"].engine.dispose()
    assert found == dict.fromkeys(counted, 1)
    assert "source_path" not in columns and "removed_upstream" not in columns
