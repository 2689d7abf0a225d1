"""A worker for ChangeWorkflow and its activities on the time-skipping server, with PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
from psycopg_pool import AsyncConnectionPool
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from cms.worker_catalog import change_activities
from workflows.change import ChangeWorkflow


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def change_pool(database_url: str) -> AsyncIterator[AsyncConnectionPool]:
    async with AsyncConnectionPool(database_url, min_size=1, max_size=4, open=False) as pool:
        yield pool


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def change_queue(time_skipping_env: WorkflowEnvironment, change_pool: AsyncConnectionPool) -> AsyncIterator[str]:
    queue = f"changes-test-{uuid.uuid4().hex[:6]}"
    async with Worker(time_skipping_env.client, task_queue=queue, workflows=[ChangeWorkflow],
                      activities=change_activities(change_pool)):
        yield queue


@pytest.fixture(autouse=True)
def _no_auto_time_skipping(request: pytest.FixtureRequest) -> Iterator[None]:
    """Tests here that use the shared time-skipping server need no skipped time (escalation has a
    server of its own). Auto-skipping while awaiting a result can jump the clock over an in-flight
    workflow task, which then times out and may stay pending after the test, holding the shared
    clock for every later test."""
    if "time_skipping_env" not in request.fixturenames:
        yield
        return
    env: WorkflowEnvironment = request.getfixturevalue("time_skipping_env")
    with env.auto_time_skipping_disabled():
        yield


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def scratch_case_db(database_url: str) -> AsyncIterator[AsyncConnectionPool]:
    """A database of its own on the test server with the case_api schema, for tests that need
    change_records to hold exactly what they put there (the shared one holds every test's changes)."""
    import psycopg
    from psycopg.conninfo import make_conninfo

    from cms.db.migrate import apply_migrations
    from services import SERVICES

    name = f"changes_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_conninfo(database_url, dbname=name)
    case_api = next(service for service in SERVICES if service.schema == "case_api")
    apply_migrations(url, case_api.schema, case_api.migrations)
    async with AsyncConnectionPool(url, min_size=1, max_size=2, open=False) as pool:
        yield pool
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
