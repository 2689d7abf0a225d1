"""A backdated income increase creates arrears through payments (docs/rules.md, reg 18(4)), end to
end: the real CaseWorkflow and ChangeWorkflow on a time-skipping server of their own, the schedule
handed to the real payments service over gRPC (in process), real PostgreSQL.

The case: application 2025-01-10, Collect & Pay or Direct Pay, monthly from 2025-01-12, £26,000 a
year (£80 a week for two children). On 2025-04-20 the paying parent reports that since 2025-02-01
they earn £800 a week, which they had to report: it counts from 2025-02-01 (£128 a week)."""

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
from cms_proto.payments.v1 import payments_pb2 as pb
from cms_proto.payments.v1 import payments_pb2_grpc
from tests.changes.case_worker import case_worker_with_payments
from tests.helpers.auth import caller_channel
from tests.helpers.replay import CASE_CHANGE_HISTORIES, record_history
from workflows.case import CaseWorkflow
from workflows.case_messages import CaseInput, ChildFacts
from workflows.change import ChangeWorkflow, ReportedChange

pytestmark = pytest.mark.asyncio(loop_scope="session")

APPLIED_ON = date(2025, 4, 20)
INCREASE = ReportedChange(kind="paying_parent_income", effective_date="2025-02-01",
                          details={"weekly_income_pence": 80_000, "duty_to_report": True})


class Hmrc:
    async def verify_address(self, party_id: str) -> bool:
        return True

    async def latest_annual_income(self, party_id: str, requested_on: str) -> HmrcIncome:
        return HmrcIncome(True, 2_600_000, requested_on[:4])


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def with_payments(change_pool, database_url) -> AsyncIterator[tuple[WorkflowEnvironment, Client, str, str]]:
    async with case_worker_with_payments(change_pool, database_url, Hmrc(), "case-arrears") as running:
        yield running


async def case_with_backdated_increase(env, client, queue, address, service_type: str) -> tuple[str, object]:
    """Runs a case to 2025-04-20; on Collect & Pay, payments charges the periods due by then from
    the first collection (what the collection cycles do on each due date); then the increase is
    reported and applied. The first collection is 24 January, 10 working days after the schedule
    letter of 12 January: the month due 12 January is initial arrears, spread over the 11
    instalments due 12 February to 12 December, and is not charged on its own."""
    case_id = f"arr-{uuid.uuid4().hex[:8]}"
    handle = await client.start_workflow(CaseWorkflow.run, CaseInput(
        case_id=case_id, application_date="2025-01-10", receiving_parent_id="rp-1", paying_parent_id="pp-1",
        children=[ChildFacts("c-1", "2015-03-01"), ChildFacts("c-2", "2017-06-30")],
        requested_service_type=service_type, publish_search_attributes=False), id=f"case-{case_id}", task_queue=queue)
    await env.sleep(timedelta(days=(APPLIED_ON - date(2025, 1, 10)).days))
    assert (await handle.query(CaseWorkflow.state)).liability.weekly_liability_pence == 8000
    if service_type == "collect_and_pay":
        async with caller_channel(address) as channel:
            stub = payments_pb2_grpc.PaymentsServiceStub(channel)
            for index in range(1, 4):  # due 12 February, March, April
                await stub.ChargePeriod(pb.ChargePeriodRequest(case_id=case_id, period_index=index))
    with env.auto_time_skipping_disabled():
        receipt = await handle.execute_update(CaseWorkflow.report_change, INCREASE)
        outcome = await client.get_workflow_handle_for(ChangeWorkflow.run, receipt.workflow_id).result()
    assert (outcome.outcome, outcome.effective_date, outcome.weekly_liability_pence) == ("recalculated", "2025-02-01", 12800)
    return case_id, outcome


async def row_when(pool, sql: str, args: tuple) -> tuple:
    for _ in range(300):
        async with pool.connection() as conn:
            row = await (await conn.execute(sql, args)).fetchone()
        if row is not None and None not in row:
            return row
        await asyncio.sleep(0.05)
    raise AssertionError(f"nothing for {args}")


def monthly(weekly_pence: int) -> int:
    return weekly_pence * 52 // 12  # a month of a weekly amount (exact for the amounts here)


