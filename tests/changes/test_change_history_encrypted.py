"""What Temporal stores of a change of circumstances is ciphertext: a case and the change a
paying parent reports, run by the product's worker, fetched raw (without the codec) hold none of
the planted values (the HMRC income, the reported weekly income, the paying party); the same
histories decoded with the keys do, so the check can fail."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest

from activities.adapters.hmrc import HmrcIncome
from tests.changes.case_worker import case_worker
from tests.helpers.codec import assert_sealed
from workflows.case import CaseWorkflow
from workflows.case_messages import CaseInput, ChildFacts
from workflows.change import ReportedChange

pytestmark = pytest.mark.asyncio(loop_scope="session")

HMRC_INCOME_PENCE = 4_817_263
REPORTED_WEEKLY_PENCE = 81_237


class Hmrc:
    async def verify_address(self, party_id: str) -> bool:
        return True

    async def latest_annual_income(self, party_id: str, requested_on: str) -> HmrcIncome:
        return HmrcIncome(True, HMRC_INCOME_PENCE, requested_on[:4])


async def test_a_case_and_its_change_are_stored_sealed(change_pool) -> None:
    async with case_worker(change_pool, Hmrc(), "change-sealed") as (env, client, queue):
        case_id = f"sealed-{uuid.uuid4().hex[:8]}"
        paying = f"pp-party-{uuid.uuid4().hex[:10]}"  # not part of the workflow id, which is never encrypted
        handle = await client.start_workflow(CaseWorkflow.run, CaseInput(
            case_id=case_id, application_date="2025-01-10", receiving_parent_id=f"rp-{case_id}",
            paying_parent_id=paying, children=[ChildFacts("c-1", "2015-03-01")], publish_search_attributes=False),
            id=f"case-{case_id}", task_queue=queue)
        await env.sleep(timedelta(days=(date(2025, 3, 1) - date(2025, 1, 10)).days))
        with env.auto_time_skipping_disabled():
            receipt = await handle.execute_update(CaseWorkflow.report_change, ReportedChange(
                kind="paying_parent_income", effective_date="2025-02-01",
                details={"weekly_income_pence": REPORTED_WEEKLY_PENCE, "duty_to_report": True}))
            await client.get_workflow_handle(receipt.workflow_id).result()
        planted = [str(HMRC_INCOME_PENCE), str(REPORTED_WEEKLY_PENCE), paying]
        # The environment's own client has no codec: it gets each history exactly as stored.
        for workflow_id in (f"case-{case_id}", receipt.workflow_id):
            raw = await env.client.get_workflow_handle(workflow_id).fetch_history()
            await assert_sealed(raw.events, planted)
        await handle.terminate("test finished")
