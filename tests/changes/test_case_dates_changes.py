"""Dates and decisions that come with a change of circumstances, on the real CaseWorkflow: a paying
parent's request to return to Direct Pay (s.4(2A) CSA 1991) goes to a caseworker where the case
moved to Collect & Pay because payment was unlikely, and is decided by the rules where a parent
only asked for Collect & Pay; the receiving parent's request to close closes the case on the day
asked (s.4(5); SPEC 4.9 Closure)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from activities.adapters.hmrc import HmrcIncome
from tests.changes.case_worker import case_worker
from tests.helpers.replay import CASE_CHANGE_HISTORIES, record_history
from workflows.case import CaseWorkflow
from workflows.case_messages import CaseInput, ChildFacts, CollectAndPayRequest
from workflows.change import ChangeWorkflow, ReportedChange

pytestmark = pytest.mark.asyncio(loop_scope="session")

BACK_TO_DIRECT_PAY = ReportedChange(kind="service_type", effective_date="2025-03-20", reported_by="paying_parent",
                                    details={"service_type": "direct_pay"})


class Hmrc:
    async def verify_address(self, party_id: str) -> bool:
        return True

    async def latest_annual_income(self, party_id: str, requested_on: str) -> HmrcIncome:
        return HmrcIncome(True, 2_600_000, requested_on[:4])


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def case_client(change_pool) -> AsyncIterator[tuple[WorkflowEnvironment, Client, str]]:
    async with case_worker(change_pool, Hmrc(), "case-dates-changes") as running:
        yield running


async def _active_case(env: WorkflowEnvironment, client: Client, queue: str, **overrides):
    case_id = f"leave-{uuid.uuid4().hex[:8]}"
    handle = await client.start_workflow(CaseWorkflow.run, CaseInput(**{
        **dict(case_id=case_id, application_date="2025-01-10", receiving_parent_id="rp-1", paying_parent_id="pp-1",
               children=[ChildFacts("c-1", "2015-03-01")], publish_search_attributes=False), **overrides}),
        id=f"case-{case_id}", task_queue=queue)
    await env.sleep(timedelta(days=3))
    assert (await handle.query(CaseWorkflow.state)).stage == "Active"
    return handle


async def test_a_case_moved_for_missed_payments_returns_to_direct_pay_only_through_a_caseworker(case_client) -> None:
    env, client, queue = case_client
    case = await _active_case(env, client, queue)
    await case.execute_update(CaseWorkflow.switch_to_collect_and_pay, CollectAndPayRequest("direct_pay_missed", "cw-1"))
    await env.sleep(timedelta(days=60))
    view = await case.query(CaseWorkflow.state)
    assert view.service_type == "collect_and_pay" and view.collect_and_pay_switch.reason == "direct_pay_missed"

    receipt = await case.execute_update(CaseWorkflow.report_change, BACK_TO_DIRECT_PAY)
    assert (receipt.needs_caseworker, receipt.assigned_team) == (True, "changes-review")
    change = client.get_workflow_handle_for(ChangeWorkflow.run, receipt.workflow_id)
    status = await change.query(ChangeWorkflow.status)
    for _ in range(200):   # the change decides in its own first steps
        if status.stage != "deciding":
            break
        await asyncio.sleep(0.05)
        status = await change.query(ChangeWorkflow.status)
    assert (status.stage, status.review_reason) == ("awaiting_review", "rules_cannot_decide")
    assert (await case.query(CaseWorkflow.state)).service_type == "collect_and_pay"
    await record_history(case, CASE_CHANGE_HISTORIES, "return_to_direct_pay_reviewed")


async def test_a_case_on_collect_and_pay_because_a_parent_asked_is_decided_by_the_rules(case_client) -> None:
    env, client, queue = case_client
    case = await _active_case(env, client, queue, requested_service_type="collect_and_pay")
    receipt = await case.execute_update(CaseWorkflow.report_change, BACK_TO_DIRECT_PAY)
    assert not receipt.needs_caseworker


async def test_a_request_to_close_from_a_later_day_closes_the_case_on_that_day(case_client) -> None:
    env, client, queue = case_client
    case = await _active_case(env, client, queue)
    receipt = await case.execute_update(CaseWorkflow.report_change, ReportedChange(
        kind="close_request", effective_date="2025-02-14", reported_by="receiving_parent"))
    with env.auto_time_skipping_disabled():
        await client.get_workflow_handle_for(ChangeWorkflow.run, receipt.workflow_id).result()
    await env.sleep(timedelta(days=5))
    view = await case.query(CaseWorkflow.state)
    assert (view.stage, view.closure) == ("Active", None), "liability runs to the day asked"
    outcome = await case.result()
    assert (outcome.closure.reason, outcome.closure.closed_on) == ("change_close_request", "2025-02-14")
    await record_history(case, CASE_CHANGE_HISTORIES, "close_request_on_day_asked")
