"""A workflow that completes while an update handler is still running abandons that caseworker
action without a word. The suite makes Temporal's warning for it an error (pyproject.toml,
filterwarnings): this test proves the setting is in force, so a case that drops an action fails
its workflow task in tests instead of passing with a warning."""

import asyncio
import uuid

import pytest
from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

pytestmark = pytest.mark.asyncio(loop_scope="session")


@workflow.defn(sandboxed=False)
class CompletesUnderARunningUpdate:
    def __init__(self) -> None:
        self._accepted = False

    @workflow.run
    async def run(self) -> str:
        await workflow.wait_condition(lambda: self._accepted)
        return "completed"

    @workflow.update
    async def hold(self) -> None:
        self._accepted = True
        await workflow.wait_condition(lambda: False)   # never finishes: the run completes first


async def test_completing_with_an_update_still_running_fails_the_workflow_task(
        time_skipping_env: WorkflowEnvironment) -> None:
    client = time_skipping_env.client
    queue = f"unfinished-{uuid.uuid4().hex[:6]}"
    async with Worker(client, task_queue=queue, workflows=[CompletesUnderARunningUpdate]):
        handle = await client.start_workflow(CompletesUnderARunningUpdate.run, id=f"unfinished-{uuid.uuid4().hex[:8]}",
                                             task_queue=queue)
        # The update is accepted in the same workflow task that completes the run, so it never
        # reaches "accepted" once that task fails: send it without waiting for it.
        update = asyncio.create_task(handle.execute_update(CompletesUnderARunningUpdate.hold))
        try:
            for _ in range(200):
                events = (await handle.fetch_history()).events
                failed = [e.workflow_task_failed_event_attributes.failure for e in events
                          if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED]
                completed = any(e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED for e in events)
                if failed or completed:
                    break
                await asyncio.sleep(0.05)
            assert not completed, "the workflow completed although an update was still running"
            assert failed, "the workflow task neither failed nor completed"
            assert failed[0].application_failure_info.type == "UnfinishedUpdateHandlersWarning", failed[0].message
        finally:
            update.cancel()
            # A running workflow without a worker would stall the shared time-skipping clock.
            await handle.terminate("test finished")
