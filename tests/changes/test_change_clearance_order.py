"""Two changes open on one case at once clear in either order and end in the same liabilities
from the same dates (patch "change-out-of-order-dates"), on the real CaseWorkflow and
ChangeWorkflow (time-skipping server of their own, real PostgreSQL, schedules recorded in
case_api.payment_requests).

The case: application 2025-01-10, initial effective date 2025-01-12, Direct Pay, £26,000 a year,
one relevant other child (£71 a week for two children). On 2025-03-05 two changes are reported,
each counting from the date it happened:
* D, the relevant other child stops counting from 2025-02-01 (reg 18(3)(a));
* E, income: £650 a week (+30%, had to be reported) from 2025-03-01.
One of them waits for a caseworker (disputed evidence), so the other clears first; or the income
is reported and cleared before the shared care is reported at all."""

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
from workflows.case_messages import CaseInput, CaseQuery, ChildFacts
from workflows.change import ChangeWorkflow, ReportedChange, ReviewDecision

pytestmark = pytest.mark.asyncio(loop_scope="session")

START, REPORTED_ON = date(2025, 1, 10), date(2025, 3, 5)
HMRC_ANNUAL = 2_600_000
NEW_WEEKLY_INCOME = 65_000   # £498.63 a week before: +30%
# Recorded for the replay test (tests/histories.toml says which versions and patches).
HISTORY = "changes_cleared_out_of_date_order"
SEQUENTIAL_HISTORY = "change_dated_before_one_already_cleared"


class Hmrc:
    async def verify_address(self, party_id: str) -> bool:
        return True

    async def latest_annual_income(self, party_id: str, requested_on: str) -> HmrcIncome:
        return HmrcIncome(True, HMRC_ANNUAL, requested_on[:4])


def weekly(other_children: int, stated_weekly: int | None, on: str) -> int:
    income = {"gross_weekly_income_pence": stated_weekly} if stated_weekly else {"income": {"hmrc_annual_pence": HMRC_ANNUAL}}
    request = {"paying_parent": {"relevant_other_children": other_children, "flat_rate_benefit": False, **income},
               "receiving_parents": [{"id": "rp-1", "children": [{"id": "c-1", "shared_care_nights": 0},
                                                                 {"id": "c-2", "shared_care_nights": 0}]}],
               "service_type": "direct_pay"}
    return calculate(parse_request(request), effective_date=date.fromisoformat(on)).weekly_liability_pence


INITIAL = ("2025-01-12", 7100)
D_ONLY = ("2025-02-01", weekly(0, None, "2025-02-01"))              # no other child, the old income
E_ONLY = ("2025-03-01", weekly(1, NEW_WEEKLY_INCOME, "2025-03-01"))  # the new income, the other child
BOTH = ("2025-03-01", weekly(0, NEW_WEEKLY_INCOME, "2025-03-01"))


def other_child_stops(disputed: bool) -> ReportedChange:
    return ReportedChange(kind="relevant_other_children", effective_date="2025-02-01", details={"count": 0},
                          evidence_disputed=disputed)


def income(disputed: bool) -> ReportedChange:
    return ReportedChange(kind="paying_parent_income", effective_date="2025-03-01", evidence_disputed=disputed,
                          details={"weekly_income_pence": NEW_WEEKLY_INCOME, "duty_to_report": True})


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def order_client(change_pool) -> AsyncIterator[tuple[WorkflowEnvironment, Client, str]]:
    async with case_worker(change_pool, Hmrc(), "case-change-order") as running:
        yield running


async def versions(pool, case_id: str, count: int) -> list[tuple[str, int]]:
    """(effective from, weekly liability) of each schedule version handed to payments, once there are `count`."""
    rows: list = []
    for _ in range(300):
        async with pool.connection() as conn:
            rows = await (await conn.execute(
                "SELECT body->>'effective_from', (body->>'weekly_liability_pence')::int FROM case_api.payment_requests "
                "WHERE case_id = %s AND kind = 'create_schedule' ORDER BY (body->>'version')::int", (case_id,))).fetchall()
        if len(rows) >= count:
            return [tuple(row) for row in rows]
        await asyncio.sleep(0.05)
    raise AssertionError(f"{count} schedule versions never came: {rows}")


async def schedule_letters_to_paying_parent(pool, case_id: str) -> list[str]:
    """The dates the paying parent's payment schedule letters count from, in the order written."""
    async with pool.connection() as conn:
        rows = await (await conn.execute(
            "SELECT body->'facts'->>'effective_date' FROM case_api.notices WHERE case_id = %s"
            " AND template = 'payment_schedule' AND recipient_party_id = 'pp-1' ORDER BY created_at", (case_id,))).fetchall()
    return [row[0] for row in rows]


async def arrears_recorded(case, n: int) -> None:
    """Waits until the case has recorded what change `n` adds for payments already due: the case
    takes a cleared change in after the change workflow ends, so its result alone is too early."""
    for _ in range(300):
        if any(event.kind == "change_arrears" and event.text.startswith(f"Change {n} ")
               for event in await case.query(CaseWorkflow.timeline, CaseQuery(recent=30))):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"change {n} never recorded its arrears")


async def arrears_stated(pool, case_id: str) -> int:
    """What the case's changes told the parents they add for payments already due, together."""
    async with pool.connection() as conn:
        row = await (await conn.execute(
            "SELECT coalesce(sum(arrears_pence), 0)::bigint FROM case_api.change_records WHERE case_id = %s",
            (case_id,))).fetchone()
    return row[0]


