"""Money received from the bank, and the bank taking it back.

An incoming payment for a Collect & Pay case is allocated to what is owed (the rest held as
credit); one that cannot be attributed is held in suspense. A bank return reverses the payment
(and its suspense assignment, if any) so what it paid is owed again.

Runs on the caller's connection, inside the caller's transaction.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

from psycopg import AsyncConnection

from domain.payments.allocation import allocate

from .allocations import allocation_legs, insert_allocations, unapply_credit
from .debts import current_due_date, outstanding_debts
from .overpayments import record_overpayment, recover_overpayment, undisbursed_share
from .postings import (
    CLIENT_FUNDS,
    SUSPENSE,
    Leg,
    NotFound,
    Posted,
    Precondition,
    account_balance,
    add_legs,
    claim,
    find_posted,
    legs_of,
    lock,
    lock_case,
    record_bank_movement,
    reversed_by,
    transaction_by_key,
)
from .schedules import current_schedule


@dataclass
class IncomingPayment:
    idempotency_key: str       # bank reference
    case_id: str
    amount_pence: int
    received_on: date
    method: str


async def record_incoming_payment(conn: AsyncConnection, payment: IncomingPayment) -> Posted:
    request = asdict(payment)
    if payment.case_id:
        await lock_case(conn, payment.case_id)
    if (found := await find_posted(conn, payment.idempotency_key, request)) is not None:
        return found
    schedule = await current_schedule(conn, payment.case_id) if payment.case_id else None
    if schedule is None or schedule.service_type != "collect_and_pay":
        reason = "unknown case" if schedule is None else "case is not on Collect & Pay"
        return await _to_suspense(conn, payment, request, reason)
    debts = await outstanding_debts(conn, payment.case_id)
    allocations, credit = allocate(payment.amount_pence, debts, current_due_date(debts, payment.received_on))
    legs, detail = allocation_legs(payment.case_id, allocations, schedule.rule_set_id)
    detail.update(account="pp_maintenance", amount_pence=payment.amount_pence, credit_pence=credit)
    header = await claim(conn, payment.idempotency_key, request, kind="incoming_payment",
                         case_id=payment.case_id, value_date=payment.received_on, detail=detail)
    legs.append(Leg(CLIENT_FUNDS, payment.amount_pence))
    if credit:   # paid in advance or overpaid: held for the paying parent, applied to the next charge
        legs.append(Leg("pp_credit", -credit, payment.case_id))
    await add_legs(conn, header.transaction_id, legs)
    await insert_allocations(conn, header.transaction_id, allocations)
    await record_bank_movement(conn, payment.idempotency_key, payment.amount_pence, payment.received_on,
                               header.transaction_id)
    await recover_overpayment(conn, payment.case_id, payment.idempotency_key, payment.received_on)
    return header


async def _to_suspense(conn: AsyncConnection, payment: IncomingPayment, request: dict[str, Any], reason: str) -> Posted:
    """Money we cannot attribute is held in suspense and reported by reconciliation: never lost."""
    detail = {"account": SUSPENSE, "claimed_case_id": payment.case_id, "reason": reason,
              "amount_pence": payment.amount_pence}
    header = await claim(conn, payment.idempotency_key, request, kind="unidentified_payment",
                         case_id=None, value_date=payment.received_on, detail=detail)
    if header.duplicate:
        return header
    await add_legs(conn, header.transaction_id, [Leg(CLIENT_FUNDS, payment.amount_pence), Leg(SUSPENSE, -payment.amount_pence)])
    await record_bank_movement(conn, payment.idempotency_key, payment.amount_pence, payment.received_on,
                               header.transaction_id)
    return header


async def record_return(conn: AsyncConnection, key: str, original_reference: str, on: date) -> Posted:
    """The bank returned a payment (e.g. a direct debit bounced): reverse its legs and allocations,
    so what it paid is owed again. A payment that had been assigned from suspense is reversed
    together with its assignment. Maintenance from it that was already passed to the receiving
    parent becomes a recorded overpayment (see overpayments), never a negative payable."""
    request = {"original": original_reference}
    await lock(conn, f"bank-reference:{original_reference}")
    original = await transaction_by_key(conn, original_reference)
    if original is None:
        raise NotFound(f"no payment with bank reference {original_reference!r}")
    if original.kind not in ("incoming_payment", "unidentified_payment"):
        raise Precondition(f"{original_reference!r} is not an incoming payment")
    assignment = await reversed_by(conn, original.transaction_id)
    if assignment is not None and assignment.kind != "suspense_assignment":
        assignment = None    # the return itself: the duplicate check below finds it
    case_id = assignment.case_id if assignment else original.case_id
    if case_id:
        await lock_case(conn, case_id)
    if (found := await find_posted(conn, key, request)) is not None:
        return found
    paid_by = assignment or original
    if await reversed_by(conn, paid_by.transaction_id) is not None:
        raise Precondition(f"payment {original_reference!r} was already returned")
    amount = int(original.detail.get("amount_pence", 0))
    payable = -sum(v for a, v, _ in await legs_of(conn, paid_by.transaction_id) if a == "rp_payable")
    waiting = await undisbursed_share(conn, case_id, paid_by.transaction_id, payable) if case_id else 0
    detail = {"account": "reversal", "reverses": original_reference, "amount_pence": amount}
    header = await claim(conn, key, request, kind="reversal", case_id=case_id, value_date=on,
                         detail=detail, reverses=paid_by.transaction_id)
    await _reverse(conn, header.transaction_id, [original.transaction_id] + ([assignment.transaction_id] if assignment else []))
    await record_bank_movement(conn, key, -amount, on, header.transaction_id)
    if case_id:
        await _after_return(conn, case_id, key, on, passed_on=payable - waiting)
    return header


async def _reverse(conn: AsyncConnection, transaction_id: int, reversed_ids: list[int]) -> None:
    """Posts the negation of the reversed transactions' legs (netted per account) and allocations."""
    legs: dict[tuple[str, str | None], int] = {}
    for tid in reversed_ids:
        for account, value, leg_case in await legs_of(conn, tid):
            legs[(account, leg_case)] = legs.get((account, leg_case), 0) - value
    await add_legs(conn, transaction_id, [Leg(a, v, c) for (a, c), v in legs.items()])
    await conn.execute("INSERT INTO allocations (transaction_id, charge_id, amount_pence)"
                       " SELECT %s, charge_id, -amount_pence FROM allocations WHERE transaction_id = ANY(%s)",
                       (transaction_id, reversed_ids))


async def _after_return(conn: AsyncConnection, case_id: str, key: str, on: date, passed_on: int) -> None:
    """The receiving parent's side of a return (what was already passed on is an overpayment),
    then the paying parent's: credit the returned money had already spent is un-spent."""
    if passed_on > 0:
        await record_overpayment(conn, case_id, f"{key}/rp-overpaid", on, passed_on, "bank_return")
        await recover_overpayment(conn, case_id, key, on)
    held = await account_balance(conn, case_id, "pp_credit", credit_side=True)
    if held < 0:
        schedule = await current_schedule(conn, case_id)
        if schedule is None:   # money reaches a case (directly or from suspense) only through its schedule
            raise RuntimeError(f"case {case_id} had a payment allocated but has no schedule")
        await unapply_credit(conn, schedule.rule_set_id, case_id, f"{key}/credit-unapplied", on, -held)
