"""Backups of a whole hub: each service database as gzipped JSON lines, the keys, and a manifest.

The dump is logical and engine-neutral (every table of each service's metadata, in dependency
order), so a backup of a SQLite hub restores into PostgreSQL and back. Each database is read in
one snapshot (SQLite: one read transaction; PostgreSQL: REPEATABLE READ, read only) while the
hub serves. A restore goes only into empty databases migrated to the backup's revision, and
checks every file against the manifest's checksums before it writes anything.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from importlib import metadata as package_metadata
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import JSON, Connection, Table, TypeDecorator, bindparam, func, select, text
from sqlalchemy.exc import SQLAlchemyError

from chaoshub.core import migrate
from chaoshub.core.config import SERVICES
from chaoshub.core.db import EXTENSION as DATABASES

FORMAT = "chaoshub-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
BATCH = 1000  # rows read or inserted at a time: memory stays flat whatever a table holds
# Each key the hub uses: its name in the backup and the instance folder, the setting that holds
# it inline, and the setting that names a file holding it (else the instance folder's file).
KEYS = (
    ("signing-key.pem", "CHAOSHUB_SIGNING_KEY", "CHAOSHUB_SIGNING_KEY_FILE"),
    ("service-key.pem", "CHAOSHUB_SERVICE_KEY", "CHAOSHUB_SERVICE_KEY_FILE"),
    ("secret-key", "SECRET_KEY", None),
    ("run-secrets.key", "RUN_SECRETS_KEY", None),
)
# Snapshots are taken in this order: what a later one references existed in an earlier one's
# (experiment refers to dashboard's workspaces, dashboard to auth's accounts).
SNAPSHOT_ORDER = ("experiment", "dashboard", "auth")


class BackupError(RuntimeError):
    """A backup or restore that cannot go on; its message is one line for the operator."""


@dataclass(frozen=True)
class Restored:
    """What a restore wrote: rows per service, and the keys put in the instance folder."""

    rows: dict[str, int]
    keys: list[str]
    overridden: list[str]  # keys written, but that a setting of this hub names instead


# Backing up -------------------------------------------------------------------------------------


def backup(app: Flask, folder: Path, with_keys: bool = True) -> dict[str, Any]:
    """Write every service database (and the keys) into `folder`, new or empty; the manifest."""
    _require_all_services(app)
    folder = Path(folder)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise BackupError(f"{folder} is not an empty folder: a backup goes into a new one")
    revisions = _revisions(app)
    for service, revision in revisions.items():
        if revision not in migrate.heads(service):
            raise BackupError(f"the {service} database is at {revision or 'no revision'}, not "
                              "this version's head: migrate it first (chaoshub db upgrade)")
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)
    try:
        return _write_backup(app, folder, revisions, with_keys)
    except BaseException:
        # The folder was new or empty: what a failed backup wrote goes, not left to look whole.
        for child in folder.iterdir():
            shutil.rmtree(child) if child.is_dir() else child.unlink()
        raise


def _write_backup(app: Flask, folder: Path, revisions: dict[str, str | None],
                  with_keys: bool) -> dict[str, Any]:
    manifest: dict[str, Any] = {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "chaoshub_version": _version(), "databases": {}, "keys": [],
    }
    try:
        with ExitStack() as stack:
            snapshots = {service: stack.enter_context(_snapshot(app, service))
                         for service in SNAPSHOT_ORDER}
            for service in SERVICES:
                manifest["databases"][service] = _dump_database(
                    snapshots[service], service, revisions[service], folder)
    except SQLAlchemyError as exc:
        raise BackupError(f"a database could not be read: {_first_line(exc)}") from exc
    if with_keys:
        manifest["keys"] = _copy_keys(app.config, folder)
    # Written last: a folder without it is a backup that did not finish.
    _write_private(folder / MANIFEST, json.dumps(manifest, indent=2).encode(), atomic=True)
    return manifest


@contextmanager
def _snapshot(app: Flask, service: str) -> Iterator[Connection]:
    engine = app.extensions[DATABASES][service].engine
    if engine.dialect.name == "sqlite":
        # pysqlite begins no transaction before a SELECT: one is begun here, and its first read
        # fixes the snapshot (WAL lets writers go on meanwhile).
        with engine.connect() as connection:
            connection = connection.execution_options(isolation_level="AUTOCOMMIT")
            connection.exec_driver_sql("BEGIN")
            try:
                connection.exec_driver_sql("SELECT count(*) FROM sqlite_master").all()
                yield connection
            finally:
                connection.exec_driver_sql("ROLLBACK")
        return
    with engine.connect() as connection:
        connection = connection.execution_options(isolation_level="REPEATABLE READ",
                                                  postgresql_readonly=True)
        with connection.begin():
            connection.execute(text("SELECT 1"))  # the snapshot is taken at the first statement
            yield connection


def _dump_database(connection: Connection, service: str, revision: str | None,
                   folder: Path) -> dict[str, Any]:
    (folder / service).mkdir(mode=0o700, exist_ok=True)
    tables = []
    for table in migrate.metadata(service).sorted_tables:
        relative = f"{service}/{table.name}.jsonl.gz"
        rows = _dump_table(connection, table, folder / relative)
        tables.append({"name": table.name, "rows": rows, "file": relative,
                       "sha256": _sha256(folder / relative),
                       "columns": [c.name for c in table.columns]})
    return {"dialect": connection.dialect.name, "revision": revision, "tables": tables}


def _dump_table(connection: Connection, table: Table, path: Path) -> int:
    kinds = [_kind(column) for column in table.columns]
    json_columns = [c for c, kind in zip(table.columns, kinds, strict=True) if kind == "json"]
    # A JSON column reads SQL NULL and JSON null both as None: whether it is NULL is read apart.
    query = select(*table.columns, *(c.is_(None) for c in json_columns)).order_by(
        *table.primary_key.columns)
    count = 0
    with _private_gzip(path) as out:
        result = connection.execution_options(yield_per=BATCH).execute(query)
        for row in result:
            nulls = iter(row[len(kinds):])
            cells = [_encode(value, kind, next(nulls) if kind == "json" else False)
                     for value, kind in zip(row[:len(kinds)], kinds, strict=True)]
            out.write(json.dumps(cells, ensure_ascii=False, separators=(",", ":")).encode())
            out.write(b"\n")
            count += 1
    return count


def _copy_keys(config: dict[str, Any], folder: Path) -> list[dict[str, str]]:
    (folder / "keys").mkdir(mode=0o700, exist_ok=True)
    copied = []
    for name, inline, file_setting in KEYS:
        used = _key_in_use(config, name, inline, file_setting)
        if used is None:
            continue  # never made: nothing was signed or sealed with it
        content, source = used
        _write_private(folder / "keys" / name, content.encode())
        copied.append({"name": name, "file": f"keys/{name}", "source": source,
                       "sha256": _sha256(folder / "keys" / name)})
    return copied


def _key_in_use(config: dict[str, Any], name: str, inline: str, file_setting: str | None
                ) -> tuple[str, str] | None:
    """The key the hub uses under `name`, and where it comes from; None when it has none."""
    own = Path(config["CHAOSHUB_INSTANCE_PATH"]) / name
    own_content = own.read_text() if own.is_file() else None
    if config.get(inline):
        # The app keeps a development SECRET_KEY read from the instance folder in its settings.
        if own_content is not None and own_content.strip() == str(config[inline]).strip():
            return own_content, "instance folder"
        return str(config[inline]), f"setting {inline}"
    if file_setting and config.get(file_setting):
        path = Path(config[file_setting])
        if not path.is_file():
            raise BackupError(f"{file_setting} names no readable file")
        return path.read_text(), f"file of {file_setting}"
    return (own_content, "instance folder") if own_content is not None else None


# Restoring --------------------------------------------------------------------------------------


def restore(app: Flask, folder: Path, with_keys: bool = True) -> Restored:
    """Load a backup into this hub's empty databases (migrated to the backup's revisions), then
    put its keys in the instance folder; nothing is written unless every check passes."""
    _require_all_services(app)
    folder = Path(folder)
    manifest = read_manifest(folder)
    check_files(folder, manifest)
    revisions = _revisions(app)
    for service in SERVICES:
        wanted = manifest["databases"][service]["revision"]
        if revisions[service] != wanted:
            raise BackupError(
                f"the {service} database is at {revisions[service] or 'no revision'}, the "
                f"backup at {wanted}: migrate it first (chaoshub db upgrade --service {service} "
                f"--revision {wanted})")
        tables = {t.name: t for t in migrate.metadata(service).sorted_tables}
        for saved in manifest["databases"][service]["tables"]:
            table = tables.get(saved["name"])
            if table is None or [c.name for c in table.columns] != saved["columns"]:
                raise BackupError(f"{service}.{saved['name']} differs from this chaoshub "
                                  "version's: restore with the version that made the backup "
                                  f"({manifest.get('chaoshub_version')})")
    rows = {}
    try:
        with ExitStack() as stack:
            connections = {}
            for service in SERVICES:
                connection = stack.enter_context(app.extensions[DATABASES][service]
                                                 .engine.connect())
                stack.enter_context(connection.begin())
                connections[service] = connection
            for service, connection in connections.items():
                _require_empty(connection, service)
            for service, connection in connections.items():
                rows[service] = _load_database(connection, service,
                                               manifest["databases"][service], folder)
            # Leaving the stack commits each transaction; an error before rolls all back.
    except SQLAlchemyError as exc:
        raise BackupError(f"the restore failed and was undone: {_first_line(exc)}") from exc
    written, overridden = [], []
    if with_keys:
        written, overridden = _restore_keys(app.config, folder, manifest)
    _forget_cache(app.config)
    return Restored(rows, written, overridden)


def read_manifest(folder: Path) -> dict[str, Any]:
    """The backup's manifest, checked for shape; BackupError when missing or corrupt."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise BackupError(f"{folder} holds no {MANIFEST}: not a backup, or one that did not "
                          "finish")
    try:
        manifest = json.loads(path.read_text())
        if manifest.get("format") != FORMAT:
            raise ValueError("not a chaoshub backup")
        if manifest.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"format version {manifest.get('format_version')} is not "
                             f"{FORMAT_VERSION}")
        for service in SERVICES:
            database = manifest["databases"][service]
            for table in database["tables"]:
                _ = (table["name"], table["rows"], table["file"], table["sha256"],
                     table["columns"])
        for key in manifest["keys"]:
            _ = (key["name"], key["file"], key["sha256"])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BackupError(f"{path} is corrupt: {exc}") from exc
    return manifest


