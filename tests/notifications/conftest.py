import asyncio
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
from psycopg_pool import AsyncConnectionPool

from cms.db.migrate import apply_migrations
from cms.infra.postgres import postgres_url
from services import SERVICES_BY_NAME
from tests.notifications.support import start_service, stub_for


@pytest.fixture(scope="session")
def notifications_db(postgres_server: dict) -> str:
    """The session PostgreSQL with the notifications schema migrated. Independent of the other
    services' migrations, so work in progress elsewhere cannot break these tests."""
    url = postgres_url(postgres_server["port"])
    info = SERVICES_BY_NAME["notifications"]
    apply_migrations(url, info.schema, info.migrations)
    return url


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def notifications_pool(notifications_db: str):
    async with AsyncConnectionPool(notifications_db, min_size=1, max_size=8, open=False) as pool:
        await pool.wait()
        yield pool


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def notifications_stub(notifications_db: str, scratch_dir: Path):
    """The service without its background dispatcher: tests drive dispatchers themselves."""
    address, stop, task = await start_service(notifications_db, scratch_dir / "notifications-data", dispatch=False)
    _addresses.append(address)
    async with grpc.aio.insecure_channel(address) as channel:
        yield stub_for(channel)
    stop.set()
    await asyncio.wait_for(task, timeout=20)


_addresses: list[str] = []


@pytest.fixture
def notifications_address(notifications_stub) -> str:
    return _addresses[-1]


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
