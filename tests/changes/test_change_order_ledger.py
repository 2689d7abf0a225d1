"""Two changes clearing out of date order charge the paying parent what clearing in date order
charges (patch "change-out-of-order-dates"), end to end on Collect & Pay: the real CaseWorkflow
and ChangeWorkflow on a time-skipping server of their own, every schedule version handed to the
real payments service over gRPC (in process), its ledger in real PostgreSQL.

The case and changes of test_change_clearance_order.py, on Collect & Pay, monthly from 2025-01-12:
the periods due 2025-01-12 and 2025-02-12 are charged before the changes are reported on
2025-03-05; the one due 2025-03-12 after both have cleared."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from cms_proto.payments.v1 import payments_pb2 as pb
from cms_proto.payments.v1 import payments_pb2_grpc
from tests.changes.case_worker import case_worker_with_payments
from tests.changes.test_change_clearance_order import REPORTED_ON, START, Hmrc, income, other_child_stops
from tests.helpers.auth import caller_channel
from workflows.case import CaseWorkflow
from workflows.case_messages import CaseInput, ChildFacts
from workflows.change import ChangeWorkflow, ReviewDecision

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def ledger_client(change_pool, database_url) -> AsyncIterator[tuple[WorkflowEnvironment, Client, str, str]]:
    async with case_worker_with_payments(change_pool, database_url, Hmrc(), "case-order-ledger") as running:
        yield running


async def schedules_handed(pool, case_id: str, count: int) -> None:
    for _ in range(300):
        async with pool.connection() as conn:
            row = await (await conn.execute(
                "SELECT count(*) FROM payments.schedules WHERE case_id = %s", (case_id,))).fetchone()
        if row[0] >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"payments never had {count} schedule versions for {case_id}")


async def charged(pool, case_id: str) -> dict[tuple[int, str], int]:
    """What the ledger charges per period and component, adjustments included."""
    async with pool.connection() as conn:
        rows = await (await conn.execute(
            "SELECT period_index, component, sum(amount_pence)::bigint FROM payments.charges WHERE case_id = %s "
            "GROUP BY period_index, component", (case_id,))).fetchall()
    return {(index, component): total for index, component, total in rows}


async def two_changes_on_collect_and_pay(env, client, queue, address, pool, first, waits, case_id: str = "") -> dict:
    case_id = case_id or f"ordl-{uuid.uuid4().hex[:8]}"
    case = await client.start_workflow(CaseWorkflow.run, CaseInput(
        case_id=case_id, application_date=START.isoformat(), receiving_parent_id="rp-1", paying_parent_id="pp-1",
        children=[ChildFacts("c-1", "2015-03-01"), ChildFacts("c-2", "2017-06-30")], relevant_other_children=1,
        requested_service_type="collect_and_pay", publish_search_attributes=False),
        id=f"case-{case_id}", task_queue=queue)
    await env.sleep(timedelta(days=(REPORTED_ON - START).days))
    await schedules_handed(pool, case_id, 1)
    async with caller_channel(address) as channel:
        stub = payments_pb2_grpc.PaymentsServiceStub(channel)
        # Collect & Pay from the assessment: the first collection is 24 January, 10 working days
        # after the schedule letter of 12 January, so the period due 12 January is initial arrears,
        # spread over the year's instalments, and the first charged is the one due 12 February.
        await stub.ChargePeriod(pb.ChargePeriodRequest(case_id=case_id, period_index=1))
        with env.auto_time_skipping_disabled():
            held = await case.execute_update(CaseWorkflow.report_change, waits)
            cleared = await case.execute_update(CaseWorkflow.report_change, first)
            await client.get_workflow_handle(cleared.workflow_id).result()
            await schedules_handed(pool, case_id, 2)
            await client.get_workflow_handle(held.workflow_id).execute_update(
                ChangeWorkflow.review_decision, ReviewDecision(outcome="apply", reason="evidence seen", reviewer="cw-3"))
            await client.get_workflow_handle(held.workflow_id).result()
        # In date order: 3 versions; out of order: 4 (the earlier change's date, then the later one's again).
        await schedules_handed(pool, case_id, 3 if first.kind == "relevant_other_children" else 4)
        await stub.ChargePeriod(pb.ChargePeriodRequest(case_id=case_id, period_index=2))  # due 12 March
    return await charged(pool, case_id)


async def test_out_of_order_clearance_charges_what_date_order_charges(ledger_client, change_pool) -> None:
    env, client, queue, address = ledger_client
    in_order = await two_changes_on_collect_and_pay(env, client, queue, address, change_pool,
                                                    first=other_child_stops(False), waits=income(True))
    out_of_order = await two_changes_on_collect_and_pay(env, client, queue, address, change_pool,
                                                        first=income(False), waits=other_child_stops(True))
    assert set(in_order) == {(index, component) for index in (1, 2) for component in ("maintenance", "fee")}
    assert out_of_order == in_order
    # The period 12 February to 11 March has the new income in it only from 1 March; the one from
    # 12 March has it throughout (both carry the same share of the initial arrears, give or take
    # the odd pence the first carries).
    assert in_order[(1, "maintenance")] < in_order[(2, "maintenance")]


async def arrears_stated_and_posted(pool, case_id: str) -> tuple[dict[int, int], int]:
    """(arrears each change recorded, by change number; the ledger's adjustments, fee included)."""
    async with pool.connection() as conn:
        stated = await (await conn.execute(
            "SELECT change_no, coalesce(arrears_pence, 0) FROM case_api.change_records WHERE case_id = %s",
            (case_id,))).fetchall()
        posted = await (await conn.execute(
            "SELECT coalesce(sum(amount_pence), 0)::bigint FROM payments.charges "
            "WHERE case_id = %s AND charge_kind = 'adjustment'", (case_id,))).fetchone()
    return dict(stated), posted[0]


async def test_the_arrears_each_change_states_add_up_to_what_the_ledger_posts(ledger_client, change_pool) -> None:
    """Patch "change-out-of-order-arrears": the earlier-dated change clearing last states what it
    adds for the two months already charged from the whole liability history; with the later
    change's own figure that is exactly what the ledger posted as adjustments, in either order."""
    env, client, queue, address = ledger_client
    for first, waits in ((other_child_stops(False), income(True)), (income(False), other_child_stops(True))):
        case_id = f"ordl-{uuid.uuid4().hex[:8]}"
        await two_changes_on_collect_and_pay(env, client, queue, address, change_pool, first, waits, case_id)
        stated, posted = await arrears_stated_and_posted(change_pool, case_id)
        # Change 1 is the one that waited for the caseworker. Both moved payments already due.
        assert stated[1] != 0 and stated[2] != 0, (first.kind, stated)
        assert sum(stated.values()) == posted, (first.kind, stated, posted)