def check_files(folder: Path, manifest: dict[str, Any]) -> None:
    """Every file the manifest lists is there, unchanged."""
    listed = [t for database in manifest["databases"].values() for t in database["tables"]]
    for entry in [*listed, *manifest["keys"]]:
        named = Path(entry["file"])
        if named.is_absolute() or ".." in named.parts:
            # `folder / "/etc/x"` is /etc/x: a manifest names files inside its backup only.
            raise BackupError(f"the backup is corrupt: {entry['file']} is outside its folder")
        path = Path(folder) / named
        if not path.is_file():
            raise BackupError(f"the backup is incomplete: {entry['file']} is missing")
        if _sha256(path) != entry["sha256"]:
            raise BackupError(f"the backup is corrupt: {entry['file']} does not match its "
                              "checksum")


def _require_empty(connection: Connection, service: str) -> None:
    for table in migrate.metadata(service).sorted_tables:
        if connection.execute(select(func.count()).select_from(table)).scalar():
            raise BackupError(f"the {service} database is not empty ({table.name} has rows): "
                              "a restore goes only into new, migrated databases")


def _load_database(connection: Connection, service: str, saved: dict[str, Any],
                   folder: Path) -> int:
    tables = {t.name: t for t in migrate.metadata(service).sorted_tables}
    total = 0
    for entry in saved["tables"]:  # in the dependency order they were written in
        table = tables[entry["name"]]
        count = _load_table(connection, table, folder / entry["file"])
        if count != entry["rows"]:
            raise BackupError(f"the backup is corrupt: {entry['file']} holds {count} rows, "
                              f"its manifest {entry['rows']}")
        total += count
    if connection.dialect.name == "postgresql":
        _advance_sequences(connection, tables.values())
    return total


