"""A small migration runner: each service owns one schema and a folder of numbered SQL files.

Applied versions are recorded in `<schema>.schema_migrations` with a checksum, inside the same
transaction as the migration itself, under an advisory lock, so that two processes starting at
once apply each file exactly once and a second run is a no-op. A file that was edited after it
was applied is refused (its checksum no longer matches) rather than silently skipped.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import psycopg

_FILE_PATTERN = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


class MigrationError(Exception):
    pass


def discover(folder: Path) -> list[Migration]:
    migrations = []
    for path in sorted(folder.glob("*.sql")):
        match = _FILE_PATTERN.match(path.name)
        if not match:
            raise MigrationError(f"{path}: migration files are named NNNN_lower_snake.sql")
        migrations.append(Migration(int(match.group(1)), match.group(2), path.read_text()))
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"{folder}: two migrations share a version number")
    return migrations


def _lock_id(schema: str) -> int:
    # Advisory locks take a bigint; derive a stable one from the schema name.
    return zlib.crc32(f"cms-migrations:{schema}".encode())


def apply_migrations(conninfo: str, schema: str, folder: Path) -> list[int]:
    """Applies pending migrations of `folder` to `schema`; returns the versions applied now."""
    migrations = discover(folder)
    applied_now: list[int] = []
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_lock_id(schema),))
        try:
            conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            conn.execute(
                f'CREATE TABLE IF NOT EXISTS "{schema}".schema_migrations ('
                " version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {
                row[0]: row[1]
                for row in conn.execute(f'SELECT version, checksum FROM "{schema}".schema_migrations')
            }
            for migration in migrations:
                if migration.version in done:
                    if done[migration.version] != migration.checksum:
                        raise MigrationError(
                            f"{schema} migration {migration.version:04d}_{migration.name} was changed "
                            "after it was applied; add a new migration instead of editing an old one"
                        )
                    continue
                with conn.transaction():
                    conn.execute(f'SET LOCAL search_path TO "{schema}", public')
                    conn.execute(migration.sql)
                    conn.execute(
                        f'INSERT INTO "{schema}".schema_migrations (version, name, checksum) '
                        "VALUES (%s, %s, %s)",
                        (migration.version, migration.name, migration.checksum),
                    )
                applied_now.append(migration.version)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_lock_id(schema),))
    return applied_now
