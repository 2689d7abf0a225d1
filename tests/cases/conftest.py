"""Fixtures for case lifecycle tests: a case worker on the time-skipping server with PostgreSQL,
a scripted HMRC adapter, and the strict converter that rejects unknown JSON keys."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest_asyncio
from psycopg_pool import AsyncConnectionPool
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.context import set_db_pool
from activities.hmrc import set_hmrc_adapter
from cms.config import TASK_QUEUE_CASES
from cms.worker_catalog import activities_for
from tests.cases.case_helpers import ScriptedHmrc
from workflows.case import CaseWorkflow
from workflows.case_messages import CaseInput
from workflows.converter import STRICT_DATA_CONVERTER


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def case_pool(database_url: str) -> AsyncIterator[AsyncConnectionPool]:
    async with AsyncConnectionPool(database_url, open=False, min_size=1, max_size=4) as pool:
        set_db_pool(pool)
        yield pool
        set_db_pool(None)


@pytest_asyncio.fixture(loop_scope="session")
async def hmrc() -> AsyncIterator[ScriptedHmrc]:
    scripted = ScriptedHmrc()
    set_hmrc_adapter(scripted)
    yield scripted
    set_hmrc_adapter(None)


@pytest_asyncio.fixture(loop_scope="session")
async def case_env(time_skipping_env: WorkflowEnvironment, case_pool, hmrc) -> AsyncIterator[dict]:
    """A strict-converter client on the time-skipping server and a running case worker."""
    set_db_pool(case_pool)
    # Same connection and time-skipping interceptor as the environment's client, strict decoding.
    config = time_skipping_env.client.config()
    config["data_converter"] = STRICT_DATA_CONVERTER
    client = Client(**config)
    queue = f"{TASK_QUEUE_CASES}-test-{uuid.uuid4().hex[:6]}"
    started: list[str] = []

    async def start_case(case_input: CaseInput):
        handle = await client.start_workflow(CaseWorkflow.run, case_input, id=f"case-{case_input.case_id}",
                                             task_queue=queue)
        started.append(handle.id)
        return handle

    async with Worker(client, task_queue=queue, workflows=[CaseWorkflow],
                      activities=activities_for(TASK_QUEUE_CASES)):
        yield {"client": client, "queue": queue, "env": time_skipping_env, "hmrc": hmrc, "pool": case_pool,
               "start": start_case}
        # The environment's clock is shared: a case left running without a worker would stall
        # time skipping for every later test (a timer fires, its task is never picked up).
        for workflow_id in started:
            try:
                await client.get_workflow_handle(workflow_id).terminate("test finished")
            except RPCError:
                pass  # already closed