def _load_table(connection: Connection, table: Table, path: Path) -> int:
    kinds = [_kind(column) for column in table.columns]
    # JSON cells bind with none_as_null: None is SQL NULL, JSON.NULL the JSON null.
    insert = table.insert().values({
        column.name: bindparam(column.name, type_=JSON(none_as_null=True))
        for column, kind in zip(table.columns, kinds, strict=True) if kind == "json"})
    names = [column.name for column in table.columns]
    count, batch = 0, []
    try:
        with gzip.open(path, "rt", encoding="utf-8") as lines:
            for line in lines:
                cells = json.loads(line)
                if not isinstance(cells, list) or len(cells) != len(names):
                    raise ValueError("a row does not have the table's columns")
                batch.append({name: _decode(cell, kind)
                              for name, cell, kind in zip(names, cells, kinds, strict=True)})
                if len(batch) >= BATCH:
                    connection.execute(insert, batch)
                    count, batch = count + len(batch), []
    except (OSError, EOFError, ValueError, TypeError) as exc:
        raise BackupError(f"the backup is corrupt: {path.name}: {_first_line(exc)}") from exc
    if batch:
        connection.execute(insert, batch)
        count += len(batch)
    return count


def _advance_sequences(connection: Connection, tables) -> None:
    # Rows came with their ids: each serial column's sequence goes past the highest one.
    for table in tables:
        for column in table.primary_key.columns:
            if column.autoincrement is True or (
                    column.autoincrement == "auto" and len(table.primary_key.columns) == 1
                    and column.type.python_type is int):
                connection.execute(text(
                    f"SELECT setval(pg_get_serial_sequence(:table, :column), "
                    f'coalesce(max("{column.name}"), 0) + 1, false) FROM "{table.name}"'),
                    {"table": table.name, "column": column.name})


