"""Fixtures for case lifecycle tests: a case worker on the time-skipping server with PostgreSQL,
a scripted HMRC adapter, and the strict converter that rejects unknown JSON keys."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from psycopg_pool import AsyncConnectionPool
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.case_notifications import NoticeSender, RecordingNotices
from activities.case_payments import PaymentsGateway, RecordingPayments
from cms.config import TASK_QUEUE_CASES
from cms.worker_catalog import case_activities
from tests.cases.case_helpers import ScriptedHmrc
from tests.helpers.codec import codec_data_converter
from workflows.case import CaseWorkflow
from workflows.case_messages import CaseInput


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def case_pool(database_url: str) -> AsyncIterator[AsyncConnectionPool]:
    async with AsyncConnectionPool(database_url, open=False, min_size=1, max_size=4) as pool:
        yield pool


@pytest.fixture
def hmrc() -> ScriptedHmrc:
    return ScriptedHmrc()


@pytest.fixture
def case_notices(case_pool: AsyncConnectionPool) -> NoticeSender:
    """Where the case worker's letters go: recorded in the read model (a test may parametrize
    `case_notices` with a fake of its own)."""
    return RecordingNotices(case_pool)


@pytest.fixture
def case_schedules(case_pool: AsyncConnectionPool) -> PaymentsGateway:
    """Where the case worker's payment schedules go: recorded in the read model (a test module may
    override `case_schedules` to hand them to a payments service)."""
    return RecordingPayments(case_pool)


@pytest_asyncio.fixture(loop_scope="session")
async def case_env(time_skipping_env: WorkflowEnvironment, case_pool, hmrc, case_notices,
                   case_schedules) -> AsyncIterator[dict]:
    """A strict-converter client on the time-skipping server and a running case worker."""
    # Same connection and time-skipping interceptor as the environment's client, strict decoding.
    config = time_skipping_env.client.config()
    config["data_converter"] = codec_data_converter()
    client = Client(**config)
    queue = f"{TASK_QUEUE_CASES}-test-{uuid.uuid4().hex[:6]}"
    started: list[str] = []

    async def start_case(case_input: CaseInput):
        handle = await client.start_workflow(CaseWorkflow.run, case_input, id=f"case-{case_input.case_id}",
                                             task_queue=queue)
        started.append(handle.id)
        return handle

    async with Worker(client, task_queue=queue, workflows=[CaseWorkflow],
                      activities=case_activities(case_pool, hmrc, case_notices, case_schedules)):
        yield {"client": client, "queue": queue, "env": time_skipping_env, "hmrc": hmrc, "pool": case_pool,
               "start": start_case}
        # The environment's clock is shared: a case left running without a worker would stall
        # time skipping for every later test (a timer fires, its task is never picked up).
        for workflow_id in started:
            try:
                await client.get_workflow_handle(workflow_id).terminate("test finished")
            except RPCError:
                pass  # already closed
