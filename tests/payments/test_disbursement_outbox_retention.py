"""Retention of the disbursement outbox (services/payments/disbursements.py, migration 0004): the
dispatcher deletes rows whose workflow started longer ago than the retention period, in bounded
batches, and never a row not yet started. Real PostgreSQL; Temporal is left unreachable, so
pending rows stay pending and the purge is seen working without it."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
import pytest_asyncio

from cms.config import load_settings
from cms.infra.processes import free_port
from domain.payments.schedule import Frequency
from domain.rulesets import rules_for
from services.payments import ledger
from services.payments.disbursements import (
    DEFAULT_RETENTION_DAYS,
    RETENTION_ENV,
    DispatcherStats,
    Retention,
    purge_dispatched,
    retention_days,
    run_dispatcher,
    start_dispatcher,
)
from tests.payments.payments_helpers import fresh_database, payments_pool

pytestmark = pytest.mark.asyncio(loop_scope="session")

CASE_ID = "retention-1"


@pytest.fixture(scope="module")
def retention_db(database_url: str) -> str:
    # A database of its own: the purge works on the whole outbox.
    return fresh_database(database_url, "payments_outbox_retention_tests")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def pool(retention_db: str):
    async with payments_pool(retention_db, max_size=4) as pool:
        yield pool


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def payment_id(pool) -> int:
    """A real payment (its trigger wrote one pending outbox row) for the test rows to point at."""
    effective = date(2026, 1, 5)
    async with pool.connection() as conn:
        await ledger.create_schedule(conn, ledger.ScheduleRequest(
            f"{CASE_ID}/schedule", CASE_ID, "collect_and_pay", Frequency.WEEKLY, "METHOD_DIRECT_DEBIT", effective,
            5000, 1000, rules_for(effective).id, None))
        posted = await ledger.record_incoming_payment(conn, ledger.IncomingPayment(
            "IN-RETENTION-1", CASE_ID, 6000, date(2026, 1, 9), "METHOD_DIRECT_DEBIT"))
    return posted.transaction_id


@pytest_asyncio.fixture(loop_scope="session")
async def outbox(pool, payment_id: int):
    """An outbox holding only the rows each test adds."""
    async with pool.connection() as conn:
        await conn.execute("DELETE FROM disbursement_outbox")
    return payment_id


async def add_rows(pool, payment_id: int, label: str, count: int, *, created_days_ago: float,
                   started_days_ago: float | None) -> None:
    now = datetime.now(UTC)
    started_at = None if started_days_ago is None else now - timedelta(days=started_days_ago)
    async with pool.connection() as conn:
        await conn.execute(
            "INSERT INTO disbursement_outbox (bank_reference, case_id, received_on, transaction_id, created_at,"
            " started_at, workflow_id)"
            " SELECT %s || '-' || n, %s, DATE '2026-01-09', %s, %s, %s::timestamptz,"
            " CASE WHEN %s::timestamptz IS NULL THEN NULL ELSE 'case-' || %s || '/disbursement-' || %s || '-' || n END"
            " FROM generate_series(1, %s) AS n",
            (label, CASE_ID, payment_id, now - timedelta(days=created_days_ago), started_at, started_at, CASE_ID,
             label, count))


async def remaining(pool) -> dict[str, int]:
    """How many rows are left of each label."""
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT split_part(bank_reference, '-', 1), count(*) FROM disbursement_outbox"
                                 " GROUP BY 1 ORDER BY 1")
        return dict(await cur.fetchall())


async def eventually(condition, what: str, timeout: float = 30) -> None:
    """Waits for something the dispatcher loop does in the background."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.02)


def unreachable_temporal():
    settings = load_settings()
    return replace(settings, temporal_address=f"127.0.0.1:{free_port()}")


async def test_the_purge_deletes_only_started_rows_older_than_retention_in_bounded_batches(pool, outbox) -> None:
    await add_rows(pool, outbox, "old", 7, created_days_ago=41, started_days_ago=40)
    await add_rows(pool, outbox, "inside", 1, created_days_ago=34, started_days_ago=34)    # not yet 35 days
    await add_rows(pool, outbox, "recent", 2, created_days_ago=1, started_days_ago=1)
    # Never started, however old: the money has not been passed on.
    await add_rows(pool, outbox, "pending", 2, created_days_ago=100, started_days_ago=None)
    # Written 60 days ago but started only 10 days ago: kept, the count runs from the start.
    await add_rows(pool, outbox, "late", 1, created_days_ago=60, started_days_ago=10)

    three_by_two = Retention(days=35, batch_size=3, max_batches=2)
    assert await purge_dispatched(pool, three_by_two) == 6           # two batches of 3, then it stops
    assert (await remaining(pool))["old"] == 1
    assert await purge_dispatched(pool, three_by_two) == 1
    assert await purge_dispatched(pool, three_by_two) == 0
    assert await remaining(pool) == {"inside": 1, "late": 1, "pending": 2, "recent": 2}

    assert await purge_dispatched(pool, Retention(days=5)) == 2       # a shorter retention takes more
    assert await remaining(pool) == {"pending": 2, "recent": 2}


async def test_the_service_dispatcher_purges_with_the_retention_from_the_environment(pool, outbox,
                                                                                     monkeypatch) -> None:
    await add_rows(pool, outbox, "twelve", 3, created_days_ago=12, started_days_ago=12)
    await add_rows(pool, outbox, "five", 1, created_days_ago=5, started_days_ago=5)
    await add_rows(pool, outbox, "pending", 1, created_days_ago=30, started_days_ago=None)
    monkeypatch.setenv(RETENTION_ENV, "10")
    dispatcher = start_dispatcher(pool, unreachable_temporal(), force=True)
    assert dispatcher is not None, "a forced dispatcher always starts"
    try:
        await eventually(lambda: _is(dispatcher.stats.purged == 3), "the dispatcher's purge")
    finally:
        await dispatcher.aclose()
    # Dispatching failed (no Temporal) but the purge does not need it; the pending row waits.
    assert await remaining(pool) == {"five": 1, "pending": 1}


async def test_the_loop_purges_at_most_once_per_interval(pool, outbox) -> None:
    await add_rows(pool, outbox, "first", 2, created_days_ago=50, started_days_ago=50)
    stats, stop = DispatcherStats(), asyncio.Event()
    hourly = Retention(days=35, interval_seconds=3600)
    loop = asyncio.create_task(run_dispatcher(pool, unreachable_temporal(), stop, stats, poll_seconds=0.01,
                                              max_backoff_seconds=0.02, retention=hourly))
    try:
        await eventually(lambda: _is(stats.purged == 2 and stats.failed_passes >= 1), "the first pass's purge")
        await add_rows(pool, outbox, "second", 1, created_days_ago=50, started_days_ago=50)
        passes = stats.failed_passes
        await eventually(lambda: _is(stats.failed_passes >= passes + 3), "three more passes")
        assert await remaining(pool) == {"second": 1}                 # not purged again within the hour
    finally:
        stop.set()
        await loop
    assert stats.purged == 2


async def test_the_retention_setting_defaults_to_35_days_and_refuses_nonsense(monkeypatch) -> None:
    monkeypatch.delenv(RETENTION_ENV, raising=False)
    assert retention_days() == DEFAULT_RETENTION_DAYS == 35
    monkeypatch.setenv(RETENTION_ENV, "90")
    assert retention_days() == 90
    for bad in ("0", "-3", "7.5", "a month"):
        monkeypatch.setenv(RETENTION_ENV, bad)
        with pytest.raises(ValueError, match=RETENTION_ENV):
            retention_days()


async def _is(value: bool) -> bool:
    return value
