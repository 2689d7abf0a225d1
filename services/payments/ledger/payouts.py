"""Disbursement: passing what is payable to the receiving parent, in two steps. The instruction
moves it to bank clearing; the bank's acceptance settles clearing against client funds. The bank
is called between the two, outside any transaction.

Runs on the caller's connection, inside the caller's transaction.
"""

from __future__ import annotations

from datetime import date

from psycopg import AsyncConnection

from .overpayments import recover_overpayment
from .postings import (
    BANK_CLEARING,
    CLIENT_FUNDS,
    Leg,
    Posted,
    add_legs,
    claim,
    find_posted,
    lock_case,
    record_bank_movement,
    sum_of,
)


async def payable_to_receiving_parent(conn: AsyncConnection, case_id: str) -> int:
    return await sum_of(conn, "SELECT coalesce(-sum(amount_pence), 0) FROM postings"
                              " WHERE case_id = %s AND account = 'rp_payable'", (case_id,))


async def start_disbursement(conn: AsyncConnection, key: str, case_id: str, on: date, due_by: date) -> Posted | None:
    """Moves all that is payable to the receiving parent into bank clearing (payment instructed).
    None when nothing is payable."""
    request = {"case_id": case_id, "on": on, "due_by": due_by}
    await lock_case(conn, case_id)
    if (found := await find_posted(conn, key, request)) is not None:
        return found
    await recover_overpayment(conn, case_id, key, on)
    payable = await payable_to_receiving_parent(conn, case_id)
    if payable <= 0:
        return None
    detail = {"account": "rp_payable", "amount_pence": payable, "due_by": due_by.isoformat()}
    header = await claim(conn, key, request, kind="disbursement", case_id=case_id, value_date=on, detail=detail)
    await add_legs(conn, header.transaction_id, [Leg("rp_payable", payable, case_id), Leg(BANK_CLEARING, -payable)])
    return header


async def settle_disbursement(conn: AsyncConnection, key: str, bank_reference: str, case_id: str, amount: int,
                              on: date) -> Posted:
    """The bank accepted the outgoing payment: clearing -> client funds, and a bank movement."""
    request = {"case_id": case_id, "amount": amount, "bank_reference": bank_reference}
    detail = {"account": CLIENT_FUNDS, "amount_pence": amount, "bank_reference": bank_reference}
    header = await claim(conn, key, request, kind="disbursement_settled", case_id=case_id, value_date=on, detail=detail)
    if header.duplicate:
        return header
    await add_legs(conn, header.transaction_id, [Leg(BANK_CLEARING, amount), Leg(CLIENT_FUNDS, -amount)])
    await record_bank_movement(conn, bank_reference, -amount, on, header.transaction_id)
    return header
