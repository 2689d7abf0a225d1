"""Changes of circumstances on the real CaseWorkflow (time-skipping server of its own, real
PostgreSQL): report_change starts `case-<id>/change-<n>`, the cleared change recalculates the
case from its effective date; bad input, duplicates and a request to close."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import pytest_asyncio
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from activities.adapters.hmrc import HmrcIncome
from tests.changes.case_worker import case_worker
from tests.helpers.failures import rejection_type
from workflows.case import CaseWorkflow
from workflows.case_messages import CaseInput, CaseView, ChildFacts
from workflows.change import ChangeWorkflow, ReportedChange

pytestmark = pytest.mark.asyncio(loop_scope="session")


class Hmrc:
    async def verify_address(self, party_id: str) -> bool:
        return True

    async def latest_annual_income(self, party_id: str, requested_on: str) -> HmrcIncome:
        return HmrcIncome(True, 2_600_000, requested_on[:4])  # £26,000 a year: £498.63 a week


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def case_client(change_pool) -> AsyncIterator[tuple[WorkflowEnvironment, Client, str]]:
    async with case_worker(change_pool, Hmrc(), "case-changes-real") as running:
        yield running


async def active_case(env: WorkflowEnvironment, client: Client, queue: str):
    case_id = f"chg-{uuid.uuid4().hex[:8]}"
    handle = await client.start_workflow(CaseWorkflow.run, CaseInput(
        case_id=case_id, application_date="2025-01-10", receiving_parent_id="rp-1", paying_parent_id="pp-1",
        children=[ChildFacts("c-1", "2015-03-01"), ChildFacts("c-2", "2017-06-30")],
        publish_search_attributes=False), id=f"case-{case_id}", task_queue=queue)
    await env.sleep(timedelta(days=3))
    view = await handle.query(CaseWorkflow.state)
    assert view.stage == "Active" and view.liability is not None
    assert view.liability.weekly_liability_pence == 8000
    return handle


async def until(predicate, handle) -> CaseView:
    for _ in range(300):
        view = await handle.query(CaseWorkflow.state)
        if predicate(view):
            return view
        await asyncio.sleep(0.05)
    raise AssertionError("the case never took the change in")


async def test_shared_care_change_recalculates_the_case(case_client) -> None:
    env, client, queue = case_client
    case = await active_case(env, client, queue)
    change = ReportedChange(kind="shared_care_nights", effective_date="2025-01-13",
                            details={"child_id": "c-1", "nights": 52}, idempotency_key="online-1")
    receipt = await case.execute_update(CaseWorkflow.report_change, change)
    assert (receipt.change_no, receipt.workflow_id) == (1, f"{case.id}/change-1")
    assert not receipt.needs_caseworker
    again = await case.execute_update(CaseWorkflow.report_change, change)
    assert again.already_existed and again.change_no == 1
    with env.auto_time_skipping_disabled():
        outcome = await client.get_workflow_handle_for(ChangeWorkflow.run, receipt.workflow_id).result()
    assert outcome.outcome == "recalculated" and outcome.on_time
    view = await until(lambda v: v.liability.weekly_liability_pence != 8000, case)
    assert view.liability is not None
    # £80 for 2 children; c-1 at 52 nights: 1/7, mean over the two children 1/14: £80 × 13/14 = £74.29.
    assert view.liability.weekly_liability_pence == 7429
    assert view.liability.effective_date == outcome.effective_date == "2025-01-13"
    assert await case.query(CaseWorkflow.open_changes) == []


async def test_bad_changes_are_refused_by_the_case(case_client) -> None:
    env, client, queue = case_client
    case = await active_case(env, client, queue)
    for bad, error_type in ((ReportedChange(kind="lottery_win", effective_date="2025-01-13"), "InvalidArgument"),
                            (ReportedChange(kind="child_left", effective_date="2025-01-13",
                                            details={"child_id": "c-9"}), "InvalidArgument"),
                            (ReportedChange(kind="address", effective_date="2026-01-13",
                                            details={"party": "paying_parent"}), "InvalidArgument")):
        with pytest.raises(WorkflowUpdateFailedError) as failure:
            await case.execute_update(CaseWorkflow.report_change, bad)
        assert rejection_type(failure.value) == error_type
    assert await case.query(CaseWorkflow.open_changes) == []


async def test_request_to_close_closes_the_case_and_a_later_change_is_refused(case_client) -> None:
    env, client, queue = case_client
    case = await active_case(env, client, queue)
    receipt = await case.execute_update(CaseWorkflow.report_change,
                                        ReportedChange(kind="close_request", effective_date="2025-01-13",
                                                       reported_by="receiving_parent"))
    with env.auto_time_skipping_disabled():
        await client.get_workflow_handle_for(ChangeWorkflow.run, receipt.workflow_id).result()
        result = await case.result()
    assert result.stage == "Closed" and result.closure.reason == "change_close_request"


async def test_a_change_that_does_not_count_is_answered_with_the_reason(case_client, change_pool) -> None:
    env, client, queue = case_client
    case = await active_case(env, client, queue)
    # £498.63 a week used; £550 is a 10% rise: below the 25% tolerance.
    receipt = await case.execute_update(CaseWorkflow.report_change, ReportedChange(
        kind="paying_parent_income", effective_date="2025-01-13", details={"weekly_income_pence": 55_000}))
    with env.auto_time_skipping_disabled():
        outcome = await client.get_workflow_handle_for(ChangeWorkflow.run, receipt.workflow_id).result()
    assert outcome.outcome == "no_change"
    case_id = case.id.removeprefix("case-")
    for _ in range(200):
        async with change_pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT recipient_party_id, body->'facts'->>'outcome_reason' FROM case_api.notices "
                "WHERE case_id = %s AND template = 'change_outcome' ORDER BY recipient_party_id", (case_id,))
            rows = await cursor.fetchall()
        if rows:
            break
        await asyncio.sleep(0.05)
    assert [r[0] for r in rows] == ["pp-1", "rp-1"] and "less than 25%" in rows[0][1]
    view = await case.query(CaseWorkflow.state)
    assert view.liability.weekly_liability_pence == 8000
