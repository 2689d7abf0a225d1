"""Ledger operations beyond collecting and paying out, through the gRPC service on real PostgreSQL:
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
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from cms_proto.payments.v1 import payments_pb2 as pb
from services.common.errors import field_violations_of
from services.payments.bank import BankNotification
from tests.payments.payments_helpers import deliver, new_schedule

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
    again = await new_schedule(payments_stub, case_id, effective="2026-02-02", frequency=pb.FREQUENCY_MONTHLY)
    assert again.duplicate and list(again.payments) == list(monthly.payments)
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


# --- 1. suspense → case ---------------------------------------------------------------------------

def _assign(case_id: str, reference: str, *, key: str | None = None, on: str = "2026-01-20", by: str = "cw-17"):
    return pb.AssignSuspensePaymentRequest(idempotency_key=key or f"assign/{reference}", bank_reference=reference,
                                           case_id=case_id, assigned_on=on, assigned_by=by)


async def _open_suspense(stub) -> list[str]:
    return [item.bank_reference for item in (await stub.ListSuspense(pb.ListSuspenseRequest(limit=1000))).items]


async def test_a_suspense_payment_assigned_to_its_case_is_allocated_like_a_payment(payments_db, payments_stub, fake_bank,
                                                                                  case_id) -> None:
    await new_schedule(payments_stub, case_id)
    await _charge(payments_stub, case_id, 0, 1)                        # 5 and 12 January: 12000 due
    await payments_stub.PostCharge(pb.PostChargeRequest(idempotency_key=f"{case_id}/deo", case_id=case_id,
                                                        charge_kind="deduction_from_earnings_order", charged_on="2026-01-13"))
    note = fake_bank.emit_payment("CSA-TYPO-1", 20000, date(2026, 1, 13))
    assert (await deliver(payments_stub, note)).account == "suspense"
    assert note.bank_reference in await _open_suspense(payments_stub)
    before = await _assert_reconciled(payments_stub)

    assigned = await payments_stub.AssignSuspensePayment(_assign(case_id, note.bank_reference))
    # 12 Jan first (current), then 5 Jan, then the £50 enforcement charge; 3000 left is credit.
    assert (assigned.duplicate, assigned.amount_pence, assigned.credit_pence) == (False, 20000, 3000)
    balance = await _balance(payments_stub, case_id, "2026-01-20")
    assert (balance.arrears_pence, balance.enforcement_charges_pence, balance.credit_pence) == (0, 0, 3000)
    assert balance.paid_to_date_pence == 20000
    assert balance.payable_to_receiving_parent_pence == 10000 - 400          # 4% of the maintenance collected
    assert note.bank_reference not in await _open_suspense(payments_stub)
    after = await _assert_reconciled(payments_stub)
    # No second bank movement: the money was already in client funds; it only left suspense.
    assert after.bank_movements_pence == before.bank_movements_pence
    assert after.suspense_pence == before.suspense_pence - 20000
    assert note.bank_reference not in [i.bank_reference for i in after.suspense_items]
    statement = await payments_stub.GetStatement(pb.GetStatementRequest(case_id=case_id, to_date="2026-01-31"))
    assert [(line.description, line.paid_pence, line.balance_pence) for line in statement.lines][-1] == (
        "Payment received (matched to this case later)", 20000, -3000)
    assert ("suspense_assignment", 20000) in await _kinds(payments_db, case_id)


async def test_assigning_is_idempotent_and_refused_when_it_cannot_apply(payments_stub, fake_bank, case_id) -> None:
    await new_schedule(payments_stub, case_id)
    note = fake_bank.emit_payment("", 4000, date(2026, 1, 6))
    await deliver(payments_stub, note)
    first = await payments_stub.AssignSuspensePayment(_assign(case_id, note.bank_reference))
    again = await payments_stub.AssignSuspensePayment(_assign(case_id, note.bank_reference))
    assert (again.duplicate, again.transaction_id, again.credit_pence) == (True, first.transaction_id, 4000)
    other_case = f"{case_id}-b"
    await new_schedule(payments_stub, other_case)
    cases = [
        (_assign(other_case, note.bank_reference), grpc.StatusCode.ALREADY_EXISTS),       # same key, other request
        (_assign(other_case, note.bank_reference, key="assign-2"), grpc.StatusCode.FAILED_PRECONDITION),  # assigned
        (_assign(case_id, "IN-no-such-ref"), grpc.StatusCode.NOT_FOUND),
    ]
    direct = f"{case_id}-dp"
    await new_schedule(payments_stub, direct, service_type="direct_pay", fee=0)
    second = fake_bank.emit_payment("", 1000, date(2026, 1, 6))
    await deliver(payments_stub, second)
    cases += [(_assign("no-schedule", second.bank_reference), grpc.StatusCode.FAILED_PRECONDITION),
              (_assign(direct, second.bank_reference), grpc.StatusCode.FAILED_PRECONDITION),
              (_assign(case_id, second.bank_reference, on="2026-01-05"), grpc.StatusCode.FAILED_PRECONDITION)]
    for request, code in cases:
        assert (await _refused(payments_stub.AssignSuspensePayment(request))).code() == code, request
    assert second.bank_reference in await _open_suspense(payments_stub)
    error = await _refused(payments_stub.AssignSuspensePayment(pb.AssignSuspensePaymentRequest(
        bank_reference=" ", assigned_on="20/01/2026")))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    # assigned_by left empty is the caller the token names (services/common/access.py): never missing.
    assert {f for f, _ in field_violations_of(error)} == {"idempotency_key", "bank_reference", "case_id",
                                                           "assigned_on"}
    error = await _refused(payments_stub.ListSuspense(pb.ListSuspenseRequest(as_of="soon", limit=-1)))
    assert {f for f, _ in field_violations_of(error)} == {"as_of", "limit"}


async def test_racing_assignments_of_one_payment_take_it_once(payments_stub, fake_bank, case_id) -> None:
    import asyncio

    cases = [f"{case_id}-{n}" for n in range(4)]
    for each in cases:
        await new_schedule(payments_stub, each)
    note = fake_bank.emit_payment("", 2500, date(2026, 1, 6))
    await deliver(payments_stub, note)
    results = await asyncio.gather(*(payments_stub.AssignSuspensePayment(_assign(each, note.bank_reference, key=f"k-{each}"))
                                     for each in cases), return_exceptions=True)
    won = [r for r in results if not isinstance(r, BaseException)]
    refusals = [r.code() if isinstance(r, grpc.aio.AioRpcError) else r for r in results if isinstance(r, BaseException)]
    assert len(won) == 1
    assert refusals == [grpc.StatusCode.FAILED_PRECONDITION] * (len(cases) - 1)
    credits = [(await _balance(payments_stub, each, "2026-01-06")).credit_pence for each in cases]
    assert sorted(credits) == [0, 0, 0, 2500]


async def test_a_returned_suspense_payment_is_owed_again_once_assigned(payments_stub, fake_bank, case_id) -> None:
    await new_schedule(payments_stub, case_id)
    await _charge(payments_stub, case_id, 0)
    note = fake_bank.emit_payment("?", 6000, date(2026, 1, 5))
    await deliver(payments_stub, note)
    await payments_stub.AssignSuspensePayment(_assign(case_id, note.bank_reference, on="2026-01-06"))
    returned = fake_bank.emit_return(note, date(2026, 1, 8))
    assert not (await deliver(payments_stub, returned)).duplicate
    assert (await deliver(payments_stub, returned)).duplicate
    balance = await _balance(payments_stub, case_id, "2026-01-09")
    assert (balance.arrears_pence, balance.paid_to_date_pence, balance.payable_to_receiving_parent_pence) == (6000, 0, 0)
    assert note.bank_reference not in await _open_suspense(payments_stub)
    assigned_late = await _refused(payments_stub.AssignSuspensePayment(_assign(case_id, note.bank_reference, key="late")))
    assert assigned_late.code() == grpc.StatusCode.FAILED_PRECONDITION
    await _assert_reconciled(payments_stub)


# --- 2. a bank return after the money was passed on ---------------------------------------------

async def test_a_return_after_disbursement_is_an_overpayment_recovered_from_the_next_collection(
        payments_db, payments_stub, fake_bank, case_id) -> None:
    await new_schedule(payments_stub, case_id)
    await _charge(payments_stub, case_id, 0)
    paid = fake_bank.emit_payment(case_id, 6000, date(2026, 1, 5))
    await deliver(payments_stub, paid)
    out = await payments_stub.Disburse(pb.DisburseRequest(idempotency_key=f"{case_id}/d1", case_id=case_id, as_of="2026-01-06"))
    assert out.amount_pence == 4800
    returned = fake_bank.emit_return(paid, date(2026, 1, 8))
    for _ in range(2):                                                    # a duplicated notification
        await deliver(payments_stub, returned)
    balance = await _balance(payments_stub, case_id, "2026-01-08")
    assert (balance.arrears_pence, balance.paid_to_date_pence) == (6000, 0)                # owed again
    assert (balance.payable_to_receiving_parent_pence, balance.overpaid_to_receiving_parent_pence) == (0, 4800)
    report = await _assert_reconciled(payments_stub)
    assert (case_id, 4800) in [(o.case_id, o.amount_pence) for o in report.receiving_parent_overpayments]
    assert report.receiving_parent_overpaid_pence >= 4800

    await _charge(payments_stub, case_id, 1)
    await deliver(payments_stub, fake_bank.emit_payment(case_id, 6000, date(2026, 1, 12)))   # pays 12 January
    balance = await _balance(payments_stub, case_id, "2026-01-12")
    assert (balance.payable_to_receiving_parent_pence, balance.overpaid_to_receiving_parent_pence) == (0, 0)
    await deliver(payments_stub, fake_bank.emit_payment(case_id, 6000, date(2026, 1, 13)))   # pays 5 January again
    balance = await _balance(payments_stub, case_id, "2026-01-13")
    assert (balance.arrears_pence, balance.payable_to_receiving_parent_pence) == (0, 4800)
    kinds = [k for k in await _kinds(payments_db, case_id) if k[0] in ("rp_overpayment", "overpayment_recovery")]
    assert kinds == [("rp_overpayment", 4800), ("overpayment_recovery", 4800)]
    report = await _assert_reconciled(payments_stub)
    assert case_id not in [o.case_id for o in report.receiving_parent_overpayments]


async def test_a_return_before_disbursement_is_not_an_overpayment(payments_db, payments_stub, fake_bank, case_id) -> None:
    await new_schedule(payments_stub, case_id)
    await _charge(payments_stub, case_id, 0, 1)
    first = fake_bank.emit_payment(case_id, 6000, date(2026, 1, 5))
    await deliver(payments_stub, first)
    await payments_stub.Disburse(pb.DisburseRequest(idempotency_key=f"{case_id}/d1", case_id=case_id, as_of="2026-01-06"))
    second = fake_bank.emit_payment(case_id, 6000, date(2026, 1, 12))
    await deliver(payments_stub, second)                                   # 4800 waiting to be passed on
    await deliver(payments_stub, fake_bank.emit_return(second, date(2026, 1, 14)))
    balance = await _balance(payments_stub, case_id, "2026-01-14")
    assert (balance.payable_to_receiving_parent_pence, balance.overpaid_to_receiving_parent_pence) == (0, 0)
    assert not [k for k, _ in await _kinds(payments_db, case_id) if k in ("rp_overpayment", "overpayment_recovery")]
    # Returning the first (passed on) while the second's 4800 waits: the first is an overpayment,
    # recovered at once from the money waiting, each step its own transaction.
    third = fake_bank.emit_payment(case_id, 6000, date(2026, 1, 15))
    await deliver(payments_stub, third)
    await deliver(payments_stub, fake_bank.emit_return(first, date(2026, 1, 16)))
    balance = await _balance(payments_stub, case_id, "2026-01-16")
    assert (balance.arrears_pence, balance.payable_to_receiving_parent_pence) == (6000, 0)
    assert balance.overpaid_to_receiving_parent_pence == 0
    kinds = [k for k in await _kinds(payments_db, case_id) if k[0] in ("rp_overpayment", "overpayment_recovery")]
    assert kinds == [("rp_overpayment", 4800), ("overpayment_recovery", 4800)]
    await _assert_reconciled(payments_stub)



async def test_returning_credit_that_already_paid_a_period_makes_the_period_unpaid_again(
        payments_db, payments_stub, fake_bank, case_id) -> None:
    await new_schedule(payments_stub, case_id)
    early = fake_bank.emit_payment(case_id, 9000, date(2026, 1, 2))          # held as credit
    await deliver(payments_stub, early)
    await _charge(payments_stub, case_id, 0)                                 # 6000 of it pays 5 January
    out = await payments_stub.Disburse(pb.DisburseRequest(idempotency_key=f"{case_id}/d1", case_id=case_id, as_of="2026-01-05"))
    assert out.amount_pence == 4800
    await deliver(payments_stub, fake_bank.emit_return(early, date(2026, 1, 7)))
    status = await payments_stub.CheckPeriod(pb.CheckPeriodRequest(case_id=case_id, period_index=0))
    assert (status.status, status.paid_pence, status.arrears_pence) == ("missed", 0, 6000)
    balance = await _balance(payments_stub, case_id, "2026-01-07")
    assert (balance.arrears_pence, balance.credit_pence, balance.paid_to_date_pence) == (6000, 0, 0)
    assert (balance.payable_to_receiving_parent_pence, balance.overpaid_to_receiving_parent_pence) == (0, 4800)
    kinds = [k for k in await _kinds(payments_db, case_id) if k[0] in ("allocation_released", "rp_overpayment")]
    assert kinds == [("allocation_released", 6000), ("rp_overpayment", 4800)]
    await _assert_reconciled(payments_stub)

# --- 3. credit and liability changes --------------------------------------------------------------

async def test_held_credit_settles_what_a_backdated_increase_adds_once(payments_stub, fake_bank, case_id) -> None:
    await new_schedule(payments_stub, case_id)
    await deliver(payments_stub, fake_bank.emit_payment(case_id, 20000, date(2026, 1, 2)))   # in advance
    await _charge(payments_stub, case_id, 0, 1)                          # credit 20000 − 2 × 6000 = 8000
    increase = await new_schedule(payments_stub, case_id, effective="2026-01-05", weekly=7000, fee=1400,
                                  key=f"{case_id}/increase")
    assert [(a.amount_delta_pence, a.fee_delta_pence) for a in increase.adjustments] == [(2000, 400)] * 2
    balance = await _balance(payments_stub, case_id, "2026-01-13")
    assert (balance.arrears_pence, balance.credit_pence) == (0, 8000 - 4800)
    assert balance.payable_to_receiving_parent_pence == 14000 - 560
    for index in (0, 1):
        status = await payments_stub.CheckPeriod(pb.CheckPeriodRequest(case_id=case_id, period_index=index))
        assert (status.status, status.due_pence, status.paid_pence) == ("paid", 8400, 8400)
    again = await new_schedule(payments_stub, case_id, effective="2026-01-05", weekly=7000, fee=1400,
                               key=f"{case_id}/increase")
    assert again.duplicate
    assert (await _balance(payments_stub, case_id, "2026-01-13")).credit_pence == 3200


async def test_a_backdated_decrease_on_paid_periods_becomes_credit(payments_db, payments_stub, fake_bank, case_id) -> None:
    await new_schedule(payments_stub, case_id)
    await _charge(payments_stub, case_id, 0, 1)
    await deliver(payments_stub, fake_bank.emit_payment(case_id, 12000, date(2026, 1, 12)))   # both paid
    await new_schedule(payments_stub, case_id, effective="2026-01-05", weekly=4000, fee=800, key=f"{case_id}/decrease")
    balance = await _balance(payments_stub, case_id, "2026-01-13")
    # 2 × (1000 + 200) paid beyond the new amounts: credit, not negative arrears. The receiving
    # parent's 4% on the 2000 maintenance (80) is refunded with it; nothing had been passed on yet.
    assert (balance.arrears_pence, balance.credit_pence) == (0, 2400)
    assert (balance.payable_to_receiving_parent_pence, balance.overpaid_to_receiving_parent_pence) == (9600 - 1920, 0)
    status = await payments_stub.CheckPeriod(pb.CheckPeriodRequest(case_id=case_id, period_index=0))
    assert (status.status, status.due_pence, status.paid_pence) == ("paid", 4800, 4800)
    statement = await payments_stub.GetStatement(pb.GetStatementRequest(case_id=case_id, to_date="2026-01-13"))
    assert statement.closing_arrears_pence == -2400
    third = (await _charge(payments_stub, case_id, 2))[0]                  # the credit settles half of it
    assert (third.status, third.paid_pence, third.arrears_pence) == ("part_paid", 2400, 2400)
    await _assert_reconciled(payments_stub)


async def test_a_backdated_decrease_after_disbursement_is_recovered_from_the_credit_it_creates(
        payments_db, payments_stub, fake_bank, case_id) -> None:
    await new_schedule(payments_stub, case_id)
    await _charge(payments_stub, case_id, 0, 1)
    await deliver(payments_stub, fake_bank.emit_payment(case_id, 12000, date(2026, 1, 12)))
    out = await payments_stub.Disburse(pb.DisburseRequest(idempotency_key=f"{case_id}/d1", case_id=case_id, as_of="2026-01-12"))
    assert out.amount_pence == 9600
    await new_schedule(payments_stub, case_id, effective="2026-01-05", weekly=4000, fee=800, key=f"{case_id}/decrease")
    balance = await _balance(payments_stub, case_id, "2026-01-13")
    assert (balance.credit_pence, balance.payable_to_receiving_parent_pence, balance.overpaid_to_receiving_parent_pence) \
        == (2400, 0, 1920)
    await _charge(payments_stub, case_id, 2)      # 2400 credit pays maintenance of 19 Jan: 2304 collected net of 4%
    balance = await _balance(payments_stub, case_id, "2026-01-19")
    assert (balance.credit_pence, balance.arrears_pence) == (0, 2400)
    assert (balance.payable_to_receiving_parent_pence, balance.overpaid_to_receiving_parent_pence) == (2304 - 1920, 0)
    kinds = [k for k in await _kinds(payments_db, case_id) if k[0] in ("allocation_released", "rp_overpayment",
                                                                        "overpayment_recovery")]
    assert kinds == [("allocation_released", 2400), ("rp_overpayment", 1920), ("overpayment_recovery", 1920)]
    await _assert_reconciled(payments_stub)


# --- properties ------------------------------------------------------------------------------------

_operation = st.one_of(st.tuples(st.just("pay"), st.integers(1, 9000)), st.tuples(st.just("disburse"), st.just(0)),
                       st.tuples(st.just("return"), st.integers(0, 7)))


@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
@given(operations=st.lists(_operation, min_size=1, max_size=12))
async def test_payable_and_overpaid_follow_the_money_under_returns_and_disbursements(payments_stub, fake_bank,
                                                                                      operations) -> None:
    """Maintenance only (no paying parent's fee), ten periods owed, at most eight payments: each
    payment is all maintenance, so what the receiving parent is due is exact: Σ (amount − 4%) of
    the payments not returned, less what was passed on. Payable and overpaid are its two sides
    (never both non-zero, never negative) after every step."""
    from domain.payments.fees import receiving_parent_fee
    from domain.rulesets import rules_for

    case_id = f"prop-rp-{next(_ids)}"
    await new_schedule(payments_stub, case_id, weekly=10000, fee=0)
    await _charge(payments_stub, case_id, *range(10))
    rules, live, disbursed = rules_for(date(2026, 1, 5)), {}, 0
    paid_notes: list[BankNotification] = []
    for step, (kind, value) in enumerate(operations):
        if kind == "pay" and len(paid_notes) < 8:
            note = fake_bank.emit_payment(case_id, value, date(2026, 3, 10))
            await deliver(payments_stub, note)
            paid_notes.append(note)
            live[note.bank_reference] = value
        elif kind == "disburse":
            out = await payments_stub.Disburse(pb.DisburseRequest(idempotency_key=f"{case_id}/d{step}", case_id=case_id,
                                                                  as_of="2026-03-11"))
            disbursed += out.amount_pence
        elif kind == "return" and value < len(paid_notes) and paid_notes[value].bank_reference in live:
            await deliver(payments_stub, fake_bank.emit_return(paid_notes[value], date(2026, 3, 12)))
            del live[paid_notes[value].bank_reference]
        due_to_rp = sum(a - receiving_parent_fee(a, rules) for a in live.values()) - disbursed
        balance = await _balance(payments_stub, case_id, "2026-03-31")
        assert (balance.payable_to_receiving_parent_pence, balance.overpaid_to_receiving_parent_pence) == (
            max(due_to_rp, 0), max(-due_to_rp, 0))
        assert (balance.paid_to_date_pence, balance.arrears_pence) == (sum(live.values()), 100000 - sum(live.values()))
    await _assert_reconciled(payments_stub)


@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(first=st.sampled_from([pb.FREQUENCY_WEEKLY, pb.FREQUENCY_FORTNIGHTLY, pb.FREQUENCY_FOUR_WEEKLY, pb.FREQUENCY_MONTHLY]),
       then=st.sampled_from([pb.FREQUENCY_WEEKLY, pb.FREQUENCY_FORTNIGHTLY, pb.FREQUENCY_FOUR_WEEKLY, pb.FREQUENCY_MONTHLY]),
       charged=st.integers(0, 4), gap=st.integers(0, 2), after=st.integers(1, 5))
@example(first=pb.FREQUENCY_WEEKLY, then=pb.FREQUENCY_MONTHLY, charged=0, gap=0, after=3)   # before any charge
async def test_charging_across_a_frequency_change_charges_each_day_once(payments_stub, first, then, charged, gap,
                                                                      after) -> None:
    """Charge some periods, switch at a later boundary, charge every period through the switch:
    indices are contiguous and unique, due dates strictly increase, and the total follows the
    rounding rule of test_schedule_segments (W per week; floor(m × 52W / 12) for m months).
    (That periods tile the calendar is proved in the pure test there.)"""
    assume(first != then)          # the same frequency would be a liability change, not a switch
    case_id = f"prop-freq-{next(_ids)}"
    weeks = {pb.FREQUENCY_WEEKLY: 1, pb.FREQUENCY_FORTNIGHTLY: 2, pb.FREQUENCY_FOUR_WEEKLY: 4}
    created = await new_schedule(payments_stub, case_id, weekly=5000, fee=0, frequency=first)
    await _charge(payments_stub, case_id, *range(charged))
    switch_index = charged + gap
    switch_on = created.payments[switch_index].period_start
    switched = await new_schedule(payments_stub, case_id, weekly=5000, fee=0, frequency=then, effective=switch_on,
                                  key=f"{case_id}/switch")
    assert switched.payments[0].period_index == switch_index
    statuses = await _charge(payments_stub, case_id, *range(charged, switch_index + after))
    all_periods = [await payments_stub.CheckPeriod(pb.CheckPeriodRequest(case_id=case_id, period_index=i))
                   for i in range(switch_index + after)]
    assert [s.period_index for s in all_periods] == list(range(switch_index + after))
    dues = [date.fromisoformat(s.due_date) for s in all_periods]
    assert dues == sorted(dues) and len(set(dues)) == len(dues)
    def rule(frequency, count):
        return count * 52 * 5000 // 12 if frequency == pb.FREQUENCY_MONTHLY else count * 5000 * weeks[frequency]
    assert sum(s.due_pence for s in all_periods) == rule(first, switch_index) + rule(then, after)
    assert len(statuses) == switch_index + after - charged


_mixed_operation = st.one_of(st.tuples(st.just("pay"), st.integers(1, 400)), st.tuples(st.just("charge"), st.just(0)),
                             st.tuples(st.just("disburse"), st.just(0)), st.tuples(st.just("return"), st.integers(0, 7)))


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(operations=st.lists(_mixed_operation, min_size=1, max_size=14))
async def test_the_books_agree_from_both_sides_under_credit_charges_and_returns(payments_stub, fake_bank,
                                                                               operations) -> None:
    """Payments in advance (credit), charges settled from credit, disbursements and returns in any
    order. Amounts are multiples of 25p on a 25.00 a week maintenance-only schedule, so every
    allocation is a multiple of 25p and every 4% fee is exact: then after each step
      paying parent:  arrears − credit = charged − paid (not returned); period statuses agree;
      receiving parent: payable − overpaid = 96% × maintenance collected − passed on,
    with payable and overpaid never negative and never both non-zero."""
    case_id = f"prop-mix-{next(_ids)}"
    await new_schedule(payments_stub, case_id, weekly=2500, fee=0)
    live, charged, disbursed = {}, 0, 0
    notes: list[BankNotification] = []
    for step, (kind, value) in enumerate(operations):
        if kind == "pay" and len(notes) < 8:
            note = fake_bank.emit_payment(case_id, value * 25, date(2026, 3, 10))
            await deliver(payments_stub, note)
            notes.append(note)
            live[note.bank_reference] = value * 25
        elif kind == "charge" and charged < 8:
            await _charge(payments_stub, case_id, charged)
            charged += 1
        elif kind == "disburse":
            out = await payments_stub.Disburse(pb.DisburseRequest(idempotency_key=f"{case_id}/d{step}", case_id=case_id,
                                                                  as_of="2026-03-11"))
            disbursed += out.amount_pence
        elif kind == "return" and value < len(notes) and notes[value].bank_reference in live:
            await deliver(payments_stub, fake_bank.emit_return(notes[value], date(2026, 3, 12)))
            del live[notes[value].bank_reference]
        balance = await _balance(payments_stub, case_id)
        assert balance.credit_pence >= 0 and balance.paid_to_date_pence == sum(live.values())
        assert balance.arrears_pence - balance.credit_pence == charged * 2500 - sum(live.values())
        periods = [await payments_stub.CheckPeriod(pb.CheckPeriodRequest(case_id=case_id, period_index=i))
                   for i in range(charged)]
        assert sum(p.due_pence - p.paid_pence for p in periods) == balance.arrears_pence
        collected = charged * 2500 - balance.arrears_pence
        due_to_rp = collected * 96 // 100 - disbursed
        assert collected % 25 == 0
        assert (balance.payable_to_receiving_parent_pence, balance.overpaid_to_receiving_parent_pence) == (
            max(due_to_rp, 0), max(-due_to_rp, 0))
    await _assert_reconciled(payments_stub)


async def test_a_statement_without_an_end_date_shows_everything_posted(payments_stub, fake_bank, case_id) -> None:
    """A case on a fast demo calendar has postings dated after today's real date: the default
    statement must still show them (it once stopped at today and came back empty)."""
    await new_schedule(payments_stub, case_id, effective="2099-01-05")
    await _charge(payments_stub, case_id, 0)
    await deliver(payments_stub, fake_bank.emit_payment(case_id, 6000, date(2099, 1, 5)))
    statement = await payments_stub.GetStatement(pb.GetStatementRequest(case_id=case_id))
    assert [(line.date, line.due_pence, line.paid_pence) for line in statement.lines] == [
        ("2099-01-05", 6000, 0), ("2099-01-05", 0, 6000)]
    assert statement.closing_arrears_pence == 0
