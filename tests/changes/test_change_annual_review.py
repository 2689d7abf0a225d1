"""A change that arrives during an annual review, on the real CaseWorkflow (time-skipping server of
its own, real PostgreSQL): the review (HMRC figure requested 30 days before the anniversary,
recalculation on it) and the change each end in the right liability from the right date, whether
the change is dated before or after the review date, and a change still open at the review is
applied after the continue-as-new that follows it.

The case: application 2025-01-10, initial effective date 2025-01-12, first review 2026-01-12 (HMRC
asked on 2025-12-13). HMRC: £26,000 a year until December 2025, then £39,000. What payments were
handed (case_api.payment_requests, one row per schedule version) is folded into the liability
history payments keeps (a version replaces every rate from its effective date on)."""

from __future__ import annotations

import asyncio
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
from tests.helpers.replay import CASE_CHANGE_HISTORIES, record_history
from workflows.case import CaseWorkflow
from workflows.case_messages import CaseInput, ChildFacts
from workflows.change import ChangeWorkflow, ReportedChange, ReviewDecision

pytestmark = pytest.mark.asyncio(loop_scope="session")

REVIEW = date(2026, 1, 12)
OLD_HMRC, NEW_HMRC = 2_600_000, 3_900_000
START = date(2025, 1, 10)


class Hmrc:
    async def verify_address(self, party_id: str) -> bool:
        return True

    async def latest_annual_income(self, party_id: str, requested_on: str) -> HmrcIncome:
        annual = NEW_HMRC if requested_on >= "2025-12-01" else OLD_HMRC
        return HmrcIncome(True, annual, requested_on[:4])


def weekly(c1_nights: int = 0, hmrc_annual: int | None = OLD_HMRC, stated_weekly: int | None = None,
           on: date = REVIEW) -> int:
    """The weekly liability the calculation gives for the two children of these cases."""
    income = {"gross_weekly_income_pence": stated_weekly} if stated_weekly else {"income": {"hmrc_annual_pence": hmrc_annual}}
    request = {"paying_parent": {"relevant_other_children": 0, "flat_rate_benefit": False, **income},
               "receiving_parents": [{"id": "rp-1", "children": [{"id": "c-1", "shared_care_nights": c1_nights},
                                                                 {"id": "c-2", "shared_care_nights": 0}]}],
               "service_type": "direct_pay"}
    return calculate(parse_request(request), effective_date=on).weekly_liability_pence


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def review_client(change_pool) -> AsyncIterator[tuple[WorkflowEnvironment, Client, str]]:
    async with case_worker(change_pool, Hmrc(), "case-review-changes") as running:
        yield running


async def case_in_review(env: WorkflowEnvironment, client: Client, queue: str):
    """A case on 2025-12-20: in its annual review, the new HMRC figure requested."""
    case_id = f"rev-{uuid.uuid4().hex[:8]}"
    handle = await client.start_workflow(CaseWorkflow.run, CaseInput(
        case_id=case_id, application_date=START.isoformat(), receiving_parent_id="rp-1", paying_parent_id="pp-1",
        children=[ChildFacts("c-1", "2015-03-01"), ChildFacts("c-2", "2017-06-30")],
        publish_search_attributes=False), id=f"case-{case_id}", task_queue=queue)
    await env.sleep(timedelta(days=(date(2025, 12, 20) - START).days))
    view = await handle.query(CaseWorkflow.state)  # (a query sees the time of the last workflow task)
    assert view.stage == "AnnualReview" and view.liability is not None
    assert view.liability.weekly_liability_pence == weekly()
    return handle, case_id


def shared_care(effective: str, **extra) -> ReportedChange:
    return ReportedChange(kind="shared_care_nights", effective_date=effective, reported_by="receiving_parent",
                          details={"child_id": "c-1", "nights": 52}, **extra)


async def after_review(env: WorkflowEnvironment, handle, on: date = date(2026, 2, 1)):
    """Moves the clock past the review (and the continue-as-new after it) to case date `on`."""
    await env.sleep(timedelta(days=(on - date(2025, 12, 20)).days))
    for _ in range(200):
        view = await handle.query(CaseWorkflow.state)
        if view.reviews_done == 1 and view.stage == "Active":
            return view
        await asyncio.sleep(0.05)
    raise AssertionError(f"the review did not complete: {view}")


async def liability_history(pool, case_id: str, since: date = date(2025, 12, 1)) -> list[tuple[str, int]]:
    """(effective from, weekly liability) as payments holds it after every version handed over."""
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT (body->>'effective_from'), (body->>'weekly_liability_pence')::int FROM case_api.payment_requests "
            "WHERE case_id = %s AND kind = 'create_schedule' ORDER BY (body->>'version')::int", (case_id,))
        versions = await cursor.fetchall()
    rates: list[tuple[str, int]] = []
    for effective_from, weekly_pence in versions:
        rates = [rate for rate in rates if rate[0] < effective_from] + [(effective_from, weekly_pence)]
    return [rate for rate in rates if rate[0] >= since.isoformat()]


async def until_history(pool, case_id: str, expected: list[tuple[str, int]]) -> list[tuple[str, int]]:
    for _ in range(200):
        history = await liability_history(pool, case_id)
        if history == expected:
            break
        await asyncio.sleep(0.05)
    return history


