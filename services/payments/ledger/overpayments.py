"""Overpayments to the receiving parent.

Maintenance is passed on to the receiving parent soon after it is collected. When it is later
taken back (the bank returns the payment, or a backdated decrease reduces what was due), the
part still waiting in rp_payable is simply not paid out; the part already passed on is an
overpayment to the receiving parent, recorded on rp_overpaid (a debit) by its own transaction
and recovered, one transaction per recovery, from collections before they become payable.

Runs on the caller's connection, inside the caller's transaction (which holds the case lock).
"""

from __future__ import annotations

from datetime import date

from psycopg import AsyncConnection

from .postings import Leg, account_balance, add_legs, aggregate_row, claim


async def undisbursed_share(conn: AsyncConnection, case_id: str, source_transaction_id: int, amount: int) -> int:
    """How much of `amount`, credited to rp_payable by the source transaction, is still waiting to
    be passed on. Payable money leaves first in, first out: what is waiting now is the newest
    money, so the source's money is still there only beyond what was credited after it."""
    balance, credited_later = (int(v) for v in await aggregate_row(
        conn,
        "SELECT coalesce(sum(amount_pence), 0),"
        "       coalesce(-sum(p.amount_pence) FILTER (WHERE p.amount_pence < 0 AND p.transaction_id > %s"
        "                AND t.kind <> 'rp_overpayment'), 0)"
        "  FROM postings p JOIN transactions t USING (transaction_id)"
        " WHERE p.case_id = %s AND p.account = 'rp_payable'", (source_transaction_id, case_id)))
    waiting = -balance
    return max(0, min(amount, waiting - credited_later))


async def record_overpayment(conn: AsyncConnection, case_id: str, key: str, on: date, amount: int,
                             cause: str) -> None:
    """`amount` already passed on but no longer due: owed back by the receiving parent."""
    if amount <= 0:
        return
    header = await claim(conn, key, {"case_id": case_id, "amount": amount, "cause": cause}, kind="rp_overpayment",
                         case_id=case_id, value_date=on,
                         detail={"account": "rp_overpaid", "amount_pence": amount, "cause": cause})
    if not header.duplicate:
        await add_legs(conn, header.transaction_id, [Leg("rp_overpaid", amount, case_id), Leg("rp_payable", -amount, case_id)])


async def recover_overpayment(conn: AsyncConnection, case_id: str, trigger_key: str, on: date) -> None:
    """Collected money waiting for the receiving parent first repays what they were overpaid."""
    overpaid = await account_balance(conn, case_id, "rp_overpaid", credit_side=False)
    if overpaid <= 0:
        return
    payable = await account_balance(conn, case_id, "rp_payable", credit_side=True)
    recovered = min(overpaid, payable)
    if recovered <= 0:
        return
    header = await claim(conn, f"{trigger_key}/rp-recovery", {"case_id": case_id, "trigger": trigger_key},
                         kind="overpayment_recovery", case_id=case_id, value_date=on,
                         detail={"account": "rp_overpaid", "amount_pence": recovered, "trigger": trigger_key})
    if not header.duplicate:
        await add_legs(conn, header.transaction_id, [Leg("rp_payable", recovered, case_id), Leg("rp_overpaid", -recovered, case_id)])
