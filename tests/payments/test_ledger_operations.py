"""Ledger operations (issue 6 follow-up), through the gRPC service on real PostgreSQL:
suspense assignment, a bank return after the money was passed on (an overpayment to the receiving
parent, recovered from later collections), held credit against a liability increase and credit
from a backdated decrease, and a change of collection frequency. Amounts are exact pence.

Schedule used unless stated: weekly from Monday 5 January 2026, £50 maintenance + £10 fee a week
(6000 pence an instalment); the receiving parent's fee is 4% of maintenance collected."""

from __future__ import annotations

import itertools
from datetime import date

import grpc
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cms.payments.v1 import payments_pb2 as pb
from services.common.errors import field_violations_of

from payments_helpers import deliver, new_schedule

pytestmark = pytest.mark.asyncio(loop_scope="session")
_ids = itertools.count()


async def _charge(stub, case_id: str, *indices: int) -> list:
    return [await stub.ChargePeriod(pb.ChargePeriodRequest(case_id=case_id, period_index=i)) for i in indices]


async def _balance(stub, case_id: str, as_of: str = "2026-12-31"):
    return await stub.GetBalance(pb.GetBalanceRequest(case_id=case_id, as_of=as_of))


async def _refused(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    return error.value


async def _kinds(db: str, case_id: str) -> list[tuple[str, int]]:
    """(kind, amount) of each ledger transaction of a case, in posting order."""
    async with await psycopg.AsyncConnection.connect(db, options="-c search_path=payments") as conn:
        cur = await conn.execute("SELECT kind, (detail->>'amount_pence')::bigint FROM transactions"
                                 " WHERE case_id = %s ORDER BY transaction_id", (case_id,))
        return [(k, a) for k, a in await cur.fetchall()]


async def _assert_reconciled(stub) -> pb.ReconciliationReport:
    report = await stub.Reconcile(pb.ReconcileRequest(as_of="2026-12-31"))
    assert report.ok and report.ledger_total_pence == 0, list(report.differences)
    return report


# --- 4. a change of collection frequency ---------------------------------------------------------

async def test_weekly_to_monthly_from_the_first_period_not_yet_charged(payments_stub, case_id) -> None:
    await new_schedule(payments_stub, case_id)
    await _charge(payments_stub, case_id, 0, 1, 2, 3)            # 5, 12, 19, 26 January
    monthly = await new_schedule(payments_stub, case_id, effective="2026-02-02", frequency=pb.FREQUENCY_MONTHLY)
    first = monthly.payments[0]
    # Indices continue from the weekly periods; a month is 52/12 weeks: floor(52 × 5000 / 12) = 21666.
    assert (monthly.version, first.period_index, first.period_start, first.period_end) == (2, 4, "2026-02-02", "2026-03-02")
    assert (first.amount_pence, first.fee_pence) == (21666, 4333)
    assert [p.period_index for p in monthly.payments] == list(range(4, 16)) and not monthly.adjustments
    assert sum(p.amount_pence for p in monthly.payments) == 52 * 5000          # a year of months is 52 weeks
    statuses = await _charge(payments_stub, case_id, 4, 5)
    assert [(s.due_date, s.due_pence) for s in statuses] == [("2026-02-02", 25999), ("2026-03-02", 26000)]
    balance = await _balance(payments_stub, case_id, "2026-03-03")
    assert balance.arrears_pence == 4 * 6000 + 25999 + 26000
    assert (balance.next_payment_due, balance.next_payment_pence) == ("2026-04-02", 21667 + 4334)


async def test_a_new_frequency_must_start_on_a_period_boundary_not_yet_charged(payments_stub, case_id) -> None:
    await new_schedule(payments_stub, case_id)
    await _charge(payments_stub, case_id, 0, 1)
    for effective in ("2026-01-12", "2026-01-21"):   # a charged period; not a period start
        error = await _refused(new_schedule(payments_stub, case_id, effective=effective,
                                            frequency=pb.FREQUENCY_FORTNIGHTLY))
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "2026-01-19 or a later period start" in error.details()
    later = await new_schedule(payments_stub, case_id, effective="2026-02-02", frequency=pb.FREQUENCY_FORTNIGHTLY)
    assert (later.payments[0].period_index, later.payments[0].amount_pence) == (4, 10000)
    # Weekly periods 2 and 3 (19 and 26 January) are still weekly and still chargeable once.
    statuses = await _charge(payments_stub, case_id, 2, 3, 4, 5)
    assert [(s.due_date, s.due_pence) for s in statuses] == [
        ("2026-01-19", 6000), ("2026-01-26", 6000), ("2026-02-02", 12000), ("2026-02-16", 12000)]
    error = await _refused(new_schedule(payments_stub, case_id, effective="2026-01-26", weekly=7000))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION and "before the current fortnightly" in error.details()


async def test_a_liability_change_after_a_frequency_change_adjusts_the_new_periods(payments_stub, case_id) -> None:
    await new_schedule(payments_stub, case_id, frequency=pb.FREQUENCY_FORTNIGHTLY)
    await _charge(payments_stub, case_id, 0)                                      # 5 January, fortnight
    await new_schedule(payments_stub, case_id, effective="2026-01-19", frequency=pb.FREQUENCY_WEEKLY)
    await _charge(payments_stub, case_id, 1, 2, 3)                                # 19, 26 Jan, 2 Feb weekly
    changed = await new_schedule(payments_stub, case_id, effective="2026-01-26", weekly=6000, fee=1200,
                                 frequency=pb.FREQUENCY_WEEKLY)
    assert [(a.period_index, a.amount_delta_pence, a.fee_delta_pence) for a in changed.adjustments] == [
        (2, 1000, 200), (3, 1000, 200)]
    statuses = [await payments_stub.CheckPeriod(pb.CheckPeriodRequest(case_id=case_id, period_index=i)) for i in range(4)]
    assert [(s.due_date, s.due_pence) for s in statuses] == [
        ("2026-01-05", 12000), ("2026-01-19", 6000), ("2026-01-26", 7200), ("2026-02-02", 7200)]


async def test_direct_pay_reports_use_the_current_frequency(payments_stub, case_id) -> None:
    await new_schedule(payments_stub, case_id, service_type="direct_pay", fee=0)
    await new_schedule(payments_stub, case_id, service_type="direct_pay", fee=0, effective="2026-01-19",
                       frequency=pb.FREQUENCY_FOUR_WEEKLY)
    reports = [("2026-01-12", True, 5000), ("2026-01-19", True, 15000)]
    for n, (due, received, amount) in enumerate(reports):
        result = await payments_stub.ReportDirectPayment(pb.ReportDirectPaymentRequest(
            idempotency_key=f"{case_id}/report-{n}", case_id=case_id, due_date=due, received=received, amount_pence=amount))
        assert result.shortfall_pence == (0, 5000)[n]      # four weeks at 5000 a week is 20000
