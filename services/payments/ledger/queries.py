"""The read side: a case's balance, its statement, and what was paid against one period.

Reads take the caller's connection; they write nothing and take no lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from psycopg import AsyncConnection

from domain.payments.statement import LedgerEvent

from .postings import NotFound, aggregate_row
from .schedules import ScheduleRow, current_schedule


@dataclass
class CaseBalance:
    case_id: str
    service_type: str
    arrears_pence: int              # maintenance + collection fee owed and due on or before as_of
    enforcement_charges_pence: int
    credit_pence: int               # paid in advance / overpaid, held for the paying parent
    paid_to_date_pence: int
    payable_to_receiving_parent_pence: int
    next_payment_due: date | None
    next_payment_pence: int
    overpaid_to_receiving_parent_pence: int = 0   # passed on, then returned or no longer due; being recovered


async def balance(conn: AsyncConnection, case_id: str, as_of: date) -> CaseBalance:
    schedule = await current_schedule(conn, case_id)
    if schedule is None:
        raise NotFound(f"case {case_id} has no schedule")
    if schedule.service_type == "direct_pay":
        arrears, paid = (int(v) for v in await aggregate_row(
            conn, "SELECT coalesce(sum(due_pence - amount_pence), 0), coalesce(sum(amount_pence), 0)"
                  " FROM direct_pay_reports WHERE case_id = %s AND due_date <= %s", (case_id, as_of)))
        enforcement = credit = payable = overpaid = 0
    else:
        arrears, enforcement = (int(v) for v in await aggregate_row(
            conn,
            "SELECT coalesce(sum(amount_pence) FILTER (WHERE component <> 'enforcement'), 0),"
            "       coalesce(sum(amount_pence) FILTER (WHERE component = 'enforcement'), 0) FROM ("
            "  SELECT c.component, c.amount_pence FROM charges c WHERE c.case_id = %s AND c.due_date <= %s"
            "  UNION ALL SELECT c.component, -a.amount_pence FROM allocations a JOIN charges c USING (charge_id)"
            "   WHERE c.case_id = %s AND c.due_date <= %s) owed", (case_id, as_of, case_id, as_of)))
        # Paid: money received for the case (directly, or assigned from suspense), less returns.
        paid, credit, payable, overpaid = (int(v) for v in await aggregate_row(
            conn,
            "SELECT coalesce(sum(p.amount_pence) FILTER (WHERE (p.account = 'client_funds'"
            "         AND t.kind IN ('incoming_payment', 'reversal'))"
            "         OR (p.account = 'suspense' AND t.kind = 'suspense_assignment')), 0),"
            "       coalesce(-sum(p.amount_pence) FILTER (WHERE p.account = 'pp_credit'), 0),"
            "       coalesce(-sum(p.amount_pence) FILTER (WHERE p.account = 'rp_payable'), 0),"
            "       coalesce(sum(p.amount_pence) FILTER (WHERE p.account = 'rp_overpaid'), 0)"
            "  FROM transactions t JOIN postings p USING (transaction_id)"
            " WHERE t.case_id = %s", (case_id,)))
        if credit < 0:   # a returned payment whose credit had already been applied: owed again
            arrears, credit = arrears - credit, 0
    next_due, next_amount = _next_payment(schedule, as_of)
    return CaseBalance(case_id, schedule.service_type, arrears, enforcement, credit, paid, payable, next_due, next_amount,
                       overpaid)


def _next_payment(schedule: ScheduleRow, as_of: date) -> tuple[date | None, int]:
    index = max(schedule.period_containing(max(as_of, schedule.starts_on)), schedule.first_collected_index())
    for candidate in (index, index + 1):
        due = schedule.instalment(candidate)
        if due.period.due_date > as_of:
            return due.period.due_date, due.amount_pence + due.fee_pence
    return None, 0


async def statement_events(conn: AsyncConnection, case_id: str, start: date, end: date) -> tuple[int, list[LedgerEvent]]:
    """(opening balance, events) for a case between two dates, from the paying parent's side."""
    owed_accounts = ("pp_maintenance", "pp_fee", "pp_enforcement", "pp_credit")
    cur = await conn.execute(
        "SELECT t.value_date, t.kind, t.transaction_id,"
        "       coalesce(sum(p.amount_pence) FILTER (WHERE p.account = ANY(%s) AND p.amount_pence > 0"
        "                AND t.kind NOT IN ('incoming_payment', 'reversal', 'suspense_assignment')), 0) AS due,"
        "       coalesce(sum(p.amount_pence) FILTER (WHERE p.account = 'client_funds'"
        "                OR (p.account = 'suspense' AND t.kind = 'suspense_assignment')), 0) AS paid,"
        "       coalesce(sum(p.amount_pence) FILTER (WHERE p.account = ANY(%s)), 0) AS net"
        "  FROM transactions t JOIN postings p USING (transaction_id)"
        " WHERE t.case_id = %s AND t.kind IN ('period_charge', 'schedule_adjustment', 'enforcement_charge',"
        "       'incoming_payment', 'reversal', 'suspense_assignment') AND t.value_date <= %s"
        " GROUP BY t.transaction_id ORDER BY t.value_date, t.transaction_id",
        (list(owed_accounts), list(owed_accounts), case_id, end))
    opening, events = 0, []
    for on, kind, _tid, due, paid, net in await cur.fetchall():
        if kind == "schedule_adjustment":
            due = net
        if on < start:
            opening += int(net)
            continue
        events.append(LedgerEvent(on, kind, int(due), int(paid)))
    # Direct Pay: what fell due and what the receiving parent reported as received.
    cur = await conn.execute("SELECT due_date, due_pence, amount_pence FROM direct_pay_reports"
                             " WHERE case_id = %s AND due_date <= %s ORDER BY due_date, report_id", (case_id, end))
    for on, due, paid in await cur.fetchall():
        if on < start:
            opening += int(due) - int(paid)
            continue
        events.append(LedgerEvent(on, "direct_pay_due", due_pence=int(due)))
        if paid:
            events.append(LedgerEvent(on, "direct_pay_received", paid_pence=int(paid)))
    return opening, events


@dataclass
class PeriodStatus:
    period_index: int
    due_date: date
    due_pence: int
    paid_pence: int

    @property
    def status(self) -> str:
        if self.paid_pence >= self.due_pence:
            return "paid"
        return "missed" if self.paid_pence <= 0 else "part_paid"


async def period_status(conn: AsyncConnection, case_id: str, period_index: int) -> PeriodStatus:
    due_date, due, paid = await aggregate_row(
        conn,
        "SELECT min(c.due_date), coalesce(sum(c.amount_pence), 0),"
        "       coalesce((SELECT sum(a.amount_pence) FROM allocations a JOIN charges c2 USING (charge_id)"
        "                  WHERE c2.case_id = %s AND c2.period_index = %s AND c2.component <> 'enforcement'), 0)"
        "  FROM charges c WHERE c.case_id = %s AND c.period_index = %s AND c.component <> 'enforcement'",
        (case_id, period_index, case_id, period_index))
    if due_date is None:
        raise NotFound(f"period {period_index} of case {case_id} has not been charged")
    return PeriodStatus(period_index, due_date, int(due), int(paid))
