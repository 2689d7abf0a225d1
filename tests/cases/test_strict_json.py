"""A message typed into the Temporal UI is plain JSON decoded by the worker: with the strict
converter (cms.temporal.connect, the worker and CaseService use it) an unknown key is refused
before the update is accepted, so nothing reaches the history."""

from __future__ import annotations

import dataclasses
import uuid

import pytest
import temporalio.converter
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowUpdateFailedError

from tests.helpers.codec import codec_data_converter
from workflows.case import CaseWorkflow
from workflows.case_messages import CaseInput, ChildFacts

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def _update_events(handle) -> list:
    history = await handle.fetch_history()
    kinds = {EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED,
             EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED}
    return [event for event in history.events if event.event_type in kinds]


async def test_an_unknown_key_sent_as_plain_json_is_rejected_and_leaves_no_history(case_env) -> None:
    case_id = f"strict-{uuid.uuid4().hex[:8]}"
    await case_env["start"](CaseInput(case_id=case_id, application_date="2025-01-10",
                                      children=[ChildFacts("c-1", "2015-03-01")],
                                      publish_search_attributes=False))
    # As the UI sends it: the default converter sends the dict as typed; the codec server seals it
    # with the payload keys (and opens the worker's encoded failure) on the way.
    as_typed = dataclasses.replace(temporalio.converter.default(), payload_codec=codec_data_converter().payload_codec)
    ui = Client(**{**case_env["env"].client.config(), "data_converter": as_typed})
    plain = ui.get_workflow_handle(f"case-{case_id}")
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await plain.execute_update("add_note", {"text": "x", "author": "y", "bogus": 1})
    # The SDK reports the decoding failure (our TypeError naming the key is logged by the worker).
    assert "decoding" in str(refused.value.cause)
    assert await _update_events(plain) == []

    # The same update without the stray key goes through: the check can tell the two apart.
    await plain.execute_update("add_note", {"text": "x", "author": "y"})
    assert len(await _update_events(plain)) == 2
    view = await case_env["client"].get_workflow_handle(f"case-{case_id}").query(CaseWorkflow.state)
    assert view.case_id == case_id
