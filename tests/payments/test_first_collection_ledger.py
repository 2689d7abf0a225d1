"""The payments service holds a Collect & Pay schedule's first collection: nothing is charged
before it (so nothing is missed), and the liability from the schedule's start to it is spread over
the instalments of the first 52 weeks (domain.payments.schedule.with_initial_arrears)."""

from __future__ import annotations

import grpc
import pytest

from cms_proto.payments.v1 import payments_pb2 as pb
from services.common.errors import field_violations_of

pytestmark = pytest.mark.asyncio(loop_scope="session")

# £50 a week + £10 fee from Monday 5 January 2026; the schedule letter that day, so the first
# collection is 10 working days later, Monday 19 January. The periods due 5 and 12 January
# (£100 + £20 fee) are initial arrears: the 50 instalments from 19 January carry £2 + 40p each.
EFFECTIVE, FIRST_COLLECTION = "2026-01-05", "2026-01-19"


async def _schedule(stub, case_id, *, key="schedule-1", effective=EFFECTIVE, weekly=5000, fee=1000,
                    first_collection=FIRST_COLLECTION, service_type="collect_and_pay"):
    return await stub.CreateSchedule(pb.CreateScheduleRequest(
        idempotency_key=f"{case_id}/{key}", case_id=case_id, service_type=service_type,
        frequency=pb.FREQUENCY_WEEKLY, method=pb.METHOD_STANDING_ORDER, effective_date=effective,
        weekly_liability_pence=weekly, paying_parent_fee_pence=fee, first_collection_date=first_collection))


async def test_nothing_falls_due_before_the_first_collection_and_the_initial_arrears_are_spread(
        payments_stub, case_id) -> None:
    created = await _schedule(payments_stub, case_id)
    first = created.payments[0]
    assert (first.period_index, first.due_date, first.amount_pence, first.fee_pence) == (2, "2026-01-19", 5200, 1040)
    assert {(p.amount_pence, p.fee_pence) for p in created.payments[:50]} == {(5200, 1040)}
    assert sum(p.amount_pence for p in created.payments[:50]) == 52 * 5000

    with pytest.raises(grpc.aio.AioRpcError) as nothing_due:
        await payments_stub.ChargePeriod(pb.ChargePeriodRequest(case_id=case_id, period_index=0))
    assert nothing_due.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    early = await payments_stub.GetBalance(pb.GetBalanceRequest(case_id=case_id, as_of="2026-01-13"))
    assert (early.arrears_pence, early.next_payment_due, early.next_payment_pence) == (0, "2026-01-19", 6240)

    charged = await payments_stub.ChargePeriod(pb.ChargePeriodRequest(case_id=case_id, period_index=2))
    assert (charged.due_date, charged.due_pence, charged.status) == ("2026-01-19", 6240, "missed")


async def test_a_later_version_keeps_the_first_collection(payments_stub, case_id) -> None:
    await _schedule(payments_stub, case_id)
    # A change from 12 January (£60 a week, £12 fee): the initial arrears become £50 + £60 and
    # £10 + £12, spread as 50 × £2.20 and 50 × 44p. Later versions send no first collection.
    changed = await _schedule(payments_stub, case_id, key="schedule-2", effective="2026-01-12", weekly=6000, fee=1200,
                              first_collection="")
    first = changed.payments[0]
    assert (first.period_index, first.amount_pence, first.fee_pence) == (2, 6220, 1244)


async def test_a_first_collection_is_for_collect_and_pay_and_not_before_the_schedule(payments_stub, case_id) -> None:
    for kwargs, field in (({"service_type": "direct_pay", "fee": 0}, "first_collection_date"),
                          ({"first_collection": "2026-01-02"}, "first_collection_date"),
                          ({"first_collection": "19/01/2026"}, "first_collection_date")):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await _schedule(payments_stub, case_id, **kwargs)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field in [violation[0] for violation in field_violations_of(refused.value)]
