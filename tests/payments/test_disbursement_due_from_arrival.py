"""The ledger's due_by of a disbursement made because money arrived counts the 2 working days
from the arrival (DisburseRequest.arrived_on), not from the day it is paid out; through the gRPC
service on real PostgreSQL. Schedule: weekly £50 + £10 fee from Monday 5 January 2026."""

from __future__ import annotations

from datetime import date

import grpc
import pytest

from cms_proto.payments.v1 import payments_pb2 as pb
from domain.payments.working_days import add_working_days
from services.common.errors import field_violations_of
from tests.payments.payments_helpers import deliver, new_schedule

pytestmark = pytest.mark.asyncio(loop_scope="session")

FRIDAY, MONDAY = date(2026, 1, 9), date(2026, 1, 12)


async def _case_with_money(stub, bank, case_id: str, arrived: date) -> None:
    await new_schedule(stub, case_id)
    await stub.ChargePeriod(pb.ChargePeriodRequest(case_id=case_id, period_index=0))
    await deliver(stub, bank.emit_payment(case_id, 6000, arrived))


def _disburse(stub, case_id: str, key: str, as_of: date, arrived_on: str = ""):
    return stub.Disburse(pb.DisburseRequest(idempotency_key=f"{case_id}/{key}", case_id=case_id,
                                            as_of=as_of.isoformat(), arrived_on=arrived_on))


async def test_money_arriving_friday_paid_out_monday_is_due_by_tuesday(payments_stub, fake_bank, case_id) -> None:
    await _case_with_money(payments_stub, fake_bank, case_id, FRIDAY)
    out = await _disburse(payments_stub, case_id, "arrival", MONDAY, arrived_on=FRIDAY.isoformat())
    assert out.amount_pence == 4800
    assert out.due_by == add_working_days(FRIDAY, 2).isoformat() == "2026-01-13"     # Tuesday, not Wednesday
    # The same request again (a retry) finds the same disbursement and the same due time.
    again = await _disburse(payments_stub, case_id, "arrival", MONDAY, arrived_on=FRIDAY.isoformat())
    assert (again.duplicate, again.due_by) == (True, "2026-01-13")


async def test_over_easter_the_count_from_arrival_skips_the_bank_holidays(payments_stub, fake_bank, case_id) -> None:
    thursday, tuesday = date(2026, 4, 2), date(2026, 4, 7)          # Good Friday and Easter Monday between
    await _case_with_money(payments_stub, fake_bank, case_id, thursday)
    out = await _disburse(payments_stub, case_id, "arrival", tuesday, arrived_on=thursday.isoformat())
    assert out.due_by == add_working_days(thursday, 2).isoformat() == "2026-04-08"


async def test_without_an_arrival_date_due_by_counts_from_as_of(payments_stub, fake_bank, case_id) -> None:
    await _case_with_money(payments_stub, fake_bank, case_id, FRIDAY)
    out = await _disburse(payments_stub, case_id, "cycle", MONDAY)
    assert (out.amount_pence, out.due_by) == (4800, "2026-01-14")


@pytest.mark.parametrize("arrived_on", ["2026-01-13", "2026-02-30", "9 January"])
async def test_an_arrival_after_as_of_or_not_a_date_is_refused(payments_stub, case_id, arrived_on: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _disburse(payments_stub, case_id, "bad", MONDAY, arrived_on=arrived_on)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [field for field, _ in field_violations_of(refused.value)] == ["arrived_on"]
