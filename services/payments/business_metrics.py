"""Prometheus gauges of the money (docs/design.md): suspense, the disbursement outbox,
arrears and the last reconciliation.

Computed from the ledger in PostgreSQL by set-based queries (services.payments.ledger.figures),
read in one snapshot and refreshed by a background task of the payments service
(services.common.refresher). Labels are fixed names only: never a case id,
a party or a bank reference.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime

from prometheus_client import Gauge
from psycopg_pool import AsyncConnectionPool

from services.common.refresher import MetricsRefresher, start_refresher
from services.payments.ledger.figures import PaymentsFigures, payments_figures

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


def _today() -> date:
    return datetime.now(UTC).date()   # as GetBalance's default as_of


async def read_figures(pool: AsyncConnectionPool, as_of: date) -> PaymentsFigures:
    """Every figure from one read-only snapshot of the payments schema."""
    async with pool.connection() as conn, conn.transaction():
        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        return await payments_figures(conn, as_of)


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