def _restore_keys(config: dict[str, Any], folder: Path, manifest: dict[str, Any]
                  ) -> tuple[list[str], list[str]]:
    instance = Path(config["CHAOSHUB_INSTANCE_PATH"])
    instance.mkdir(parents=True, exist_ok=True)
    written, overridden = [], []
    for name, inline, file_setting in KEYS:
        key = next((k for k in manifest["keys"] if k["name"] == name), None)
        if key is None:
            continue
        used = _key_in_use(config, name, inline, file_setting)
        content = (folder / key["file"]).read_bytes()
        # An empty hub's own generated keys signed and sealed nothing that is kept: replaced.
        _write_private(instance / name, content, atomic=True)
        written.append(name)
        if used is not None and used[1] != "instance folder" and \
                used[0].strip() != content.decode().strip():
            overridden.append(name)  # a setting of this hub names another key
    return written, overridden


def _forget_cache(config: dict[str, Any]) -> None:
    # What Redis holds for this hub was read from the databases before the restore.
    if not config.get("REDIS_URL"):
        return
    import redis

    client = redis.Redis.from_url(config["REDIS_URL"])
    try:
        batch = []
        for key in client.scan_iter(match=f"{config['CACHE_PREFIX']}:*", count=BATCH):
            batch.append(key)
            if len(batch) >= BATCH:
                client.delete(*batch)
                batch = []
        if batch:
            client.delete(*batch)
    except redis.RedisError as exc:
        raise BackupError(f"restored, but the cache in Redis could not be emptied: {exc}; "
                          "empty it before the hub serves") from exc
    finally:
        client.close()


# Shared -----------------------------------------------------------------------------------------


def _require_all_services(app: Flask) -> None:
    if tuple(sorted(app.config["CHAOSHUB_SERVICES"])) != tuple(sorted(SERVICES)):
        raise BackupError("backup and restore need all three databases: run them where every "
                          "*_DATABASE_URL is set (not with CHAOSHUB_SERVICES)")


def _revisions(app: Flask) -> dict[str, str | None]:
    # Alembic says which engine it found, at INFO, for every database: not the operator's news.
    quiet = logging.getLogger("alembic.runtime.migration")
    level = quiet.level
    quiet.setLevel(logging.WARNING)
    try:
        return migrate.current(app)
    except SQLAlchemyError as exc:
        raise BackupError(f"a database cannot be reached: {_first_line(exc)}") from exc
    finally:
        quiet.setLevel(level)


def _kind(column) -> str:
    kind = column.type
    if isinstance(kind, TypeDecorator):
        kind = kind.impl_instance
    if isinstance(kind, JSON):
        return "json"
    try:
        python_type = kind.python_type
    except NotImplementedError:
        return "plain"
    if python_type is datetime:
        return "datetime"
    if python_type is date:
        return "date"
    if python_type is bytes:
        return "bytes"
    return "plain"


def _encode(value: Any, kind: str, is_null: bool) -> Any:
    if kind == "json":
        return None if is_null else [value]  # wrapped: [null] is JSON null, null is SQL NULL
    if value is None:
        return None
    if kind in ("datetime", "date"):
        return value.isoformat()
    if kind == "bytes":
        return base64.b64encode(value).decode()
    return value


def _decode(cell: Any, kind: str) -> Any:
    if cell is None:
        return None
    if kind == "json":
        if not isinstance(cell, list) or len(cell) != 1:
            raise ValueError("a JSON cell is not wrapped")
        return JSON.NULL if cell[0] is None else cell[0]
    if kind == "datetime":
        return datetime.fromisoformat(cell)
    if kind == "date":
        return date.fromisoformat(cell)
    if kind == "bytes":
        return base64.b64decode(cell)
    return cell


@contextmanager
def _private_gzip(path: Path) -> Iterator[gzip.GzipFile]:
    handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(handle, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as out:
        yield out


def _write_private(path: Path, content: bytes, atomic: bool = False) -> None:
    # Owner-only from the start: a key or a database's rows are never readable by others.
    target = path.with_name(f".{path.name}.partial") if atomic else path
    if atomic and target.exists():
        target.unlink()
    handle = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(handle, "wb") as out:
        out.write(content)
        out.flush()
        os.fsync(out.fileno())
    if atomic:
        os.replace(target, path)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as data:
        for block in iter(lambda: data.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _version() -> str:
    try:
        return package_metadata.version("chaoshub")
    except package_metadata.PackageNotFoundError:
        return "unknown"


def _first_line(exc: BaseException) -> str:
    cause = getattr(exc, "orig", None) or exc
    return (str(cause).strip().splitlines() or [type(cause).__name__])[0]
