"""Database fixtures shared by the notifications and safeguarding tests."""

import pytest

from cms.db.migrate import apply_migrations
from cms.infra.postgres import postgres_url
from services import SERVICES_BY_NAME


@pytest.fixture(scope="session")
def notifications_db(postgres_server: dict) -> str:
    """The session PostgreSQL with the notifications schema migrated. Independent of the other
    services' migrations, so work in progress elsewhere cannot break these tests."""
    url = postgres_url(postgres_server["port"])
    info = SERVICES_BY_NAME["notifications"]
    apply_migrations(url, info.schema, info.migrations)
    return url


@pytest.fixture
def isolated_notifications_db(postgres_server: dict):
    """A fresh database with only the notifications schema: dispatcher tests claim every queued
    row they can see, so they must not see other tests' rows."""
    import uuid

    import psycopg

    server = postgres_url(postgres_server["port"])
    name = f"notif_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = postgres_url(postgres_server["port"], database=name)
    info = SERVICES_BY_NAME["notifications"]
    apply_migrations(url, info.schema, info.migrations)
    yield url
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
