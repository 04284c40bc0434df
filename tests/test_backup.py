"""`chaoshub backup` and `chaoshub restore`: a whole hub goes into a folder and comes back, on
SQLite and on PostgreSQL, into the same engine and into the other one."""

from __future__ import annotations

import json
import shutil
import stat
import threading
import time
import uuid
from pathlib import Path

import psycopg
import pytest
import redis
from click.testing import CliRunner
from sqlalchemy import select

from chaoshub import create_app
from chaoshub.cli import main
from chaoshub.core import backup as backups
from chaoshub.core import db, migrate
from chaoshub.core.config import SERVICES
from chaoshub.experiment import runs
from tests.conftest import (
    POSTGRES_URL,
    _settings,
    _sqlite_urls,
    csrf,
    post_json,
    sign_in,
    signed_up_client,
    unavailable,
)
from tests.experiment_data import create, experiment, journal, make_token, variant
from tests.run_data import runnable

READER = ["experiments:read", "executions:read", "orgs:read"]


def cli(settings: dict, *args: str):
    """Run the real `chaoshub` command with a hub's settings as its environment."""
    env = {key: str(value) for key, value in settings.items()}
    env["CHAOSHUB_SERVICES"] = None  # every service: what a backup reads
    return CliRunner().invoke(main, list(args), env=env)


def populate(app) -> dict:
    """A hub with two people, a team org, experiments with versions, executions with journals,
    hub runs with events, tokens and audit entries; what the checks need of it."""
    alice = signed_up_client(app, "alice")
    bob = signed_up_client(app, "bob")
    assert post_json(alice, "/api/v1/orgs", {"name": "acme"}).status_code == 201
    assert post_json(alice, "/api/v1/orgs/acme/workspaces",
                     {"name": "core", "visibility": "private"}).status_code == 201
    assert post_json(alice, "/api/v1/orgs/acme/members",
                     {"username": "bob", "role": "member"}).status_code == 201
    experiments = [create(alice), create(alice, "acme", "core", runnable("Team run")),
                   create(bob, "bob", "Personal")]
    first = experiments[0]["id"]
    for title in ("Second title", "Third title"):
        changed = {**experiment(), "title": title}
        assert alice.put(f"/api/v1/experiments/{first}", json=changed,
                         headers={"X-CSRF-Token": csrf(alice)}).status_code == 200
    for outcome, target in (("passed", first), ("deviated", first),
                            ("passed", experiments[1]["id"])):
        published = alice.post(f"/api/v1/experiments/{target}/executions",
                               json=variant(outcome), headers={"X-CSRF-Token": csrf(alice)})
        assert published.status_code == 201, published.get_json()
    token = make_token(alice, [*READER, "executions:write", "runs:execute"])
    run_ids = []
    for _ in range(2):
        started = app.test_client().post(f"/api/v1/experiments/{experiments[1]['id']}/runs",
                                         json={}, headers={"Authorization": f"Bearer {token}"})
        assert started.status_code == 202, started.get_json()
        run_ids.append(started.get_json()["id"])
    with app.app_context():
        for run_id in run_ids:
            runs.record_events(run_id, [
                {"seq": 1, "type": "run-started", "timestamp": "2026-01-01T00:00:00Z"},
                {"seq": 2, "type": "activity-started", "timestamp": "2026-01-01T00:00:01Z",
                 "name": "alive"}])
    return {"token": token, "experiments": [e["id"] for e in experiments], "runs": run_ids}


def rows(settings: dict) -> dict[str, dict[str, list]]:
    """Every row of every table of the hub's three databases, by primary key."""
    app = create_app(settings)
    found = {}
    try:
        for service in SERVICES:
            tables = {}
            with app.extensions[db.EXTENSION][service].engine.connect() as connection:
                for table in migrate.metadata(service).sorted_tables:
                    query = select(table).order_by(*table.primary_key.columns)
                    tables[table.name] = [tuple(r) for r in connection.execute(query)]
            found[service] = tables
    finally:
        db.dispose(app)
    return found


