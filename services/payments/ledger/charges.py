"""What falls due: a collection period's maintenance and fee, and enforcement charges.

Runs on the caller's connection, inside the caller's transaction.
"""

from __future__ import annotations

from datetime import date

from psycopg import AsyncConnection

from domain.payments.allocation import ENFORCEMENT, FEE, MAINTENANCE

from .allocations import apply_credit
from .debts import charge_legs, insert_charge
from .postings import Leg, NotFound, Posted, Precondition, add_legs, claim, find_posted, lock_case
from .schedules import current_schedule


async def charge_period(conn: AsyncConnection, case_id: str, period_index: int) -> Posted:
    """Posts what falls due for one period (maintenance + paying parent's fee). The key is the
    business key itself, so a period is charged once whoever asks."""
    key = f"period-charge/{case_id}/{period_index}"
    request = {"case_id": case_id, "period_index": period_index}
    await lock_case(conn, case_id)
    if (found := await find_posted(conn, key, request)) is not None:
        return found
    schedule = await current_schedule(conn, case_id)
    if schedule is None:
        raise NotFound(f"case {case_id} has no schedule")
    if schedule.service_type != "collect_and_pay":
        raise Precondition("Direct Pay cases are not charged through the ledger; the receiving parent reports payments")
    due = schedule.instalment(period_index)
    if due.amount_pence == 0 and due.fee_pence == 0:
        raise Precondition("nothing is due for this period (nil liability)")
    detail = {"period_index": period_index, "due_date": due.period.due_date.isoformat(),
              "amount_pence": due.amount_pence, "fee_pence": due.fee_pence, "account": "pp_maintenance"}
    header = await claim(conn, key, request, kind="period_charge", case_id=case_id,
                         value_date=due.period.due_date, detail=detail, decision_ref=schedule.decision_ref)
    legs: list[Leg] = []
    for component, amount in ((MAINTENANCE, due.amount_pence), (FEE, due.fee_pence)):
        if amount:
            legs += charge_legs(case_id, component, amount)
            await insert_charge(conn, header.transaction_id, case_id, "period", period_index,
                                due.period.due_date, component, amount)
    await add_legs(conn, header.transaction_id, legs)
    await apply_credit(conn, schedule.rule_set_id, case_id, f"credit-applied/{case_id}/{period_index}",
                       due.period.due_date)
    return header


async def post_enforcement_charge(conn: AsyncConnection, key: str, case_id: str, kind: str, amount: int,
                                  on: date, decision_ref: str | None) -> Posted:
    request = {"case_id": case_id, "kind": kind, "amount": amount}
    detail = {"charge_kind": kind, "amount_pence": amount, "account": "pp_enforcement"}
    await lock_case(conn, case_id)
    header = await claim(conn, key, request, kind="enforcement_charge", case_id=case_id, value_date=on,
                         detail=detail, decision_ref=decision_ref)
    if header.duplicate:
        return header
    await insert_charge(conn, header.transaction_id, case_id, "enforcement", None, on, ENFORCEMENT, amount)
    await add_legs(conn, header.transaction_id, charge_legs(case_id, ENFORCEMENT, amount))
    return header
