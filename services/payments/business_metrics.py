"""Prometheus gauges of the money (SPEC.md 5): suspense, the disbursement outbox,
arrears and the last reconciliation.

Computed from the ledger in PostgreSQL by set-based queries and refreshed by a background task of
the payments service (services.common.refresher). Labels are fixed names only: never a case id,
a party or a bank reference.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime

from prometheus_client import Gauge
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from services.common.refresher import MetricsRefresher, start_refresher

SOURCE = "payments"

SUSPENSE_ITEMS = Gauge("cms_payments_suspense_items",
                       "Unidentified payments held in suspense, neither assigned to a case nor returned")
SUSPENSE_PENCE = Gauge("cms_payments_suspense_pence", "Total of the payments held in suspense, in pence")
OUTBOX_PENDING = Gauge("cms_payments_disbursement_outbox_pending",
                       "Disbursement outbox rows whose DisbursementWorkflow has not been started yet")
OUTBOX_OLDEST_SECONDS = Gauge("cms_payments_disbursement_outbox_oldest_pending_age_seconds",
                              "Seconds since the oldest pending disbursement outbox row was written (0: none pending)")
ARREARS_PENCE = Gauge("cms_payments_arrears_pence",
                      "Maintenance and collection fees owed and due today, summed over Collect & Pay cases, in pence "
                      "(as GetBalance's arrears; enforcement charges excluded)")
RECONCILIATION_OK = Gauge("cms_payments_reconciliation_ok",
                          "1 if the last reconciliation found no difference, 0 if it did, NaN before the first")
RECONCILIATION_DIFFERENCE = Gauge(
    "cms_payments_reconciliation_difference_pence",
    "The last reconciliation's differences in pence, by check: ledger_total (the ledger's sum, should be 0), "
    "client_funds_vs_bank_movements (client funds less recorded bank movements), bank_balance_vs_movements "
    "(the bank's balance less recorded movements; 0 when the bank reports none)", ["check"])
RECONCILIATION_TIME = Gauge("cms_payments_reconciliation_last_run_timestamp_seconds",
                            "Unix time the last reconciliation ran (0: never)")

# Suspense items as ledger.suspense_items defines them, counted and summed rather than listed.
_SUSPENSE_SQL = ("SELECT count(*), coalesce(sum((t.detail->>'amount_pence')::bigint), 0) FROM transactions t"
                 " WHERE t.kind = 'unidentified_payment'"
                 "   AND NOT EXISTS (SELECT 1 FROM transactions r WHERE r.reverses = t.transaction_id)")

# The pending rows are exactly what disbursement_outbox_pending_idx covers.
_OUTBOX_SQL = ("SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8"
               "  FROM disbursement_outbox WHERE started_at IS NULL")

# ledger.balance's arrears for every case at once: per Collect & Pay case (its latest schedule
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
    reconciliation: tuple[datetime, bool, dict] | None


def _today() -> date:
    return datetime.now(UTC).date()   # as GetBalance's default as_of


async def _one(conn: AsyncConnection, sql: str, params: dict | None = None) -> tuple:
    return await (await conn.execute(sql, params)).fetchone()


async def read_figures(pool: AsyncConnectionPool, as_of: date) -> PaymentsFigures:
    """Every figure from one read-only snapshot of the payments schema."""
    async with pool.connection() as conn:
        async with conn.transaction():
            await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            items, suspense = await _one(conn, _SUSPENSE_SQL)
            pending, oldest = await _one(conn, _OUTBOX_SQL)
            (arrears,) = await _one(conn, _ARREARS_SQL, {"as_of": as_of})
            last = await (await conn.execute(_LAST_RECONCILIATION_SQL)).fetchone()
    return PaymentsFigures(int(items), int(suspense), int(pending), float(oldest), int(arrears),
                           tuple(last) if last else None)


def _publish(figures: PaymentsFigures) -> None:
    SUSPENSE_ITEMS.set(figures.suspense_items)
    SUSPENSE_PENCE.set(figures.suspense_pence)
    OUTBOX_PENDING.set(figures.outbox_pending)
    OUTBOX_OLDEST_SECONDS.set(figures.outbox_oldest_seconds)
    ARREARS_PENCE.set(figures.arrears_pence)
    if figures.reconciliation is None:
        RECONCILIATION_OK.set(float("nan"))
        RECONCILIATION_TIME.set(0)
        for check in ("ledger_total", "client_funds_vs_bank_movements", "bank_balance_vs_movements"):
            RECONCILIATION_DIFFERENCE.labels(check).set(0)
        return
    ran_at, ok, report = figures.reconciliation
    movements = int(report["bank_movements_pence"])
    bank = report.get("bank_balance_pence")
    RECONCILIATION_OK.set(1 if ok else 0)
    RECONCILIATION_TIME.set(ran_at.timestamp())
    RECONCILIATION_DIFFERENCE.labels("ledger_total").set(int(report["ledger_total_pence"]))
    RECONCILIATION_DIFFERENCE.labels("client_funds_vs_bank_movements").set(int(report["client_funds_pence"]) - movements)
    RECONCILIATION_DIFFERENCE.labels("bank_balance_vs_movements").set(0 if bank is None else int(bank) - movements)


class PaymentsMetrics:
    """Reads the figures and sets the gauges: all of them, or none when the read fails."""

    def __init__(self, pool: AsyncConnectionPool, today: Callable[[], date] = _today):
        self._pool = pool
        self._today = today

    async def refresh(self) -> None:
        _publish(await read_figures(self._pool, self._today()))


def start_payments_metrics(pool: AsyncConnectionPool, force: bool = False, interval: float | None = None,
                           today: Callable[[], date] = _today) -> MetricsRefresher | None:
    """Starts refreshing the payments gauges when metrics are on (or `force`); None otherwise."""
    return start_refresher(SOURCE, PaymentsMetrics(pool, today).refresh, force=force, interval=interval)
