"""The payments gauges (services.payments.business_metrics): exact values from a ledger built with
the ledger's own operations, in a database of its own (the gauges sum over every case); kept when a
refresh fails; refreshed by a loop that stops with the payments service.

Schedule unless stated: weekly from Monday 5 January 2026, £50 maintenance + £10 fee a week
(6000 pence an instalment); the gauges' "today" is Wednesday 21 January 2026."""

from __future__ import annotations

import asyncio
import math
from dataclasses import replace
from datetime import date

import pytest
import pytest_asyncio
from prometheus_client import REGISTRY
from psycopg_pool import AsyncConnectionPool

from cms.config import load_settings
from cms.infra.processes import free_port
from domain.payments.schedule import Frequency
from services.common.refresher import RefreshStats, refresh_once
from services.common.server import serve_in_background
from services.payments import ledger
from services.payments import service as payments_service
from services.payments.bank import FakeBank
from services.payments.business_metrics import SOURCE, PaymentsMetrics
from tests.helpers.rows import required_row
from tests.payments.payments_helpers import fresh_database, payments_pool

pytestmark = pytest.mark.asyncio(loop_scope="session")

AS_OF = date(2026, 1, 21)
COLLECT_AND_PAY = ("m-arrears", "m-credit", "m-returned", "m-negative-credit")
DIRECT_PAY = "m-direct"
SWITCHED = "m-switched"   # Collect & Pay with a period charged, then moved to Direct Pay
# Hand-worked arrears on AS_OF, per Collect & Pay case (the test checks each against ledger.balance):
#   m-arrears: periods 0-2 due (18000) less a 7000 payment; the 3000 enforcement charge and period 3
#              (due 26 January) do not count;
#   m-credit: period 0 paid with 4000 to spare (credit is not negative arrears);
#   m-returned: a 12000 payment in advance paid period 0 from credit, then bounced: 6000 owed again;
#   m-negative-credit: period 0 unpaid, and 700 of credit spent that it did not have.
ARREARS = {"m-arrears": 11000, "m-credit": 0, "m-returned": 6000, "m-negative-credit": 6700}


