"""What Temporal stores of a case is ciphertext: a case run by the worker with the payload codec,
its history fetched raw (as the server, its database or a client without the keys sees it),
holds none of the planted values; a client with the keys reads the note back."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from temporalio.api.enums.v1 import EventType

from activities.adapters.hmrc import HmrcIncome, HmrcPermanentFailure
from cms.payload_codec import decode_payloads_in, is_encrypted
from tests.cases.case_helpers import ScriptedHmrc
from tests.helpers.codec import assert_sealed, codec_data_converter
from workflows.case import CaseWorkflow
from workflows.case_messages import CaseInput, ChildFacts, NoteRequest

pytestmark = pytest.mark.asyncio(loop_scope="session")

INCOME_PENCE = 4_817_263                      # the paying parent's annual income, from HMRC


async def test_a_case_history_holds_no_personal_value_in_clear(case_env) -> None:
    client, env, hmrc = case_env["client"], case_env["env"], case_env["hmrc"]
    case_id = f"sealed-{uuid.uuid4().hex[:8]}"
    paying = f"pp-party-{uuid.uuid4().hex[:10]}"   # not part of the workflow id, which is never encrypted
    note = f"Paying parent disclosed a second job {uuid.uuid4().hex[:6]}"
    hmrc.incomes[paying] = {"2025-01-01": INCOME_PENCE}
    await case_env["start"](CaseInput(case_id=case_id, application_date="2025-01-10", paying_parent_id=paying,
                                      receiving_parent_id=f"rp-{case_id}",
                                      children=[ChildFacts("c-1", "2015-03-01")], publish_search_attributes=False))
    await env.sleep(timedelta(days=3))
    handle = client.get_workflow_handle(f"case-{case_id}")
    assert (await handle.query(CaseWorkflow.state)).stage == "Active"
    await handle.execute_update(CaseWorkflow.add_note, NoteRequest(text=note, author="cw-1"))

    # The environment's own client has no codec: it gets the history exactly as stored.
    raw = await env.client.get_workflow_handle(f"case-{case_id}").fetch_history()
    stored = b"".join(event.SerializeToString() for event in raw.events) + raw.to_json().encode()
    planted = [str(INCOME_PENCE).encode(), note.encode(), paying.encode()]
    assert [value for value in planted if value in stored] == []
    started = raw.events[0].workflow_execution_started_event_attributes
    assert all(is_encrypted(payload) for payload in started.input.payloads)

    # The check can fail: with the keys, the same history shows the note, the party and the income.
    codec = codec_data_converter().payload_codec
    assert codec is not None
    for event in raw.events:
        await decode_payloads_in(event, codec)
    clear = b"".join(event.SerializeToString() for event in raw.events)
    assert [value for value in planted if value in clear] == planted
    accepted = [e for e in raw.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED]
    assert note.encode() in accepted[0].workflow_execution_update_accepted_event_attributes \
        .accepted_request.input.args.payloads[0].data


class HmrcQuotingTheParty(ScriptedHmrc):
    """An HMRC whose refusal quotes the party and a figure, as a real error message might."""

    async def latest_annual_income(self, party_id: str, requested_on: str) -> HmrcIncome:
        raise HmrcPermanentFailure(f"no match for {party_id}: declared income {INCOME_PENCE} differs")


@pytest.mark.parametrize("hmrc", [HmrcQuotingTheParty()])
async def test_a_failure_message_quoting_a_party_is_stored_sealed_and_visibility_shows_none_of_it(case_env) -> None:
    """A failed activity's message is in the case's history (ActivityTaskFailed): with the
    product's converter it holds "Encoded failure", and neither the history nor the case's
    description and memo show the party or the figure (the search attributes on a server that
    indexes them: tests/safeguarding/test_outbound_paths.py)."""
    client, env = case_env["client"], case_env["env"]
    case_id = f"sealedfail-{uuid.uuid4().hex[:8]}"
    paying = f"pp-party-{uuid.uuid4().hex[:10]}"
    await case_env["start"](CaseInput(case_id=case_id, application_date="2025-01-10", paying_parent_id=paying,
                                      receiving_parent_id=f"rp-{case_id}",
                                      children=[ChildFacts("c-1", "2015-03-01")], publish_search_attributes=False))
    handle = client.get_workflow_handle(f"case-{case_id}")
    for _ in range(100):
        if (await handle.query(CaseWorkflow.state)).needs_caseworker:
            break
        await env.sleep(timedelta(hours=6))
    raw = await env.client.get_workflow_handle(f"case-{case_id}").fetch_history()
    failures = [event.activity_task_failed_event_attributes.failure for event in raw.events
                if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED]
    assert failures and all(failure.message == "Encoded failure" for failure in failures)
    await assert_sealed(raw.events, [paying, str(INCOME_PENCE)])

    description = await env.client.get_workflow_handle(f"case-{case_id}").describe()
    visible = str(description.raw_description) + str(await description.memo())
    assert paying not in visible and str(INCOME_PENCE) not in visible
