"""Direct Pay: the receiving parent reports whether each payment arrived. No money passes
through the ledger, so the report is a row of its own, kept once per idempotency key.

Runs on the caller's connection, inside the caller's transaction.
"""

from __future__ import annotations

from datetime import date

from psycopg import AsyncConnection

from .postings import IdempotencyConflict, NotFound, Precondition, fingerprint, require_transaction
from .schedules import current_schedule


async def report_direct_payment(conn: AsyncConnection, key: str, case_id: str, due_date: date, received: bool,
                                amount: int) -> tuple[bool, int]:
    """Records a receiving parent's report. Returns (duplicate, amount short of what was due)."""
    require_transaction(conn)
    request = {"case_id": case_id, "due_date": due_date, "received": received, "amount": amount}
    schedule = await current_schedule(conn, case_id)
    if schedule is None:
        raise NotFound(f"case {case_id} has no schedule")
    if due_date < schedule.starts_on:
        raise Precondition("due_date is before the schedule started")
    due = schedule.instalment(schedule.period_containing(due_date)).amount_pence
    paid = amount if received else 0
    cur = await conn.execute(
        "INSERT INTO direct_pay_reports (idempotency_key, fingerprint, case_id, due_date, received, due_pence, amount_pence)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (idempotency_key) DO NOTHING RETURNING report_id",
        (key, fingerprint(request), case_id, due_date, received, due, paid))
    if await cur.fetchone() is not None:
        return False, max(due - paid, 0)
    cur = await conn.execute("SELECT fingerprint, due_pence, amount_pence FROM direct_pay_reports WHERE idempotency_key = %s",
                             (key,))
    first = await cur.fetchone()
    if first is None:   # ON CONFLICT met a committed report under this key, and reports are never deleted
        raise RuntimeError(f"idempotency key {key!r} conflicted, yet no Direct Pay report holds it")
    fp, due_p, paid_p = first
    if fp != fingerprint(request):
        raise IdempotencyConflict(f"idempotency key {key!r} was already used for a different report")
    return True, max(due_p - paid_p, 0)