def value(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def sample(name: str, **labels: str) -> float:
    """The metric's value, failing the test when it has not been set at all."""
    reading = value(name, **labels)
    assert reading is not None, f"{name} {labels} has no sample"
    return reading


def _schedule(case_id: str, service_type: str = "collect_and_pay") -> ledger.ScheduleRequest:
    return ledger.ScheduleRequest(f"{case_id}/schedule", case_id, service_type, Frequency.WEEKLY, "METHOD_DIRECT_DEBIT",
                                  date(2026, 1, 5), 5000, 1000 if service_type == "collect_and_pay" else 0,
                                  "gb-2012", f"calc-{case_id}")


def _paid(reference: str, case_id: str, pence: int, on: date) -> ledger.IncomingPayment:
    return ledger.IncomingPayment(reference, case_id, pence, on, "METHOD_DIRECT_DEBIT")


async def _build_ledger(pool) -> None:
    async with pool.connection() as conn:
        for case_id in COLLECT_AND_PAY:
            await ledger.create_schedule(conn, _schedule(case_id))
        await ledger.create_schedule(conn, _schedule(DIRECT_PAY, "direct_pay"))

        for index in (0, 1, 2):
            await ledger.charge_period(conn, "m-arrears", index)
        await ledger.post_enforcement_charge(conn, "m-arrears/liability-order", "m-arrears", "liability_order", 3000,
                                             date(2026, 1, 10), None)
        await ledger.record_incoming_payment(conn, _paid("BANK-A1", "m-arrears", 7000, date(2026, 1, 20)))
        await ledger.charge_period(conn, "m-arrears", 3)

        await ledger.charge_period(conn, "m-credit", 0)
        await ledger.record_incoming_payment(conn, _paid("BANK-B1", "m-credit", 10000, date(2026, 1, 6)))

        await ledger.record_incoming_payment(conn, _paid("BANK-C1", "m-returned", 12000, date(2026, 1, 2)))
        await ledger.charge_period(conn, "m-returned", 0)
        await ledger.record_return(conn, "BANK-C1/return", "BANK-C1", date(2026, 1, 8))

        await ledger.charge_period(conn, "m-negative-credit", 0)
        async with conn.transaction():
            header = await ledger.claim(conn, "m-negative-credit/overspent", {"test": 1}, kind="credit_applied",
                                        case_id="m-negative-credit", value_date=date(2026, 1, 9))
            await ledger.add_legs(conn, header.transaction_id, [ledger.Leg("pp_credit", 700, "m-negative-credit"),
                                                                ledger.Leg("agency_fees", -700)])

        await ledger.report_direct_payment(conn, "m-direct/missed-0", DIRECT_PAY, date(2026, 1, 5), False, 0)

        await ledger.create_schedule(conn, _schedule(SWITCHED))
        await ledger.charge_period(conn, SWITCHED, 0)
        to_direct_pay = replace(_schedule(SWITCHED, "direct_pay"), idempotency_key=f"{SWITCHED}/direct-pay",
                                effective_date=date(2026, 1, 12))
        await ledger.create_schedule(conn, to_direct_pay)

        # Suspense: four unidentified payments; one assigned to a case, one returned to its payer.
        await ledger.record_incoming_payment(conn, _paid("BANK-S1", "nobody-1", 1234, date(2026, 1, 7)))
        await ledger.record_incoming_payment(conn, _paid("BANK-S2", "", 5678, date(2026, 1, 7)))
        await ledger.record_incoming_payment(conn, _paid("BANK-S3", "nobody-3", 2000, date(2026, 1, 7)))
        await ledger.record_incoming_payment(conn, _paid("BANK-S4", "nobody-4", 300, date(2026, 1, 7)))
        await ledger.record_incoming_payment(conn, _paid("BANK-D1", DIRECT_PAY, 999, date(2026, 1, 7)))  # not C&P
        await ledger.assign_suspense(conn, "BANK-S3/assign", "BANK-S3", "m-credit", date(2026, 1, 8), "staff-1")
        await ledger.record_return(conn, "BANK-S4/return", "BANK-S4", date(2026, 1, 9))

        # Outbox: a row per payment to a case and per assignment; two already dispatched, and the
        # oldest still pending written an hour ago.
        await conn.execute("UPDATE disbursement_outbox SET started_at = now(), workflow_id = 'wf'"
                           " WHERE bank_reference IN ('BANK-A1', 'BANK-C1')")
        await conn.execute("UPDATE disbursement_outbox SET created_at = now() - interval '1 hour'"
                           " WHERE bank_reference = 'BANK-B1'")

        first = await ledger.reconcile(conn, date(2026, 12, 31), None)
        await ledger.record_reconciliation(conn, first)
        movements = first["bank_movements_pence"]
        last = await ledger.reconcile(conn, date(2026, 12, 31), movements + 250)   # the bank says 250p more
        await ledger.record_reconciliation(conn, last)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def ledger_db(database_url: str):
    url = fresh_database(database_url, "payments_metrics_tests")
    async with payments_pool(url) as pool:
        await _build_ledger(pool)
        yield url, pool


async def _oldest_pending_age(pool: AsyncConnectionPool) -> float:
    """Seconds since the oldest pending outbox row (B1's) was written: read before and after a
    refresh, it bounds the age the gauge can report."""
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT extract(epoch FROM now() - created_at)::float8 FROM disbursement_outbox"
                                 " WHERE bank_reference = 'BANK-B1'")
        return required_row(await cur.fetchone(), "BANK-B1's outbox row")[0]


async def test_one_refresh_sets_every_gauge_from_the_ledger(ledger_db) -> None:
    _, pool = ledger_db
    age_before = await _oldest_pending_age(pool)
    await PaymentsMetrics(pool, today=lambda: AS_OF).refresh()
    age_after = await _oldest_pending_age(pool)

    async with pool.connection() as conn:
        balances = {case_id: (await ledger.balance(conn, case_id, AS_OF)).arrears_pence for case_id in COLLECT_AND_PAY}
        direct = {case_id: (await ledger.balance(conn, case_id, AS_OF)) for case_id in (DIRECT_PAY, SWITCHED)}
    assert balances == ARREARS
    assert value("cms_payments_arrears_pence") == sum(ARREARS.values()) == 23700
    # Owed on Direct Pay is between the parents, not the agency's arrears; a case's latest schedule
    # decides (the switched case's charged Collect & Pay period does not count).
    assert {c: (b.service_type, b.arrears_pence) for c, b in direct.items()} == {
        DIRECT_PAY: ("direct_pay", 5000), SWITCHED: ("direct_pay", 0)}

    assert value("cms_payments_suspense_items") == 3                    # S1, S2 and the Direct Pay case's
    assert value("cms_payments_suspense_pence") == 1234 + 5678 + 999

    assert value("cms_payments_disbursement_outbox_pending") == 2       # B1 and the S3 assignment
    assert 3600 <= age_before <= sample("cms_payments_disbursement_outbox_oldest_pending_age_seconds") <= age_after

    assert value("cms_payments_reconciliation_ok") == 0                 # the last run, not the first
    assert value("cms_payments_reconciliation_difference_pence", check="bank_balance_vs_movements") == 250
    assert value("cms_payments_reconciliation_difference_pence", check="client_funds_vs_bank_movements") == 0
    assert value("cms_payments_reconciliation_difference_pence", check="ledger_total") == 0
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT max(ran_at) FROM reconciliation_runs")
        ran_at = required_row(await cur.fetchone(), "the last reconciliation run")[0]
    assert value("cms_payments_reconciliation_last_run_timestamp_seconds") == ran_at.timestamp()