@pytest.fixture(scope="module")
def postgres_templates(tmp_path_factory, signing_key_file):
    """Three PostgreSQL databases migrated once, copied (CREATE DATABASE ... TEMPLATE) for
    each new hub; dropped with every copy at the end."""
    made: list[str] = []
    suffix = uuid.uuid4().hex[:8]
    try:
        admin = psycopg.connect(f"{POSTGRES_URL}/postgres", autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        unavailable("PostgreSQL", exc)

    def database(template: str | None = None) -> dict[str, str]:
        names = {s: f"chaoshub_restore_{uuid.uuid4().hex[:8]}_{s}" for s in SERVICES}
        for service, name in names.items():
            copied = f' TEMPLATE "{template}_{service}"' if template else ""
            admin.execute(f'CREATE DATABASE "{name}"{copied}')
            made.append(name)
        base = POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://", 1)
        return {s: f"{base}/{name}" for s, name in names.items()}

    with admin:
        template = f"chaoshub_template_{suffix}"
        names = {s: f"{template}_{s}" for s in SERVICES}
        for name in names.values():
            admin.execute(f'CREATE DATABASE "{name}"')
            made.append(name)
        base = POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://", 1)
        urls = {s: f"{base}/{name}" for s, name in names.items()}
        app = create_app(_settings(tmp_path_factory.mktemp("pg-template"), signing_key_file,
                                   urls))
        migrate.upgrade(app)
        db.dispose(app)  # a template takes no connection while it is copied
        yield lambda: database(template)
        for name in reversed(made):
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def new_hubs(request, tmp_path, signing_key_file):
    """Makes the settings of a hub on empty, freshly migrated databases (new SQLite files or
    new PostgreSQL databases) with an instance folder of its own."""

    def make(engine: str) -> dict:
        folder = tmp_path / f"new-{uuid.uuid4().hex[:6]}"
        folder.mkdir()
        if engine == "sqlite":
            template = request.getfixturevalue("sqlite_template")
            for service in SERVICES:
                shutil.copy(template / f"{service}.db", folder / f"{service}.db")
            return _settings(folder, signing_key_file, _sqlite_urls(folder))
        # As in production: PostgreSQL with Redis, whose entries of this hub restore empties.
        urls = request.getfixturevalue("postgres_templates")()
        return {**_settings(folder, signing_key_file, urls),
                "REDIS_URL": request.getfixturevalue("redis_url"),
                "CACHE_PREFIX": f"chaoshub-test-{uuid.uuid4().hex[:12]}"}

    return make


def test_a_hub_comes_back_whole_from_its_backup(app, settings, backend, new_hubs, tmp_path):
    made = populate(app)
    folder = tmp_path / "backup"
    backed_up = cli(settings, "backup", str(folder))
    assert backed_up.exit_code == 0, backed_up.output
    assert "auth:" in backed_up.output and "keys: signing-key.pem" in backed_up.output
    assert "test-secret" not in backed_up.output  # no secret printed
    manifest = json.loads((folder / "manifest.json").read_text())
    assert {s: manifest["databases"][s]["revision"] for s in SERVICES} == {
        s: migrate.heads(s)[0] for s in SERVICES}
    counts = {t["name"]: t["rows"] for t in manifest["databases"]["experiment"]["tables"]}
    assert counts["experiment_versions"] == 5 and counts["execution_journals"] == 3
    assert counts["run_events"] == 4
    written = [p for p in folder.rglob("*")]
    assert all(stat.S_IMODE(p.stat().st_mode) == (0o700 if p.is_dir() else 0o600)
               for p in [folder, *written])
    before = rows(settings)
    assert before["dashboard"]["audit_log"]

    other = "postgresql" if backend == "sqlite" else "sqlite"
    for engine in (backend, other):  # the same engine, and a move to the other one
        target = new_hubs(engine)
        stale = _stale_cache_entry(target)
        restored = cli(target, "restore", str(folder))
        assert restored.exit_code == 0, restored.output
        assert stale() is None  # what the cache held of the empty hub is gone
        assert rows(target) == before
        verified = cli(target, "audit", "verify")
        assert verified.exit_code == 0 and "audit chains intact" in verified.output

        hub = create_app(target)
        try:
            _check_reads(hub, made)
            # The restored hub goes on: new entries follow the restored ones in each chain.
            alice = hub.test_client()
            assert sign_in(alice, "alice").status_code == 303
            make_token(alice, READER)
        finally:
            db.dispose(hub)
        assert cli(target, "audit", "verify").exit_code == 0

        # A second restore into the now used databases is refused, and changes nothing.
        now = rows(target)
        refused = cli(target, "restore", str(folder))
        assert refused.exit_code == 1, refused.output
        assert "is not empty" in refused.output, refused.output
        assert len(refused.output.splitlines()) == 1, repr(refused.output)
        assert rows(target) == now


def _check_reads(hub, made: dict) -> None:
    client = hub.test_client()
    bearer = {"Authorization": f"Bearer {made['token']}"}  # made before the backup
    first = client.get(f"/api/v1/experiments/{made['experiments'][0]}", headers=bearer)
    assert first.status_code == 200 and first.get_json()["title"] == "Third title"
    versions = client.get(f"/api/v1/experiments/{made['experiments'][0]}/versions",
                          headers=bearer).get_json()
    assert len(versions["versions"]) == 3
    executions = client.get(f"/api/v1/experiments/{made['experiments'][0]}/executions",
                            headers=bearer).get_json()["executions"]
    assert sorted(e["outcome"] for e in executions) == ["deviated", "passed"]
    for execution in executions:
        kept = client.get(f"/api/v1/executions/{execution['id']}/journal", headers=bearer)
        assert kept.status_code == 200
        assert kept.get_json()["experiment"]["title"] == journal()["experiment"]["title"]
    run = client.get(f"/api/v1/runs/{made['runs'][0]}", headers=bearer).get_json()
    assert [e["type"] for e in run["events"]] == ["run-started", "activity-started"]


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_missing_corrupt_or_partial_backup_is_refused_with_one_line(settings, tmp_path,
                                                                      monkeypatch):
    folder = tmp_path / "backup"
    assert cli(settings, "backup", str(folder)).exit_code == 0
    again = cli(settings, "backup", str(folder))
    assert again.exit_code == 1 and "not an empty folder" in again.output

    def refused(where: Path) -> str:
        result = cli(settings, "restore", str(where))
        assert result.exit_code == 1, result.output
        assert len(result.output.splitlines()) == 1
        return result.output

    assert "holds no manifest.json" in refused(tmp_path / "nowhere")
    # A backup that fails half way leaves nothing that looks like one (here its keys' step).
    failing = tmp_path / "failing"
    with monkeypatch.context() as patched:
        patched.setattr(backups, "_copy_keys", _unreadable_key)
        failed = cli(settings, "backup", str(failing))
    assert failed.exit_code == 1 and "Error: a key cannot be read" in failed.output
    assert list(failing.iterdir()) == []
    table = folder / "auth" / "accounts.jsonl.gz"
    table.write_bytes(table.read_bytes()[:-4] + b"oops")
    assert "accounts.jsonl.gz does not match its checksum" in refused(folder)
    table.unlink()
    assert "incomplete: auth/accounts.jsonl.gz is missing" in refused(folder)
    (folder / "manifest.json").write_text("{not json")
    assert "is corrupt" in refused(folder)


def test_a_backup_is_one_snapshot_per_database_while_the_hub_serves(
        app, settings, backend, new_hubs, tmp_path, monkeypatch):
    alice = signed_up_client(app, "alice")
    target = create(alice)["id"]
    published: list[str] = []
    stop = threading.Event()

    failures: list[object] = []

    def publish_until_stopped():
        while not stop.is_set():
            body = {**variant("passed"), "duration": len(published) + 0.5}  # a new journal
            answer = alice.post(f"/api/v1/experiments/{target}/executions", json=body,
                                headers={"X-CSRF-Token": token})
            if answer.status_code != 201:
                failures.append(answer.get_json())
                return
            published.append(answer.get_json()["id"])

    dump_table = backups._dump_table

    def dump_then_let_writes_land(connection, table, path):
        count = dump_table(connection, table, path)
        if table.name == "executions":
            # Executions published now, before their journals' table is read, must not reach
            # the backup: neither they nor their journals are in its snapshot.
            seen = len(published)
            assert _wait(lambda: len(published) >= seen + 2)
        return count

    monkeypatch.setattr(backups, "_dump_table", dump_then_let_writes_land)
    token = csrf(alice)
    writer = threading.Thread(target=publish_until_stopped)
    writer.start()
    try:
        assert _wait(lambda: len(published) >= 1)
        folder = tmp_path / "backup"
        result = cli(settings, "backup", str(folder))
    finally:
        stop.set()
        writer.join()
    assert not failures
    assert result.exit_code == 0, result.output
    tables = {t["name"]: t["rows"] for t in json.loads((folder / "manifest.json").read_text())
              ["databases"]["experiment"]["tables"]}
    assert tables["executions"] == tables["execution_journals"] < len(published)

    restored = new_hubs(backend)
    assert cli(restored, "restore", str(folder)).exit_code == 0
    found = rows(restored)["experiment"]
    journals = {row[0] for row in found["execution_journals"]}
    with_activities = {row[0] for row in found["execution_activities"]}
    assert {row[0] for row in found["executions"]} == journals == with_activities
    assert cli(restored, "audit", "verify").exit_code == 0


def _stale_cache_entry(settings: dict):
    """Put an entry in the hub's Redis (when it has one); reads it back."""
    if not settings["REDIS_URL"]:
        return lambda: None
    client = redis.Redis.from_url(settings["REDIS_URL"])
    key = f"{settings['CACHE_PREFIX']}:auth:stale"
    client.set(key, "{}", ex=60)
    return lambda: client.get(key)


def _unreadable_key(config, folder):
    raise backups.BackupError("a key cannot be read")


def _wait(condition, seconds: float = 20) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_a_manifest_naming_a_file_outside_its_backup_is_refused(tmp_path):
    outside = tmp_path / "elsewhere.pem"
    outside.write_text("not the backup's")
    (tmp_path / "backup").mkdir()
    for named in (str(outside), "../elsewhere.pem"):
        manifest = {"databases": {}, "keys": [{"name": "signing-key.pem", "file": named,
                                              "sha256": backups._sha256(outside)}]}
        with pytest.raises(backups.BackupError, match="outside its folder"):
            backups.check_files(tmp_path / "backup", manifest)
