"""A worker given a payload sealed with a key it does not hold fails the workflow task, saying
which key id, and never runs the workflow on the stored bytes: the case waits, as stored, for a
worker with the key."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from cms.payload_codec import EncryptionCodec, KeyRing, new_key_ring
from workflows.converter import data_converter

pytestmark = pytest.mark.asyncio(loop_scope="session")


@workflow.defn(sandboxed=False)
class EchoesItsInput:
    @workflow.run
    async def run(self, text: str) -> str:
        return text


def _with_ring(client: Client, ring: KeyRing) -> Client:
    config = client.config()
    config["data_converter"] = data_converter(EncryptionCodec(ring))
    return Client(**config)


async def test_a_payload_under_an_unknown_key_fails_the_workflow_task_naming_the_key(dev_temporal: Client) -> None:
    writer_ring, worker_ring = new_key_ring("ring-of-the-writer"), new_key_ring("ring-of-the-worker")
    writer, worker_client = (_with_ring(dev_temporal, ring) for ring in (writer_ring, worker_ring))
    queue = f"unknown-key-{uuid.uuid4().hex[:6]}"
    handle = await writer.start_workflow(EchoesItsInput.run, "sealed by another ring", id=f"echo-{queue}",
                                         task_queue=queue)
    try:
        async with Worker(worker_client, task_queue=queue, workflows=[EchoesItsInput],
                          workflow_runner=UnsandboxedWorkflowRunner()):
            for _ in range(200):
                history = await worker_client.get_workflow_handle(handle.id).fetch_history()
                failed = [event for event in history.events
                          if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED]
                if failed:
                    break
                await asyncio.sleep(0.1)
        assert failed, "the workflow task never failed"
        # The failure is itself sealed, with the worker's key: decoded, it names the missing key id.
        failure = failed[0].workflow_task_failed_event_attributes.failure
        assert failure.message == "Encoded failure"
        error = str(await worker_client.data_converter.decode_failure(failure))
        assert "ring-of-the-writer" in error and "not among the configured payload keys" in error
        assert not any(event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED for event in history.events)
    finally:
        await handle.terminate("test finished")
