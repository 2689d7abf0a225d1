"""Suspense: payments that could not be attributed to a case, until a caseworker assigns them.

Runs on the caller's connection, inside the caller's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from psycopg import AsyncConnection

from domain.payments.allocation import allocate

from .allocations import allocation_legs, insert_allocations
from .debts import current_due_date, outstanding_debts
from .overpayments import recover_overpayment
from .postings import (
    SUSPENSE,
    Leg,
    NotFound,
    Posted,
    Precondition,
    add_legs,
    claim,
    find_posted,
    lock,
    lock_case,
    reversed_by,
    transaction_by_key,
)
from .schedules import current_schedule


@dataclass
class SuspenseItem:
    bank_reference: str
    claimed_case_id: str
    amount_pence: int
    received_on: date


async def suspense_items(conn: AsyncConnection, as_of: date | None = None, limit: int = 100) -> list[SuspenseItem]:
    """Money still held in suspense: unidentified payments neither assigned to a case nor
    returned (either links back through `reverses`) on `as_of`."""
    as_of = as_of or date.max
    cur = await conn.execute(
        "SELECT t.idempotency_key, coalesce(t.detail->>'claimed_case_id', ''), (t.detail->>'amount_pence')::bigint,"
        "       t.value_date"
        "  FROM transactions t WHERE t.kind = 'unidentified_payment' AND t.value_date <= %s"
        "   AND NOT EXISTS (SELECT 1 FROM transactions r WHERE r.reverses = t.transaction_id AND r.value_date <= %s)"
        " ORDER BY t.value_date, t.transaction_id LIMIT %s", (as_of, as_of, limit))
    return [SuspenseItem(k, c, int(a), d) for k, c, a, d in await cur.fetchall()]


async def assign_suspense(conn: AsyncConnection, key: str, bank_reference: str, case_id: str, on: date,
                          assigned_by: str) -> Posted:
    """Moves a payment held in suspense to the case it belongs to and allocates it exactly as an
    incoming payment received that day would have been (current period, oldest arrears,
    enforcement last, the rest as credit; receiving parent's 4% fee; rp_payable). The money is
    already in client funds, so there is no bank movement. The assignment reverses the suspense
    entry (`reverses`), so an item is assigned at most once and leaves the suspense list."""
    request = {"bank_reference": bank_reference, "case_id": case_id, "on": on, "assigned_by": assigned_by}
    await lock(conn, f"bank-reference:{bank_reference}")
    await lock_case(conn, case_id)
    if (found := await find_posted(conn, key, request)) is not None:
        return found
    original = await transaction_by_key(conn, bank_reference)
    if original is None:
        raise NotFound(f"no payment with bank reference {bank_reference!r}")
    if original.kind != "unidentified_payment":
        raise Precondition(f"payment {bank_reference!r} is not held in suspense")
    taken = await reversed_by(conn, original.transaction_id)
    if taken is not None:
        what = f"assigned to case {taken.case_id}" if taken.kind == "suspense_assignment" else "returned by the bank"
        raise Precondition(f"payment {bank_reference!r} was already {what}")
    schedule = await current_schedule(conn, case_id)
    if schedule is None or schedule.service_type != "collect_and_pay":
        raise Precondition(f"case {case_id} has no Collect & Pay schedule to take the payment")
    if on < original.value_date:
        raise Precondition(f"cannot assign a payment before it was received ({original.value_date})")
    amount = int(original.detail["amount_pence"])
    debts = await outstanding_debts(conn, case_id)
    allocations, credit = allocate(amount, debts, current_due_date(debts, original.value_date))
    legs, detail = allocation_legs(case_id, allocations, schedule.rule_set_id)
    detail.update(account="pp_maintenance", amount_pence=amount, credit_pence=credit, bank_reference=bank_reference,
                  received_on=original.value_date.isoformat(), assigned_by=assigned_by)
    header = await claim(conn, key, request, kind="suspense_assignment", case_id=case_id, value_date=on,
                         detail=detail, reverses=original.transaction_id)
    legs.append(Leg(SUSPENSE, amount))
    if credit:
        legs.append(Leg("pp_credit", -credit, case_id))
    await add_legs(conn, header.transaction_id, legs)
    await insert_allocations(conn, header.transaction_id, allocations)
    await recover_overpayment(conn, case_id, key, on)
    return header
