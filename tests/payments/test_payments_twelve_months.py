"""A Collect & Pay case over 12 months: a missed payment, a part payment, an enforcement charge,
a lump sum against arrears, a back-dated liability change and disbursements, with exact balances.

Liability £60.00 a week + 20% fee (£12.00), collected monthly from 5 January 2026:
52 × 6000 / 12 = 26000 maintenance + 5200 fee = 31200 a month. From 5 July (period 6) the
liability is £72.00 + £14.40 a week: 31200 + 6240 = 37440 a month; the change is only decided on
10 August, after periods 6 and 7 were charged and paid at the old rate, so each gets an adjustment
of +5200 maintenance and +1040 fee.
"""

from datetime import date

import pytest

from cms_proto.payments.v1 import payments_pb2 as pb
from tests.payments.payments_helpers import deliver, new_schedule

pytestmark = pytest.mark.asyncio(loop_scope="session")

MONTHLY_OLD, MONTHLY_NEW = 31200, 37440
PAYMENTS = {0: MONTHLY_OLD, 1: MONTHLY_OLD, 2: None, 3: MONTHLY_OLD, 4: 15600, 5: MONTHLY_OLD,
            6: MONTHLY_OLD, 7: MONTHLY_OLD, 8: MONTHLY_NEW, 9: MONTHLY_NEW, 10: MONTHLY_NEW, 11: MONTHLY_NEW}


async def test_twelve_months_of_collect_and_pay(payments_stub, fake_bank) -> None:
    stub, case_id = payments_stub, "twelve-months-1"
    schedule = await new_schedule(stub, case_id, weekly=6000, fee=1200, effective="2026-01-05",
                                  frequency=pb.FREQUENCY_MONTHLY)
    assert [(p.due_date, p.amount_pence, p.fee_pence) for p in schedule.payments[:2]] == [
        ("2026-01-05", 26000, 5200), ("2026-02-05", 26000, 5200)]
    statuses, disbursed = {}, 0
    for month in range(12):
        due = date(2026, month + 1, 5)
        charged = await stub.ChargePeriod(pb.ChargePeriodRequest(case_id=case_id, period_index=month))
        assert charged.due_date == due.isoformat()
        if PAYMENTS[month] is not None:
            await deliver(stub, fake_bank.emit_payment(case_id, PAYMENTS[month], due))
        status = await stub.CheckPeriod(pb.CheckPeriodRequest(case_id=case_id, period_index=month))
        statuses[month] = (status.status, status.due_pence, status.paid_pence)
        out = await stub.Disburse(pb.DisburseRequest(idempotency_key=f"{case_id}/disburse-{month}", case_id=case_id,
                                                     as_of=due.isoformat()))
        disbursed += out.amount_pence
        if month == 2:
            await stub.PostCharge(pb.PostChargeRequest(idempotency_key=f"{case_id}/deo-1", case_id=case_id,
                                                       charge_kind="deduction_from_earnings_order",
                                                       charged_on="2026-03-20", decision_ref="enforcement-1"))
        if month == 7:   # 10 August: the back-dated change is decided
            change = await new_schedule(stub, case_id, weekly=7200, fee=1440, effective="2026-07-05",
                                        frequency=pb.FREQUENCY_MONTHLY)
            assert change.version == 2
            assert [(a.period_index, a.amount_delta_pence, a.fee_delta_pence) for a in change.adjustments] == [
                (6, 5200, 1040), (7, 5200, 1040)]
            again = await new_schedule(stub, case_id, weekly=7200, fee=1440, effective="2026-07-05",
                                       frequency=pb.FREQUENCY_MONTHLY)
            assert again.duplicate and again.version == 2
        if month == 8:  # a lump sum on 20 September: period 8 is paid, so it goes to the oldest arrears
            await deliver(stub, fake_bank.emit_payment(case_id, 20000, date(2026, 9, 20)))
            out = await stub.Disburse(pb.DisburseRequest(idempotency_key=f"{case_id}/disburse-lump", case_id=case_id,
                                                         as_of="2026-09-20"))
            assert out.amount_pence == 20000 - 800 and out.due_by == "2026-09-22"
            disbursed += out.amount_pence

    assert statuses[2] == ("missed", MONTHLY_OLD, 0)
    assert statuses[4] == ("part_paid", MONTHLY_OLD, 15600)
    assert statuses[8] == ("paid", MONTHLY_NEW, MONTHLY_NEW)
    period_2 = await stub.CheckPeriod(pb.CheckPeriodRequest(case_id=case_id, period_index=2))
    assert (period_2.status, period_2.paid_pence) == ("part_paid", 20000)   # the lump went to the oldest arrears
    period_6 = await stub.CheckPeriod(pb.CheckPeriodRequest(case_id=case_id, period_index=6))
    assert (period_6.due_pence, period_6.paid_pence) == (MONTHLY_NEW, MONTHLY_OLD)

    balance = await stub.GetBalance(pb.GetBalanceRequest(case_id=case_id, as_of="2026-12-31"))
    # Due 6 × 31200 + 6 × 37440 = 411840; paid 352560 on due dates + 20000 lump = 372560.
    assert balance.arrears_pence == 411840 - 372560 == 39280
    assert balance.paid_to_date_pence == 372560
    assert balance.enforcement_charges_pence == 5000              # allocated last: still owed
    assert balance.credit_pence == 0
    assert balance.payable_to_receiving_parent_pence == 0         # everything collected was passed on
    assert (balance.next_payment_due, balance.next_payment_pence) == ("2027-01-05", MONTHLY_NEW)
    # Maintenance collected 6 × 26000 + 15600 + 4 × 31200 + 20000 = 316400; the receiving parent's
    # 4% fee per receipt: 6 × 1040 + 624 + 4 × 1248 + 800 = 12656.
    assert disbursed == 316400 - 12656 == 303744

    statement = await stub.GetStatement(pb.GetStatementRequest(case_id=case_id, to_date="2026-12-31"))
    assert statement.closing_arrears_pence == 39280 + 5000
    assert sum(line.paid_pence for line in statement.lines) == 372560
    assert "Adjustment after a change to the calculation" in statement.text

    report = await stub.Reconcile(pb.ReconcileRequest(as_of="2026-12-31"))
    assert report.ok, list(report.differences)
    assert report.ledger_total_pence == 0 and report.bank_clearing_pence == 0
