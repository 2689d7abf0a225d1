"""Money applied to what the paying parent owes, and taken back off it.

Money received settles debts in the statutory order (domain.payments.allocation); collected
maintenance becomes payable to the receiving parent less their 4% fee. Held credit settles new
debts as soon as they are posted; a backdated decrease or a bank return un-allocates money back
into credit. `rule_set_id` is the case schedule's: it sets the receiving parent's fee.

Runs on the caller's connection, inside the caller's transaction (which holds the case lock).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from psycopg import AsyncConnection

from domain.payments.allocation import ENFORCEMENT, FEE, MAINTENANCE, Allocation, Debt, allocate
from domain.payments.fees import receiving_parent_fee
from domain.rulesets import rule_set

from .debts import DEBT_ACCOUNT, current_due_date, outstanding_debts
from .overpayments import record_overpayment, recover_overpayment, undisbursed_share
from .postings import Leg, account_balance, add_legs, claim, sum_of


def allocation_legs(case_id: str, allocations: list[Allocation], rule_set_id: str) -> tuple[list[Leg], dict[str, Any]]:
    """Legs that settle allocated debts; collected maintenance becomes payable to the receiving
    parent less the receiving parent's fee (4%), which is agency income."""
    by_component = {c: sum(a.amount_pence for a in allocations if a.debt.component == c)
                    for c in (MAINTENANCE, FEE, ENFORCEMENT)}
    legs = [Leg(DEBT_ACCOUNT[c], -amount, case_id) for c, amount in by_component.items() if amount]
    collected = by_component[MAINTENANCE]
    rp_fee = receiving_parent_fee(collected, rule_set(rule_set_id))
    if collected:
        legs += [Leg("rp_entitled", collected, case_id), Leg("rp_payable", -(collected - rp_fee), case_id),
                 Leg("agency_fees", -rp_fee)]
    return legs, {"allocated": by_component, "receiving_parent_fee_pence": rp_fee}


async def insert_allocations(conn: AsyncConnection, transaction_id: int, allocations: list[Allocation]) -> None:
    if allocations:
        async with conn.cursor() as cur:
            await cur.executemany("INSERT INTO allocations (transaction_id, charge_id, amount_pence) VALUES (%s, %s, %s)",
                                  [(transaction_id, a.debt.key, a.amount_pence) for a in allocations])


async def apply_credit(conn: AsyncConnection, rule_set_id: str, case_id: str, key: str, on: date) -> None:
    """Money paid in advance settles new debts (a period charge, or what a liability increase added)
    as soon as they are posted. `key` is derived from what caused them, so a retry applies it once."""
    credit = await account_balance(conn, case_id, "pp_credit", credit_side=True)
    if credit <= 0:
        return
    debts = await outstanding_debts(conn, case_id)
    allocations, left = allocate(credit, debts, current_due_date(debts, on))
    if not allocations:
        return
    legs, detail = allocation_legs(case_id, allocations, rule_set_id)
    detail.update(account="pp_credit", amount_pence=credit - left)
    header = await claim(conn, key, {"case_id": case_id, "key": key},
                         kind="credit_applied", case_id=case_id, value_date=on, detail=detail)
    if header.duplicate:
        return
    await add_legs(conn, header.transaction_id, legs + [Leg("pp_credit", credit - left, case_id)])
    await insert_allocations(conn, header.transaction_id, allocations)
    await recover_overpayment(conn, case_id, key, on)


async def release_over_allocations(conn: AsyncConnection, rule_set_id: str, case_id: str, key: str, on: date) -> None:
    """Periods a backdated decrease left paid beyond what is now due: the excess is un-allocated
    and held as the paying parent's credit."""
    over = [d for d in await outstanding_debts(conn, case_id) if d.outstanding_pence < 0 and d.component != ENFORCEMENT]
    if over:
        await _release(conn, rule_set_id, case_id, key, on, [Allocation(d, d.outstanding_pence) for d in over],
                       "liability_decrease")


async def unapply_credit(conn: AsyncConnection, rule_set_id: str, case_id: str, key: str, on: date,
                         shortfall: int) -> None:
    """A returned payment had been held as credit and the credit had already settled debts: undo
    those settlements, newest debt first (fee before maintenance, the reverse of allocation), up
    to what the return took, so the debts are owed again everywhere (balance and period status)."""
    cur = await conn.execute(
        "SELECT a.charge_id, c.due_date, c.component, sum(a.amount_pence)"
        "  FROM allocations a JOIN charges c USING (charge_id) JOIN transactions t ON t.transaction_id = a.transaction_id"
        " WHERE c.case_id = %s AND (t.kind = 'credit_applied'"
        "       OR (t.kind = 'allocation_released' AND t.detail->>'cause' = 'bank_return'))"
        " GROUP BY a.charge_id, c.due_date, c.component HAVING sum(a.amount_pence) > 0"
        " ORDER BY c.due_date DESC, c.component = 'maintenance', a.charge_id DESC", (case_id,))
    releases, left = [], shortfall
    for charge_id, due_date, component, funded in await cur.fetchall():
        if left == 0:
            break
        taken = min(left, int(funded))
        releases.append(Allocation(Debt(charge_id, due_date, component, 0), -taken))
        left -= taken
    if releases:
        await _release(conn, rule_set_id, case_id, key, on, releases, "bank_return")


async def _release(conn: AsyncConnection, rule_set_id: str, case_id: str, key: str, on: date,
                   releases: list[Allocation], cause: str) -> None:
    """Un-allocates money from debts (negative allocations) into the paying parent's credit.
    Maintenance in it had been collected for the receiving parent, so it comes back from
    rp_payable (the 4% fee on it, halves up on the amount released, from the agency's fees);
    what had already been passed on becomes an overpayment to recover."""
    released = {c: -sum(r.amount_pence for r in releases if r.debt.component == c) for c in (MAINTENANCE, FEE, ENFORCEMENT)}
    maintenance, total = released[MAINTENANCE], sum(released.values())
    rp_fee = receiving_parent_fee(maintenance, rule_set(rule_set_id))
    clawed_back = maintenance - rp_fee
    source = await sum_of(conn, "SELECT coalesce(max(transaction_id), 0) FROM allocations WHERE charge_id = ANY(%s)"
                                " AND amount_pence > 0", ([r.debt.key for r in releases],))
    waiting = await undisbursed_share(conn, case_id, source, clawed_back)
    detail = {"account": "pp_credit", "amount_pence": total, "released": released, "receiving_parent_fee_pence": rp_fee,
              "cause": cause, "periods": sorted({str(r.debt.due_date) for r in releases})}
    header = await claim(conn, key, {"case_id": case_id, "key": key}, kind="allocation_released", case_id=case_id,
                         value_date=on, detail=detail)
    if header.duplicate:
        return
    legs = [Leg(DEBT_ACCOUNT[c], amount, case_id) for c, amount in released.items()] + [Leg("pp_credit", -total, case_id)]
    if maintenance:
        legs += [Leg("rp_entitled", -maintenance, case_id), Leg("rp_payable", clawed_back, case_id),
                 Leg("agency_fees", rp_fee)]
    await add_legs(conn, header.transaction_id, legs)
    await insert_allocations(conn, header.transaction_id, releases)
    await record_overpayment(conn, case_id, f"{key}/rp-overpaid", on, clawed_back - waiting, cause)
    await recover_overpayment(conn, case_id, key, on)
