"""The statutory dates of two kinds of change on the real CaseWorkflow and ChangeWorkflow (time-
skipping server of their own, real PostgreSQL, schedules recorded in case_api.payment_requests):

* a new relevant other child counts from the day the service was told, not from its birth (patch
  "new-relevant-other-child-from-day-told"; reg 18(3)(a) backdates only a child who stops counting);
* a young person who leaves full-time education still qualifies to the terminal date after leaving
  (patch "qualifying-child-terminal-dates"; reg 76, SI 2021/738): the report is recorded and the
  case's own calendar stops them then.

The case: application 2025-01-10, initial effective date 2025-01-12, Direct Pay, £26,000 a year
(£498.63 a week). Children c-1 (born 2015-03-01) and c-2 (born 2008-05-20, in full-time education,
past the 31 August after her 16th birthday)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta

import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from activities.adapters.hmrc import HmrcIncome
from domain.calculation import calculate, parse_request
from tests.changes.case_worker import case_worker
from tests.changes.test_change_clearance_order import versions
from tests.helpers.replay import CASE_CHANGE_HISTORIES, record_history
from workflows.case import CaseWorkflow
from workflows.case_messages import CaseInput, ChildFacts
from workflows.change import ChangeOutcome, ReportedChange

pytestmark = pytest.mark.asyncio(loop_scope="session")

START, REPORTED_ON = date(2025, 1, 10), date(2025, 3, 5)
HMRC_ANNUAL = 2_600_000
HISTORY = "change_date_rules"


class Hmrc:
    async def verify_address(self, party_id: str) -> bool:
        return True

    async def latest_annual_income(self, party_id: str, requested_on: str) -> HmrcIncome:
        return HmrcIncome(True, HMRC_ANNUAL, requested_on[:4])


def weekly(children: list[str], roc: int, on: str) -> int:
    request = {"paying_parent": {"relevant_other_children": roc, "flat_rate_benefit": False,
                                 "income": {"hmrc_annual_pence": HMRC_ANNUAL}},
               "receiving_parents": [{"id": "rp-1", "children": [{"id": c, "shared_care_nights": 0} for c in children]}],
               "service_type": "direct_pay"}
    return calculate(parse_request(request), effective_date=date.fromisoformat(on)).weekly_liability_pence


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def dates_client(change_pool) -> AsyncIterator[tuple[WorkflowEnvironment, Client, str]]:
    async with case_worker(change_pool, Hmrc(), "case-change-dates") as running:
        yield running


async def test_a_new_relevant_other_child_counts_from_the_day_told_and_a_leaver_to_the_terminal_date(
        dates_client, change_pool) -> None:
    env, client, queue = dates_client
    case_id = f"dat-{uuid.uuid4().hex[:8]}"
    case = await client.start_workflow(CaseWorkflow.run, CaseInput(
        case_id=case_id, application_date=START.isoformat(), receiving_parent_id="rp-1", paying_parent_id="pp-1",
        children=[ChildFacts("c-1", "2015-03-01"), ChildFacts("c-2", "2008-05-20", in_full_time_education=True)],
        publish_search_attributes=False), id=f"case-{case_id}", task_queue=queue)
    await env.sleep(timedelta(days=(REPORTED_ON - START).days))
    with env.auto_time_skipping_disabled():
        # Born on 1 February, told on 5 March.
        told = await case.execute_update(CaseWorkflow.report_change, ReportedChange(
            kind="relevant_other_children", effective_date="2025-02-01", details={"count": 1}))
        await client.get_workflow_handle(told.workflow_id).result()
        # c-2 left education on 1 March: the terminal date is 31 May.
        left = await case.execute_update(CaseWorkflow.report_change, ReportedChange(
            kind="child_left_education", effective_date="2025-03-01", reported_by="receiving_parent",
            details={"child_id": "c-2"}))
        recorded = await client.get_workflow_handle(left.workflow_id, result_type=ChangeOutcome).result()
        assert recorded.outcome == "recorded"
    await env.sleep(timedelta(days=(date(2025, 6, 3) - REPORTED_ON).days))
    expected = [("2025-01-12", weekly(["c-1", "c-2"], 0, "2025-01-12")),
                ("2025-03-05", weekly(["c-1", "c-2"], 1, "2025-03-05")),
                ("2025-06-01", weekly(["c-1"], 1, "2025-06-01"))]
    # £498.63: 16% for two children £79.78 → £80; less 11% for a relevant other child £443.78:
    # 16% £71.00 → £71; one child 12% £53.25 → £53.
    assert [pence for _, pence in expected] == [8000, 7100, 5300]
    assert await versions(change_pool, case_id, 3) == expected
    history = await case.query(CaseWorkflow.liability_history)
    assert [(c.child_id, c.qualifies_until) for c in history.children] == [("c-1", "2031-08-31"),
                                                                          ("c-2", "2025-05-31")]
    await record_history(client.get_workflow_handle(case.id), CASE_CHANGE_HISTORIES, HISTORY)


async def test_continuing_in_education_after_stopping_qualifies_again_and_hmrcs_figure_is_historic(
        dates_client, change_pool) -> None:
    """Patches "continuing-education-restores-child" (reg 76: a young person in full-time
    non-advanced education under 20 qualifies, from the day told) and "hmrc-income-is-historic"
    (reg 20, reg 34: HMRC's figure waits for the review; current income is a parent's report)."""
    env, client, queue = dates_client
    case_id = f"dat-{uuid.uuid4().hex[:8]}"
    # c-2 turns 16 on 2025-02-01 and, not reported as continuing in education, stops on 2025-09-01.
    case = await client.start_workflow(CaseWorkflow.run, CaseInput(
        case_id=case_id, application_date=START.isoformat(), receiving_parent_id="rp-1", paying_parent_id="pp-1",
        children=[ChildFacts("c-1", "2015-03-01"), ChildFacts("c-2", "2009-02-01", shared_care_nights=60)],
        publish_search_attributes=False), id=f"case-{case_id}", task_queue=queue)
    told_on = date(2025, 9, 10)
    await env.sleep(timedelta(days=(told_on - START).days))
    with env.auto_time_skipping_disabled():
        from_hmrc = await case.execute_update(CaseWorkflow.report_change, ReportedChange(
            kind="paying_parent_income", reported_by="hmrc", effective_date="2025-09-10",
            details={"weekly_income_pence": 100_000}))
        recorded = await client.get_workflow_handle(from_hmrc.workflow_id, result_type=ChangeOutcome).result()
        assert (recorded.outcome, "historic income" in recorded.reason) == ("recorded", True)
        continuing = await case.execute_update(CaseWorkflow.report_change, ReportedChange(
            kind="child_continuing_education", effective_date="2025-09-01", reported_by="receiving_parent",
            details={"child_id": "c-2"}))
        restored = await client.get_workflow_handle(continuing.workflow_id, result_type=ChangeOutcome).result()
        assert (restored.outcome, restored.effective_date) == ("recalculated", "2025-09-10")
    with_nights = {"paying_parent": {"relevant_other_children": 0, "flat_rate_benefit": False,
                                     "income": {"hmrc_annual_pence": HMRC_ANNUAL}},
                   "receiving_parents": [{"id": "rp-1", "children": [{"id": "c-1", "shared_care_nights": 0},
                                                                     {"id": "c-2", "shared_care_nights": 60}]}],
                   "service_type": "direct_pay"}
    both = calculate(parse_request(with_nights), effective_date=START).weekly_liability_pence
    # £80 for two children, 1/7 off for c-2's half (£40 x 6/7 = £34.29): £74.29; c-1 alone 12%, £60.
    assert (both, weekly(["c-1"], 0, "2025-09-01")) == (7429, 6000)
    assert await versions(change_pool, case_id, 3) == [("2025-01-12", 7429), ("2025-09-01", 6000),
                                                       ("2025-09-10", 7429)]
    history = await case.query(CaseWorkflow.liability_history)
    assert [(c.child_id, c.qualifies_until) for c in history.children] == [("c-1", "2031-08-31"),
                                                                          ("c-2", "2029-01-31")]
    await record_history(client.get_workflow_handle(case.id), CASE_CHANGE_HISTORIES, "change_date_rules_restore")
