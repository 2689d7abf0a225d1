"""The statutory date and income rules on the real CaseWorkflow with its change workflows
(time-skipping server of its own, real PostgreSQL):

* a change counts from the day the service was told, whatever date a parent gives for that; a
  caseworker records an earlier day only with a reason, and the change goes to a caseworker;
* the duty to report an income increase is the case's: an increase of 25% or more reported late
  counts from the day it happened (reg 18(4));
* income for a case on a default decision revises it from the date the default took effect
  (s.16(3) CSA 1991), from the paying parent's report or from HMRC;
* an HMRC figure arriving between reviews waits for the next review date (reg 20);
* at the annual review current income 25% or more from the new HMRC figure stays, and income
  reported in the 30 days before it meets that test (reg 34(2)(a)).

The cases: application 2025-01-10, notice the same day, initial effective date 2025-01-12 (the
initial decision, with the duty to report, goes that day), first review 2026-01-12 with HMRC asked
on 2025-12-13. Two children, no shared care, Direct Pay. HMRC: £26,000 a year (£498.63 a week),
£31,200 (£598.36 a week) from December 2025."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta

import pytest
import pytest_asyncio
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from domain.calculation import calculate, parse_request
from tests.cases.case_helpers import ScriptedHmrc
from tests.changes.case_worker import case_worker
from tests.helpers.failures import rejection_type
from tests.helpers.replay import CASE_CHANGE_HISTORIES, record_history
from workflows.case import CaseWorkflow
from workflows.case_messages import CaseInput, CaseQuery, CaseView, ChildFacts, IncomeReport, LiabilityRecord
from workflows.change import ChangeOutcome, ChangeWorkflow, ReportedChange

pytestmark = pytest.mark.asyncio(loop_scope="session")

START = date(2025, 1, 10)
IED = date(2025, 1, 12)
REVIEW = date(2026, 1, 12)
OLD_HMRC, NEW_HMRC = 2_600_000, 3_120_000


def weekly(hmrc_annual: int | None = OLD_HMRC, stated_weekly: int | None = None, on: date = IED) -> int:
    """The weekly liability for the two children of these cases."""
    income = ({"gross_weekly_income_pence": stated_weekly} if stated_weekly is not None
              else {"income": {"hmrc_annual_pence": hmrc_annual}})
    request = {"paying_parent": {"relevant_other_children": 0, "flat_rate_benefit": False, **income},
               "receiving_parents": [{"id": "rp-1", "children": [{"id": "c-1", "shared_care_nights": 0},
                                                                 {"id": "c-2", "shared_care_nights": 0}]}],
               "service_type": "direct_pay"}
    return calculate(parse_request(request), effective_date=on).weekly_liability_pence


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def rules_client(change_pool) -> AsyncIterator[tuple[WorkflowEnvironment, Client, str, ScriptedHmrc]]:
    hmrc = ScriptedHmrc()
    async with case_worker(change_pool, hmrc, "case-income-rules") as (env, client, queue):
        yield env, client, queue, hmrc


_STARTED: dict[str, datetime] = {}   # workflow id -> the server time the case began (case date START)


async def start_case(running, hmrc_incomes: dict[str, int] | None) -> tuple[WorkflowHandle, str]:
    """A case whose paying parent HMRC knows with `hmrc_incomes` (None: no HMRC record)."""
    env, client, queue, hmrc = running
    case_id = f"inc-{uuid.uuid4().hex[:8]}"
    paying = f"pp-{case_id}"
    if hmrc_incomes is None:
        hmrc.missing.add(paying)
    else:
        hmrc.incomes[paying] = hmrc_incomes
    handle = await client.start_workflow(CaseWorkflow.run, CaseInput(
        case_id=case_id, application_date=START.isoformat(), receiving_parent_id="rp-1", paying_parent_id=paying,
        children=[ChildFacts("c-1", "2015-03-01"), ChildFacts("c-2", "2017-06-30")],
        publish_search_attributes=False), id=f"case-{case_id}", task_queue=queue)
    _STARTED[handle.id] = await env.get_current_time()
    return handle, case_id


async def to_day(env: WorkflowEnvironment, handle: WorkflowHandle, day: date) -> CaseView:
    """Moves the case calendar to `day` (the case began on START, a case day a real day)."""
    target = _STARTED[handle.id] + timedelta(days=(day - START).days)
    await env.sleep(target - await env.get_current_time())
    return await handle.query(CaseWorkflow.state)


def first_run(running, handle: WorkflowHandle) -> WorkflowHandle:
    """The case's first run: the one that held the annual review (it continued as new after)."""
    return running[1].get_workflow_handle(handle.id, run_id=handle.result_run_id)