async def test_shared_care_dated_before_the_review_date(review_client, change_pool) -> None:
    env, client, queue = review_client
    case, case_id = await case_in_review(env, client, queue)
    with env.auto_time_skipping_disabled():
        receipt = await case.execute_update(CaseWorkflow.report_change, shared_care("2025-12-20"))
        outcome = await client.get_workflow_handle_for(ChangeWorkflow.run, receipt.workflow_id).result()
    assert (outcome.outcome, outcome.effective_date) == ("recalculated", "2025-12-20")
    view = await after_review(env, case)
    # The nights from their own date on the income then in force; the review from its date on
    # the new HMRC figure with the nights in it.
    expected = [("2025-12-20", weekly(52, OLD_HMRC)), ("2026-01-12", weekly(52, NEW_HMRC))]
    assert expected[0][1] == 7429 and expected[1][1] != weekly(0, NEW_HMRC)
    assert await until_history(change_pool, case_id, expected) == expected
    view = await case.query(CaseWorkflow.state)
    assert (view.liability.effective_date, view.liability.weekly_liability_pence) == expected[-1]
    assert view.runs >= 2  # the review continued as new; the change was applied before it did
    review_run = client.get_workflow_handle(case.id, run_id=case.result_run_id)
    await record_history(review_run, CASE_CHANGE_HISTORIES, "change_before_review_date")


async def test_shared_care_dated_after_the_review_date(review_client, change_pool) -> None:
    env, client, queue = review_client
    case, case_id = await case_in_review(env, client, queue)
    with env.auto_time_skipping_disabled():
        receipt = await case.execute_update(CaseWorkflow.report_change, shared_care("2026-01-20"))
        await client.get_workflow_handle_for(ChangeWorkflow.run, receipt.workflow_id).result()
    await after_review(env, case)
    # The review must not take in nights that start after it.
    expected = [("2026-01-12", weekly(0, NEW_HMRC)), ("2026-01-20", weekly(52, NEW_HMRC))]
    assert await until_history(change_pool, case_id, expected) == expected
    view = await case.query(CaseWorkflow.state)
    assert (view.liability.effective_date, view.liability.weekly_liability_pence) == expected[-1]
    review_run = client.get_workflow_handle(case.id, run_id=case.result_run_id)
    await record_history(review_run, CASE_CHANGE_HISTORIES, "change_after_review_date")


async def test_income_change_reported_in_the_review_is_taken_into_it(review_client, change_pool) -> None:
    env, client, queue = review_client
    case, case_id = await case_in_review(env, client, queue)
    # £1,000 a week, against £498.63 in the calculation and £747.95 in the HMRC figure the review
    # takes: 25% or more from that figure, so it is taken in (reg 34(2)(a)).
    stated = 100_000
    with env.auto_time_skipping_disabled():
        receipt = await case.execute_update(CaseWorkflow.report_change, ReportedChange(
            kind="paying_parent_income", effective_date="2025-12-15", details={"weekly_income_pence": stated}))
        outcome = await client.get_workflow_handle_for(ChangeWorkflow.run, receipt.workflow_id).result()
    # During a review an income change takes effect from the review date, not before.
    assert (outcome.outcome, outcome.effective_date) == ("recalculated", "2026-01-12")
    await after_review(env, case)
    expected = [("2026-01-12", weekly(stated_weekly=stated))]
    assert await until_history(change_pool, case_id, expected) == expected
    # And the reported income is not lost to the HMRC figure at the review.
    view = await case.query(CaseWorkflow.state)
    assert (view.liability.effective_date, view.liability.weekly_liability_pence) == expected[-1]
    review_run = client.get_workflow_handle(case.id, run_id=case.result_run_id)
    await record_history(review_run, CASE_CHANGE_HISTORIES, "income_change_in_review")


async def test_change_open_at_the_review_is_applied_after_the_continue_as_new(review_client, change_pool) -> None:
    env, client, queue = review_client
    case, case_id = await case_in_review(env, client, queue)
    receipt = await case.execute_update(CaseWorkflow.report_change,
                                        shared_care("2025-12-20", evidence_disputed=True))
    assert receipt.needs_caseworker
    view = await after_review(env, case, on=date(2026, 1, 14))
    runs = view.runs
    assert runs >= 2 and await case.query(CaseWorkflow.open_changes) == [receipt.change_no]
    assert await liability_history(change_pool, case_id) == [("2026-01-12", weekly(0, NEW_HMRC))]
    change = client.get_workflow_handle(receipt.workflow_id)
    with env.auto_time_skipping_disabled():
        await change.execute_update(ChangeWorkflow.review_decision, ReviewDecision(
            outcome="apply", reason="care diary checked", reviewer="cw-7"))
    expected = [("2025-12-20", weekly(52, OLD_HMRC)), ("2026-01-12", weekly(52, NEW_HMRC))]
    assert await until_history(change_pool, case_id, expected) == expected
    assert await case.query(CaseWorkflow.open_changes) == []
    await record_history(client.get_workflow_handle(case.id), CASE_CHANGE_HISTORIES,
                         "change_applied_after_the_review_run")
