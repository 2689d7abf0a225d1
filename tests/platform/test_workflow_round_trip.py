"""A case workflow through a real worker on the time-skipping server, with PostgreSQL behind it."""

import asyncio
import uuid

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool
from temporalio.testing import WorkflowEnvironment

from cms.config import TASK_QUEUE_CASES, load_settings
from cms.grpc_client import Channels
from cms.worker import build_workers
from cms.worker_catalog import build_activities
from workflows.case import CaseInput, CaseWorkflow, NoteRequest
from workflows.case_messages import ChildFacts

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def _stage_in_read_model(pool: AsyncConnectionPool, case_id: str) -> str | None:
    async with pool.connection() as conn:
        row = await (await conn.execute("SELECT stage FROM case_api.cases WHERE case_id = %s", (case_id,))).fetchone()
    return row[0] if row else None


async def test_case_round_trip_through_worker(time_skipping_env: WorkflowEnvironment, database_url: str) -> None:
    client = time_skipping_env.client
    case_id = f"rt-{uuid.uuid4().hex[:8]}"
    channels = Channels()
    async with AsyncConnectionPool(database_url, open=False) as pool:
        # The worker's own composition root, from the same settings `python -m cms.worker` reads.
        activities = build_activities(load_settings(), pool, channels)
        worker = next(w for w in build_workers(client, activities) if w.task_queue == TASK_QUEUE_CASES)
        async with worker:
            handle = await client.start_workflow(
                CaseWorkflow.run,
                CaseInput(case_id=case_id, children=[ChildFacts("c-1", "2015-01-01")], publish_search_attributes=False),
                id=f"case-{case_id}", task_queue=TASK_QUEUE_CASES,
            )
            try:
                result = await handle.execute_update(CaseWorkflow.add_note, NoteRequest(text="called", author="cw-1"))
                assert result.entries >= 1  # the note is on the timeline (maybe before "application received")
                assert (await handle.query(CaseWorkflow.state)).stage in ("Application", "Assessment")
                for _ in range(200):  # the stage reaches the read model through an activity; wait for it
                    if await _stage_in_read_model(pool, case_id) == "Assessment":
                        break
                    await asyncio.sleep(0.05)
            finally:
                # A running case without a worker would stall the shared time-skipping clock.
                await handle.terminate("round trip done")
    await channels.close()
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT stage FROM case_api.cases WHERE case_id = %s", (case_id,)).fetchone() == ("Assessment",)