async def test_collect_and_pay_arrears_land_in_the_ledger_and_the_record_says_so(with_payments, change_pool) -> None:
    env, client, queue, address = with_payments
    case_id, outcome = await case_with_backdated_increase(env, client, queue, address, "collect_and_pay")
    posted = await row_when(change_pool, (
        "SELECT sum(amount_pence) FILTER (WHERE component = 'maintenance'), sum(amount_pence) FILTER (WHERE component = 'fee')"
        " FROM payments.charges WHERE case_id = %s AND charge_kind = 'adjustment'"), (case_id,))
    arrears, adjustment = await row_when(change_pool, (
        "SELECT arrears_pence, adjustment_pence FROM case_api.change_records WHERE case_id = %s AND change_no = 1"),
        (case_id,))
    # Payments adjusted the three charged months, February, March and April whole at £48 a week
    # more (and the 20% fee on it), and each one's share of the initial arrears: January's month
    # (£346.66 + £69.33 fee) now has 11 of its 31 days at the new amounts, £420.47 + £84.09
    # (1,303,446 / 31 and 260,683 / 31 pence, to the penny), spread over 11 instalments:
    # £38.22 + £7.64 each instead of £31.51 + £6.30, with 5p and 5p instead of 5p and 3p on the first.
    assert posted == (3 * monthly(4800) + 3 * (3822 - 3151), 3 * monthly(960) + 3 * (764 - 630) + (5 - 3))
    # The recorded arrears are what the ledger posted, fee included (the ledger is the source of
    # truth for money); the change's own day count to its clearance (liability only) is another number.
    assert arrears == sum(posted) == 64_413 + 12_884
    assert adjustment == round(4800 * (APPLIED_ON - date(2025, 2, 1)).days / 7) == 53_486
    letter = await row_when(change_pool, (
        "SELECT body->'facts'->>'outcome_reason' FROM case_api.notices WHERE case_id = %s AND template = 'change_outcome'"
        " AND recipient_party_id = 'rp-1'"), (case_id,))
    assert "£772.97 more is owed" in letter[0] and "statement" in letter[0]
    await record_history(client.get_workflow_handle(f"case-{case_id}"), CASE_CHANGE_HISTORIES,
                          "backdated_increase_collect_and_pay")


async def test_direct_pay_letter_states_the_arrears_and_payments_posts_nothing(with_payments, change_pool) -> None:
    env, client, queue, address = with_payments
    case_id, _ = await case_with_backdated_increase(env, client, queue, address, "direct_pay")
    arrears = await row_when(change_pool, (
        "SELECT arrears_pence FROM case_api.change_records WHERE case_id = %s AND change_no = 1"), (case_id,))
    assert arrears[0] == round(monthly(4800) * 11 / 31) + 3 * monthly(4800) == 69_781  # no collection fee
    letters = []
    for _ in range(300):
        async with change_pool.connection() as conn:
            letters = await (await conn.execute(
                "SELECT recipient_party_id, body->'facts'->>'outcome_reason' FROM case_api.notices WHERE case_id = %s"
                " AND template = 'change_outcome' ORDER BY recipient_party_id", (case_id,))).fetchall()
        if len(letters) == 2:
            break
        await asyncio.sleep(0.05)
    assert [party for party, _ in letters] == ["pp-1", "rp-1"]
    assert all("£697.81 more is owed" in text and "to the receiving parent directly" in text for _, text in letters)
    async with change_pool.connection() as conn:
        ledger = await (await conn.execute("SELECT count(*) FROM payments.charges WHERE case_id = %s", (case_id,))).fetchone()
    assert ledger[0] == 0  # Direct Pay: payments keeps the schedule, not a ledger of what is owed
    await record_history(client.get_workflow_handle(f"case-{case_id}"), CASE_CHANGE_HISTORIES,
                          "backdated_increase_direct_pay")


async def test_the_payment_schedule_letter_states_what_the_ledger_will_charge(with_payments, change_pool) -> None:
    """Patch "payment-schedule-letter": after the backdated increase the paying parent's letter
    gives the next payment and the regular one after it; payments' own view of the schedule (its
    next payment the day before each due date) has the same dates and amounts, fee included."""
    env, client, queue, address = with_payments
    case_id, _ = await case_with_backdated_increase(env, client, queue, address, "collect_and_pay")
    facts = await row_when(change_pool, (
        "SELECT body->'facts'->>'next_due_on', body->'facts'->>'next_payment_pence', body->'facts'->>'instalment_pence',"
        " body->'facts'->>'frequency_words' FROM case_api.notices WHERE case_id = %s AND template = 'payment_schedule'"
        " AND recipient_party_id = 'pp-1' AND body->'facts'->>'effective_date' = '2025-02-01'"), (case_id,))
    next_due, next_payment, regular, words = date.fromisoformat(facts[0]), int(facts[1]), int(facts[2]), facts[3]
    await row_when(change_pool, "SELECT 1 FROM payments.schedules WHERE case_id = %s AND version = 2", (case_id,))
    assert (next_due, words) == (date(2025, 5, 12), "every month")  # the first due date after 20 April
    async with caller_channel(address) as channel:
        stub = payments_pb2_grpc.PaymentsServiceStub(channel)
        ahead = await stub.GetBalance(pb.GetBalanceRequest(case_id=case_id, as_of=str(next_due - timedelta(days=1))))
        after = await stub.GetBalance(pb.GetBalanceRequest(case_id=case_id, as_of=next_due.isoformat()))
    assert (ahead.next_payment_due, ahead.next_payment_pence) == (next_due.isoformat(), next_payment)
    assert (after.next_payment_due, after.next_payment_pence) == ("2025-06-12", regular)
    # £128 + 20% a week, and the month's share of the initial arrears (£38.22 + £7.64).
    assert next_payment in (monthly(12800) + monthly(2560) + 3822 + 764, monthly(12800) + monthly(2560) + 3822 + 764 + 1)