async def reported(running, handle: WorkflowHandle, change: ReportedChange) -> ChangeOutcome:
    env, client, _, _ = running
    with env.auto_time_skipping_disabled():
        receipt = await handle.execute_update(CaseWorkflow.report_change, change)
        return await client.get_workflow_handle_for(ChangeWorkflow.run, receipt.workflow_id).result()


async def until(handle: WorkflowHandle, predicate) -> CaseView:
    for _ in range(300):
        view = await handle.query(CaseWorkflow.state)
        if predicate(view):
            return view
        await asyncio.sleep(0.05)
    raise AssertionError(f"the case never got there: {view}")


def liability(view: CaseView) -> LiabilityRecord:
    assert view.liability is not None, "no liability yet"
    return view.liability


async def timeline_kinds(handle: WorkflowHandle) -> list[str]:
    return [event.kind for event in await handle.query(CaseWorkflow.timeline, CaseQuery(recent=30))]


def shared_care(**fields) -> ReportedChange:
    return ReportedChange(kind="shared_care_nights", details={"child_id": "c-1", "nights": 104}, **fields)


async def test_a_parents_reported_date_is_not_taken(rules_client) -> None:
    handle, _ = await start_case(rules_client, {"2025-01-01": OLD_HMRC})
    await to_day(rules_client[0], handle, date(2025, 3, 3))
    # The receiving parent says they told us on 1 February and the nights changed then.
    outcome = await reported(rules_client, handle, shared_care(
        reported_by="receiving_parent", reported_date="2025-02-01", effective_date="2025-02-01"))
    # The day taken is the day the report arrived, and the change counts from it (reg 18(6)).
    assert (outcome.outcome, outcome.reported_date, outcome.effective_date) == ("recalculated", "2025-03-03",
                                                                                 "2025-03-03")
    view = await until(handle, lambda v: liability(v).effective_date == "2025-03-03")
    assert liability(view).weekly_liability_pence < weekly()
    await record_history(handle, CASE_CHANGE_HISTORIES, "change_dated_from_day_told")


async def test_a_caseworker_records_an_earlier_day_told_only_with_a_reason(rules_client) -> None:
    handle, _ = await start_case(rules_client, {"2025-01-01": OLD_HMRC})
    await to_day(rules_client[0], handle, date(2025, 3, 3))
    earlier = shared_care(reported_by="caseworker", reported_date="2025-02-01", effective_date="2025-02-01")
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(CaseWorkflow.report_change, earlier)
    assert rejection_type(refused.value) == "InvalidArgument"
    assert "notification_reason" in str(refused.value.cause)
    earlier.notification_reason = "The call on 1 February was logged against the wrong case"
    receipt = await handle.execute_update(CaseWorkflow.report_change, earlier)
    assert (receipt.needs_caseworker, receipt.assigned_team) == (True, "changes-review")


async def test_a_late_reported_increase_counts_from_when_it_happened(rules_client) -> None:
    handle, _ = await start_case(rules_client, {"2025-01-01": OLD_HMRC})
    await to_day(rules_client[0], handle, date(2025, 5, 1))
    # £498.63 → £700 a week (+40%) from 1 March, reported on 1 May. The report says no duty; the
    # case sent notice of it with the initial decision on 2025-01-12, so it is late (reg 18(4)).
    outcome = await reported(rules_client, handle, ReportedChange(
        kind="paying_parent_income", effective_date="2025-03-01",
        details={"weekly_income_pence": 70_000, "duty_to_report": False}))
    assert (outcome.outcome, outcome.effective_date) == ("recalculated", "2025-03-01")
    view = await until(handle, lambda v: liability(v).effective_date == "2025-03-01")
    assert liability(view).weekly_liability_pence == weekly(stated_weekly=70_000) == 11200
    await until_timeline(handle, "change_arrears")
    await record_history(handle, CASE_CHANGE_HISTORIES, "late_increase_under_the_duty")


async def until_timeline(handle: WorkflowHandle, kind: str) -> None:
    for _ in range(300):
        if kind in await timeline_kinds(handle):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"no {kind} in the timeline: {await timeline_kinds(handle)}")


async def default_case(running) -> WorkflowHandle:
    """A case HMRC has no record for: on a default decision from the initial effective date."""
    handle, _ = await start_case(running, None)
    view = await to_day(running[0], handle, date(2025, 3, 3))
    assert view.liability is not None and liability(view).rate == "default"
    assert liability(view).effective_date == IED.isoformat()
    return handle


