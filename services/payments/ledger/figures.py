"""Payments-wide figures for the gauges (services.payments.business_metrics): suspense, the
disbursement outbox, arrears and the last reconciliation, by set-based queries.

Takes the caller's connection. The figures agree with each other only when the caller reads
them in one REPEATABLE READ transaction (one snapshot).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from psycopg import AsyncConnection

from .postings import aggregate_row

# Suspense items as suspense.suspense_items defines them, counted and summed rather than listed.
_SUSPENSE_SQL = ("SELECT count(*), coalesce(sum((t.detail->>'amount_pence')::bigint), 0) FROM transactions t"
                 " WHERE t.kind = 'unidentified_payment'"
                 "   AND NOT EXISTS (SELECT 1 FROM transactions r WHERE r.reverses = t.transaction_id)")

# The pending rows are exactly what disbursement_outbox_pending_idx covers.
_OUTBOX_SQL = ("SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8"
               "  FROM disbursement_outbox WHERE started_at IS NULL")

# queries.balance's arrears for every case at once: per Collect & Pay case (its latest schedule
# version), maintenance and fee charged and due by as_of less what was allocated to those charges,
# plus any negative credit (a returned payment whose credit had already been applied is owed again).
_ARREARS_SQL = """
    WITH current_schedules AS (
        SELECT DISTINCT ON (case_id) case_id, service_type FROM schedules ORDER BY case_id, version DESC),
    owed AS (
        SELECT case_id, sum(amount) AS owed FROM (
            SELECT c.case_id, c.amount_pence AS amount FROM charges c
             WHERE c.due_date <= %(as_of)s AND c.component <> 'enforcement'
            UNION ALL
            SELECT c.case_id, -a.amount_pence FROM allocations a JOIN charges c USING (charge_id)
             WHERE c.due_date <= %(as_of)s AND c.component <> 'enforcement') AS due
         GROUP BY case_id),
    credit AS (
        SELECT t.case_id, -sum(p.amount_pence) AS credit FROM transactions t JOIN postings p USING (transaction_id)
         WHERE p.account = 'pp_credit' AND t.case_id IS NOT NULL GROUP BY t.case_id)
    SELECT coalesce(sum(coalesce(o.owed, 0) - least(coalesce(k.credit, 0), 0)), 0)
      FROM current_schedules s LEFT JOIN owed o USING (case_id) LEFT JOIN credit k USING (case_id)
     WHERE s.service_type = 'collect_and_pay'
"""

_LAST_RECONCILIATION_SQL = ("SELECT ran_at, ok, report FROM reconciliation_runs"
                            " ORDER BY run_id DESC LIMIT 1")


@dataclass(frozen=True)
class PaymentsFigures:
    suspense_items: int
    suspense_pence: int
    outbox_pending: int
    outbox_oldest_seconds: float
    arrears_pence: int
    reconciliation: tuple[datetime, bool, dict[str, Any]] | None


async def payments_figures(conn: AsyncConnection, as_of: date) -> PaymentsFigures:
    items, suspense = await aggregate_row(conn, _SUSPENSE_SQL)
    pending, oldest = await aggregate_row(conn, _OUTBOX_SQL)
    (arrears,) = await aggregate_row(conn, _ARREARS_SQL, {"as_of": as_of})
    last = await (await conn.execute(_LAST_RECONCILIATION_SQL)).fetchone()
    reconciliation = None if last is None else (last[0], last[1], last[2])
    return PaymentsFigures(int(items), int(suspense), int(pending), float(oldest), int(arrears), reconciliation)
