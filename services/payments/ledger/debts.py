"""What the paying parent owes: charge rows, the legs a charge posts, and what is still outstanding.

Runs on the caller's connection, inside the caller's transaction.
"""

from __future__ import annotations

from datetime import date

from psycopg import AsyncConnection

from domain.payments.allocation import ENFORCEMENT, FEE, MAINTENANCE, Debt

from .postings import Leg

DEBT_ACCOUNT = {MAINTENANCE: "pp_maintenance", FEE: "pp_fee", ENFORCEMENT: "pp_enforcement"}


def charge_legs(case_id: str, component: str, amount: int) -> list[Leg]:
    """Owed by the paying parent (debit) against who it is owed to (credit)."""
    if component == MAINTENANCE:
        return [Leg("pp_maintenance", amount, case_id), Leg("rp_entitled", -amount, case_id)]
    if component == FEE:
        return [Leg("pp_fee", amount, case_id), Leg("agency_fees", -amount)]
    return [Leg("pp_enforcement", amount, case_id), Leg("agency_enforcement", -amount)]


async def insert_charge(conn: AsyncConnection, transaction_id: int, case_id: str, kind: str,
                        period_index: int | None, due_date: date, component: str, amount: int) -> None:
    await conn.execute(
        "INSERT INTO charges (transaction_id, case_id, charge_kind, period_index, due_date, component, amount_pence)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (transaction_id, case_id, kind, period_index, due_date, component, amount))


async def charged_periods(conn: AsyncConnection, case_id: str) -> list[int]:
    cur = await conn.execute("SELECT DISTINCT period_index FROM charges WHERE case_id = %s AND charge_kind = 'period'",
                             (case_id,))
    return [r[0] for r in await cur.fetchall()]


async def outstanding_debts(conn: AsyncConnection, case_id: str) -> list[Debt]:
    """Net outstanding per (due date, component): charges and adjustments less allocations.
    Allocations are recorded against the first positive charge of each group (its key)."""
    cur = await conn.execute(
        "SELECT c.due_date, c.component, sum(c.amount_pence) - coalesce(sum(a.allocated), 0) AS outstanding,"
        "       min(c.charge_id) FILTER (WHERE c.amount_pence > 0) AS charge_id"
        "  FROM charges c"
        "  LEFT JOIN (SELECT charge_id, sum(amount_pence) AS allocated FROM allocations GROUP BY charge_id) a"
        "    USING (charge_id)"
        " WHERE c.case_id = %s GROUP BY c.due_date, c.component", (case_id,))
    return [Debt(key=row[3], due_date=row[0], component=row[1], outstanding_pence=int(row[2]))
            for row in await cur.fetchall() if row[3] is not None]


def current_due_date(debts: list[Debt], received_on: date) -> date | None:
    due = [d.due_date for d in debts if d.component != ENFORCEMENT and d.due_date <= received_on]
    return max(due) if due else None
