"""Reconciliation: proving the books against themselves and against the bank, and keeping a
record of each run.

Takes the caller's connection; the caller decides whether the run is recorded in the same
transaction as the reading.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from .postings import aggregate_row, sum_of
from .suspense import suspense_items


async def reconcile(conn: AsyncConnection, as_of: date, bank_balance_pence: int | None) -> dict[str, Any]:
    """Proves the books: every transaction balances and has its legs, the ledger sums to zero,
    client funds equal the bank movements (and the bank's own balance when given). Set-based
    SQL, so a million postings take seconds. Any difference is reported, with suspense items."""
    report: dict[str, Any] = {"as_of": as_of.isoformat()}
    postings, total, client_funds, clearing, suspense, overpaid = (int(v) for v in await aggregate_row(
        conn,
        "SELECT count(*), coalesce(sum(amount_pence), 0),"
        "       coalesce(sum(amount_pence) FILTER (WHERE account = 'client_funds'), 0),"
        "       coalesce(sum(amount_pence) FILTER (WHERE account = 'bank_clearing'), 0),"
        "       coalesce(-sum(amount_pence) FILTER (WHERE account = 'suspense'), 0),"
        "       coalesce(sum(amount_pence) FILTER (WHERE account = 'rp_overpaid'), 0)"
        "  FROM postings JOIN transactions USING (transaction_id) WHERE value_date <= %s", (as_of,)))
    report.update(postings=postings, ledger_total_pence=total, client_funds_pence=client_funds,
                  bank_clearing_pence=clearing, suspense_pence=suspense, rp_overpaid_pence=overpaid)
    cur = await conn.execute(
        "SELECT t.idempotency_key, coalesce(s.total, 0), coalesce(s.legs, 0) FROM transactions t"
        "  LEFT JOIN (SELECT transaction_id, sum(amount_pence) AS total, count(*) AS legs FROM postings"
        "             GROUP BY transaction_id) s USING (transaction_id)"
        " WHERE t.value_date <= %s AND (s.legs IS NULL OR s.legs < 2 OR s.total <> 0) LIMIT 100", (as_of,))
    report["unbalanced_transactions"] = [{"key": k, "sum_pence": int(t), "legs": int(n)} for k, t, n in await cur.fetchall()]
    movements = await sum_of(conn, "SELECT coalesce(sum(amount_pence), 0) FROM bank_movements WHERE value_date <= %s",
                             (as_of,))
    report["bank_movements_pence"] = movements
    report["bank_balance_pence"] = bank_balance_pence
    report["suspense_items"] = [{"bank_reference": i.bank_reference, "claimed_case_id": i.claimed_case_id,
                                 "amount_pence": i.amount_pence, "received_on": i.received_on.isoformat()}
                                for i in await suspense_items(conn, as_of)]
    # Maintenance passed to receiving parents and then returned by the bank (or no longer due),
    # not yet recovered from later collections: money the agency is owed back, per case.
    # Each case's rp_overpaid is never negative, so a zero total means none (and skips a scan).
    report["receiving_parent_overpayments"] = []
    if overpaid:
        cur = await conn.execute(
            "SELECT p.case_id, sum(p.amount_pence) FROM postings p JOIN transactions t USING (transaction_id)"
            " WHERE p.account = 'rp_overpaid' AND t.value_date <= %s GROUP BY p.case_id"
            " HAVING sum(p.amount_pence) <> 0 ORDER BY p.case_id LIMIT 100", (as_of,))
        report["receiving_parent_overpayments"] = [{"case_id": c, "amount_pence": int(a)} for c, a in await cur.fetchall()]
    differences = []
    if total != 0:
        differences.append(f"ledger does not sum to zero: {total} pence")
    if report["unbalanced_transactions"]:
        differences.append(f"{len(report['unbalanced_transactions'])} transactions do not balance")
    if client_funds != movements:
        differences.append(f"client funds {client_funds} pence differ from bank movements {movements} pence")
    if bank_balance_pence is not None and bank_balance_pence != movements:
        differences.append(f"bank balance {bank_balance_pence} pence differs from recorded movements {movements} pence")
    report["differences"] = differences
    report["ok"] = not differences
    return report


async def record_reconciliation(conn: AsyncConnection, report: dict[str, Any]) -> int:
    cur = await conn.execute("INSERT INTO reconciliation_runs (as_of, ok, report) VALUES (%s, %s, %s) RETURNING run_id",
                             (date.fromisoformat(report["as_of"]), report["ok"], Jsonb(report)))
    row = await cur.fetchone()
    if row is None:   # INSERT ... RETURNING without ON CONFLICT returns its row or raises
        raise RuntimeError("the reconciliation run was not stored")
    return int(row[0])
