"""cms_workflow_task_failures counts running workflows whose task keeps failing (a date the code
cannot handle, a bug), by workflow type, from the flag the Temporal server sets after two
consecutive task failures (services/case_api/stuck_workflows.py)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from prometheus_client import REGISTRY
from temporalio import workflow
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from services.case_api.stuck_workflows import TASK_FAILURES, StuckWorkflowMetrics

pytestmark = pytest.mark.asyncio(loop_scope="session")


@workflow.defn(sandboxed=False)
class WedgesOnEveryTask:
    @workflow.run
    async def run(self) -> None:
        raise RuntimeError("a bug: the workflow task fails and is retried for ever")


@workflow.defn(sandboxed=False)
class WaitsQuietly:
    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)


def gauge_value(workflow_type: str) -> float:
    return REGISTRY.get_sample_value(TASK_FAILURES._name, {"workflow_type": workflow_type}) or 0.0


async def test_a_wedged_workflow_is_counted_and_a_healthy_one_is_not(dev_temporal: Client) -> None:
    queue = f"stuck-{uuid.uuid4().hex[:6]}"
    metrics = StuckWorkflowMetrics(lambda: _ready(dev_temporal))
    async with Worker(dev_temporal, task_queue=queue, workflows=[WedgesOnEveryTask, WaitsQuietly],
                      workflow_runner=UnsandboxedWorkflowRunner()):
        wedged = await dev_temporal.start_workflow(WedgesOnEveryTask.run, id=f"wedged-{queue}", task_queue=queue)
        healthy = await dev_temporal.start_workflow(WaitsQuietly.run, id=f"healthy-{queue}", task_queue=queue)
        try:
            for _ in range(300):   # the flag needs two task attempts (a second apart), then visibility
                await metrics.refresh()
                if gauge_value("WedgesOnEveryTask") >= 1:
                    break
                await asyncio.sleep(0.1)
            assert gauge_value("WedgesOnEveryTask") == 1
            assert gauge_value("WaitsQuietly") == 0
            # Once the stuck workflow is dealt with (here: terminated), the type shows 0, not a stale 1.
            await wedged.terminate("test over")
            for _ in range(100):
                await metrics.refresh()
                if gauge_value("WedgesOnEveryTask") == 0:
                    break
                await asyncio.sleep(0.1)
            assert gauge_value("WedgesOnEveryTask") == 0
        finally:
            await healthy.terminate("test over")


async def _ready(client: Client) -> Client:
    return client
