"""The migration runner: applies once, records versions, is a no-op the second time."""

from pathlib import Path

import psycopg
import pytest

from cms.db.migrate import MigrationError, apply_migrations, discover
from services import SERVICES


def test_every_service_schema_is_migrated(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        for service in SERVICES:
            versions = [row[0] for row in conn.execute(
                f"SELECT version FROM {service.schema}.schema_migrations ORDER BY version")]
            assert versions == [m.version for m in discover(service.migrations)]


def test_applying_twice_is_a_no_op(database_url: str) -> None:
    for service in SERVICES:
        assert apply_migrations(database_url, service.schema, service.migrations) == []


def test_new_migration_applies_once_and_edited_one_is_refused(database_url: str, tmp_path: Path) -> None:
    (tmp_path / "0001_first.sql").write_text("CREATE TABLE t (id int);")
    (tmp_path / "0002_second.sql").write_text("INSERT INTO t VALUES (1);")
    assert apply_migrations(database_url, "migration_test", tmp_path) == [1, 2]
    assert apply_migrations(database_url, "migration_test", tmp_path) == []
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM migration_test.t").fetchone() == (1,)
    (tmp_path / "0002_second.sql").write_text("INSERT INTO t VALUES (2);")
    with pytest.raises(MigrationError, match="was changed after it was applied"):
        apply_migrations(database_url, "migration_test", tmp_path)


def test_failed_migration_leaves_nothing_recorded(database_url: str, tmp_path: Path) -> None:
    (tmp_path / "0001_broken.sql").write_text("CREATE TABLE ok_table (id int); SELECT no_such_column FROM ok_table;")
    with pytest.raises(psycopg.errors.UndefinedColumn):
        apply_migrations(database_url, "migration_broken", tmp_path)
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM migration_broken.schema_migrations").fetchone() == (0,)
        assert conn.execute("SELECT to_regclass('migration_broken.ok_table')").fetchone() == (None,)


def test_badly_named_file_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "first.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="NNNN_lower_snake.sql"):
        discover(tmp_path)
