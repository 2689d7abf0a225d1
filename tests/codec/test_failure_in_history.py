"""A failure's message and stack trace can quote a value (an income in an error): with the
product's converter they are stored as an encrypted payload, and history shows only
"Encoded failure" to anyone without the keys."""

from __future__ import annotations

import uuid

import pytest
from temporalio import workflow
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from cms.payload_codec import is_encrypted
from tests.helpers.codec import codec_data_converter

pytestmark = pytest.mark.asyncio(loop_scope="session")

PLANTED = "annual income 4817263 not matched for pp-planted-party"


@workflow.defn(sandboxed=False)
class FailsQuotingAnIncome:
    @workflow.run
    async def run(self) -> None:
        raise ApplicationError(PLANTED, non_retryable=True)


async def test_a_failure_message_in_history_is_encrypted(dev_temporal: Client) -> None:
    config = dev_temporal.config()
    config["data_converter"] = codec_data_converter()
    client = Client(**config)
    queue = f"codec-failure-{uuid.uuid4().hex[:6]}"
    async with Worker(client, task_queue=queue, workflows=[FailsQuotingAnIncome],
                      workflow_runner=UnsandboxedWorkflowRunner()):
        with pytest.raises(WorkflowFailureError) as failed:
            await client.execute_workflow(FailsQuotingAnIncome.run, id=f"fails-{queue}", task_queue=queue)
    assert PLANTED in str(failed.value.cause), "with the keys the caller reads the message"

    raw = await dev_temporal.get_workflow_handle(f"fails-{queue}").fetch_history()
    assert PLANTED.encode() not in b"".join(event.SerializeToString() for event in raw.events)
    failure = raw.events[-1].workflow_execution_failed_event_attributes.failure
    assert failure.message == "Encoded failure"
    assert is_encrypted(failure.encoded_attributes)