def in_force(handed: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """What payments holds after every version: a version replaces every rate from its date on."""
    rates: list[tuple[str, int]] = []
    for effective_from, weekly_pence in handed:
        rates = [rate for rate in rates if rate[0] < effective_from] + [(effective_from, weekly_pence)]
    return rates


async def active_case(env, client, queue, pool, initial=INITIAL):
    """A case on 2025-03-05 with its first liability (`initial`: its date and weekly amount)."""
    case_id = f"ord-{uuid.uuid4().hex[:8]}"
    case = await client.start_workflow(CaseWorkflow.run, CaseInput(
        case_id=case_id, application_date=START.isoformat(), receiving_parent_id="rp-1", paying_parent_id="pp-1",
        children=[ChildFacts("c-1", "2015-03-01"), ChildFacts("c-2", "2017-06-30")], relevant_other_children=1,
        publish_search_attributes=False), id=f"case-{case_id}", task_queue=queue)
    await env.sleep(timedelta(days=(REPORTED_ON - START).days))
    assert await versions(pool, case_id, 1) == [initial]
    return case, case_id


async def two_changes(env, client, queue, pool, first: ReportedChange, waits: ReportedChange, initial=INITIAL):
    """Reports both on 2025-03-05; `first` clears at once, `waits` after a caseworker applies it."""
    case, case_id = await active_case(env, client, queue, pool, initial)
    with env.auto_time_skipping_disabled():
        held = await case.execute_update(CaseWorkflow.report_change, waits)
        cleared = await case.execute_update(CaseWorkflow.report_change, first)
        assert held.needs_caseworker and not cleared.needs_caseworker
        await client.get_workflow_handle(cleared.workflow_id).result()
        await versions(pool, case_id, 2)
        await client.get_workflow_handle(held.workflow_id).execute_update(
            ChangeWorkflow.review_decision, ReviewDecision(outcome="apply", reason="evidence seen", reviewer="cw-3"))
        await client.get_workflow_handle(held.workflow_id).result()
    return case, case_id


async def test_changes_clearing_out_of_date_order_end_as_in_date_order(order_client, change_pool) -> None:
    env, client, queue = order_client
    # In date order: the other child (2025-02-01) clears first, then the income (2025-03-01).
    in_order_case, in_order_id = await two_changes(env, client, queue, change_pool, first=other_child_stops(False),
                                                   waits=income(True))
    in_order = await versions(change_pool, in_order_id, 3)
    await arrears_recorded(in_order_case, 1)
    assert in_order == [INITIAL, D_ONLY, BOTH]

    # Out of order: the income clears first, then the earlier-dated other child. Its recalculation
    # from 2025-02-01 is on the facts of 2025-02-01 (the old income), then the income's date again.
    case, out_of_order_id = await two_changes(env, client, queue, change_pool, first=income(False),
                                              waits=other_child_stops(True))
    out_of_order = await versions(change_pool, out_of_order_id, 4)
    await arrears_recorded(case, 1)
    assert out_of_order == [INITIAL, E_ONLY, D_ONLY, BOTH]
    assert D_ONLY[1] != weekly(0, NEW_WEEKLY_INCOME, "2025-02-01"), "the new income would give another amount"

    # The same liabilities from the same dates, and the same liability in force at the end.
    assert in_force(out_of_order) == in_force(in_order) == [INITIAL, D_ONLY, BOTH]
    # On Direct Pay the letters are where the parents learn what is owed for payments already made:
    # together the two changes state the same amount in either order.
    assert await arrears_stated(change_pool, out_of_order_id) == await arrears_stated(change_pool, in_order_id) != 0
    view = await case.query(CaseWorkflow.state)
    assert (view.liability.effective_date, view.liability.weekly_liability_pence) == BOTH
    assert await case.query(CaseWorkflow.open_changes) == []
    # A payment schedule letter with each schedule the parents live under, not with the version
    # for the earlier date that the later one superseded at once: the first, the income's, both.
    assert await schedule_letters_to_paying_parent(change_pool, out_of_order_id) == [
        "2025-01-12", "2025-03-01", "2025-03-01"]
    await record_history(client.get_workflow_handle(case.id), CASE_CHANGE_HISTORIES, HISTORY)


async def test_a_change_dated_before_one_already_cleared_is_recalculated_on_the_facts_of_its_date(
        order_client, change_pool) -> None:
    env, client, queue = order_client
    case, case_id = await active_case(env, client, queue, change_pool)
    with env.auto_time_skipping_disabled():
        for change, count in ((income(False), 2), (other_child_stops(False), 4)):   # one after the other
            receipt = await case.execute_update(CaseWorkflow.report_change, change)
            await client.get_workflow_handle(receipt.workflow_id).result()
            handed = await versions(change_pool, case_id, count)
    assert handed == [INITIAL, E_ONLY, D_ONLY, BOTH]
    assert in_force(handed) == [INITIAL, D_ONLY, BOTH]
    view = await case.query(CaseWorkflow.state)
    assert (view.liability.effective_date, view.liability.weekly_liability_pence) == BOTH
    await record_history(client.get_workflow_handle(case.id), CASE_CHANGE_HISTORIES, SEQUENTIAL_HISTORY)


async def test_the_liabilities_of_each_period() -> None:
    # £498.63 less 11% for one other child: £443.78, 16% = £71.00. Without: 16% of £498.63 = £79.78,
    # £80. £650 a week: less 11% £578.50, 16% = £92.56, £93; without, 16% = £104.
    assert (INITIAL[1], D_ONLY[1], E_ONLY[1], BOTH[1]) == (7100, 8000, 9300, 10400)