async def test_an_empty_ledger_reads_zero_and_no_reconciliation_yet(database_url: str) -> None:
    url = fresh_database(database_url, "payments_metrics_empty")
    async with payments_pool(url) as pool:
        await PaymentsMetrics(pool, today=lambda: AS_OF).refresh()
    for name in ("cms_payments_arrears_pence", "cms_payments_suspense_items", "cms_payments_suspense_pence",
                 "cms_payments_disbursement_outbox_pending", "cms_payments_disbursement_outbox_oldest_pending_age_seconds",
                 "cms_payments_reconciliation_last_run_timestamp_seconds"):
        assert value(name) == 0, name
    assert math.isnan(sample("cms_payments_reconciliation_ok"))
    assert value("cms_payments_reconciliation_difference_pence", check="bank_balance_vs_movements") == 0


async def test_a_failed_refresh_keeps_the_last_values_and_counts_the_failure(ledger_db) -> None:
    url, pool = ledger_db
    await PaymentsMetrics(pool, today=lambda: AS_OF).refresh()
    failures = value("cms_business_metrics_refresh_failures_total", source=SOURCE) or 0
    async with payments_pool(url) as closed:
        pass   # opened and closed again: every call on it fails
    stats = RefreshStats()
    assert await refresh_once(SOURCE, PaymentsMetrics(closed, today=lambda: AS_OF).refresh, stats) is False
    assert stats.failures == 1 and "PoolClosed" in stats.last_error
    assert value("cms_business_metrics_refresh_failures_total", source=SOURCE) == failures + 1
    assert value("cms_payments_arrears_pence") == 23700
    assert value("cms_payments_suspense_pence") == 1234 + 5678 + 999


async def _wait_for(condition, what: str) -> None:
    for _ in range(400):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


async def test_the_payments_service_refreshes_the_gauges_and_stops_the_loop_when_it_stops(
        database_url: str, ledger_db) -> None:
    url, pool = ledger_db
    await PaymentsMetrics(pool, today=lambda: AS_OF).refresh()
    async with pool.connection() as conn:   # a new unidentified payment, for the service's loop to find
        await ledger.record_incoming_payment(conn, _paid("BANK-S5", "nobody-5", 4000, date(2026, 1, 12)))
    services = []

    async def register(server, pool, settings):
        services.append(await payments_service.register(server, pool, settings, business_metrics=True))
        return services[-1]

    settings = load_settings()
    settings = replace(settings, database_url=url, ports={**settings.ports, "payments": free_port()})
    running = await serve_in_background("payments", register, settings)
    refresher = services[0].business_metrics
    try:
        assert refresher is not None, "business_metrics=True starts the refresh loop"
        await _wait_for(lambda: refresher.stats.refreshes >= 1, "the service's first refresh")
        assert value("cms_payments_suspense_items") == 4
        assert value("cms_payments_suspense_pence") == 1234 + 5678 + 999 + 4000
        assert not refresher.task.done()
    finally:
        await running.stop()
    assert refresher.task.done() and not refresher.task.cancelled() and refresher.task.exception() is None
    assert refresher.stop_event.is_set()


async def test_the_payments_service_starts_no_loop_when_metrics_are_off(ledger_db, monkeypatch) -> None:
    monkeypatch.setenv("CMS_METRICS", "off")
    service = payments_service.PaymentsService(ledger_db[1], load_settings(), bank=FakeBank())
    assert service.business_metrics is None
    await service.aclose()