async def test_the_paying_parents_income_revises_a_default_from_its_date(rules_client) -> None:
    handle = await default_case(rules_client)
    outcome = await reported(rules_client, handle, ReportedChange(
        kind="paying_parent_income", effective_date="2025-03-03", details={"weekly_income_pence": 52_345}))
    assert (outcome.outcome, outcome.effective_date) == ("recalculated", IED.isoformat())
    view = await until(handle, lambda v: liability(v).rate != "default")
    assert (liability(view).effective_date, liability(view).weekly_liability_pence) == (
        IED.isoformat(), weekly(stated_weekly=52_345))
    # £83.75 a week (16% of £523.45) against the default's £51: the difference since 12 January is arrears.
    await until_timeline(handle, "change_arrears")
    await record_history(handle, CASE_CHANGE_HISTORIES, "default_revised_by_the_paying_parent")


async def test_hmrc_income_revises_a_default_from_its_date(rules_client) -> None:
    handle = await default_case(rules_client)
    await handle.signal(CaseWorkflow.income_received, IncomeReport(OLD_HMRC))
    view = await until(handle, lambda v: liability(v).rate != "default")
    assert (liability(view).effective_date, liability(view).weekly_liability_pence) == (IED.isoformat(), weekly())
    await until_timeline(handle, "default_revised")
    await record_history(handle, CASE_CHANGE_HISTORIES, "default_revised_by_hmrc")


async def test_a_mid_year_hmrc_figure_waits_for_the_review(rules_client) -> None:
    handle, _ = await start_case(rules_client, {"2025-01-01": OLD_HMRC, "2025-06-01": NEW_HMRC})
    await to_day(rules_client[0], handle, date(2025, 6, 10))
    await handle.signal(CaseWorkflow.income_received, IncomeReport(NEW_HMRC))
    # A recalculation for another reason keeps the figure in force (reg 20).
    outcome = await reported(rules_client, handle, shared_care(effective_date="2025-06-10"))
    assert outcome.outcome == "recalculated"
    view = await until(handle, lambda v: liability(v).effective_date == "2025-06-10")
    assert liability(view).gross_weekly_income_pence == 49_863
    view = await to_day(rules_client[0], handle, REVIEW + timedelta(days=2))
    view = await until(handle, lambda v: v.reviews_done == 1 and v.stage == "Active")
    assert (liability(view).effective_date, liability(view).gross_weekly_income_pence) == (REVIEW.isoformat(), 59_836)
    await record_history(first_run(rules_client, handle), CASE_CHANGE_HISTORIES, "mid_year_hmrc_figure_waits_for_the_review")


async def test_the_review_keeps_current_income_25_percent_from_the_new_figure(rules_client) -> None:
    handle, _ = await start_case(rules_client, {"2025-01-01": OLD_HMRC, "2025-12-01": NEW_HMRC})
    await to_day(rules_client[0], handle, date(2025, 3, 3))
    # £800 a week, reported and accepted: 25% or more from £598.36 (the new HMRC figure), so it stays.
    outcome = await reported(rules_client, handle, ReportedChange(
        kind="paying_parent_income", effective_date="2025-03-03", details={"weekly_income_pence": 80_000}))
    assert outcome.outcome == "recalculated"
    await to_day(rules_client[0], handle, REVIEW + timedelta(days=2))
    view = await until(handle, lambda v: v.reviews_done == 1 and v.stage == "Active")
    assert (liability(view).effective_date, liability(view).gross_weekly_income_pence) == (REVIEW.isoformat(), 80_000)
    await record_history(first_run(rules_client, handle), CASE_CHANGE_HISTORIES, "review_keeps_current_income")


async def test_income_reported_before_the_review_meets_the_25_percent_test(rules_client) -> None:
    handle, _ = await start_case(rules_client, {"2025-01-01": OLD_HMRC, "2025-12-01": NEW_HMRC})
    view = await to_day(rules_client[0], handle, date(2025, 12, 20))
    assert view.stage == "AnnualReview"
    # £700 a week is 40% above the figure in force (£498.63) but 17% above the £598.36 the review
    # takes: less than 25%, so the review uses the HMRC figure.
    outcome = await reported(rules_client, handle, ReportedChange(
        kind="paying_parent_income", effective_date="2025-12-20", details={"weekly_income_pence": 70_000}))
    assert outcome.outcome == "no_change"
    assert "less than 25% of the HMRC figure the annual review takes" in outcome.reason
    await to_day(rules_client[0], handle, REVIEW + timedelta(days=2))
    view = await until(handle, lambda v: v.reviews_done == 1 and v.stage == "Active")
    assert (liability(view).effective_date, liability(view).gross_weekly_income_pence) == (REVIEW.isoformat(), 59_836)
    await record_history(first_run(rules_client, handle), CASE_CHANGE_HISTORIES, "review_window_income_test")
