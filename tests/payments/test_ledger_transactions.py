"""The caller owns the ledger's transaction (services.payments.ledger): what the ledger writes
inside a caller's transaction commits or rolls back with it, as a whole; a write outside any
transaction is refused before it writes anything; the case lock lasts until the caller's
transaction ends. The package's own entry points (ledger.record_incoming_payment, ...) still
commit by themselves on a bare connection. Real PostgreSQL, a database of its own.

Schedule: weekly from Monday 5 January 2026, £50 maintenance + £10 fee a week (6000 pence)."""

from __future__ import annotations

import itertools
from datetime import date

import psycopg
import pytest
import pytest_asyncio

from domain.payments.schedule import Frequency
from services.payments import ledger
from services.payments.ledger import charges, receipts, schedules
from tests.payments.payments_helpers import fresh_database, payments_pool

pytestmark = pytest.mark.asyncio(loop_scope="session")

FRIDAY = date(2026, 1, 9)
_ids = itertools.count(1)


class CallerGaveUp(Exception):
    """Raised by a test's caller after the ledger calls, to roll its transaction back."""


@pytest.fixture(scope="module")
def transactions_db(database_url: str) -> str:
    return fresh_database(database_url, "payments_caller_transaction_tests")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def pool(transactions_db: str):
    async with payments_pool(transactions_db, max_size=4) as pool:
        yield pool


@pytest.fixture
def case_id() -> str:
    return f"txn-{next(_ids):04d}"


def _schedule(case_id: str) -> schedules.ScheduleRequest:
    return schedules.ScheduleRequest(f"{case_id}/schedule", case_id, "collect_and_pay", Frequency.WEEKLY,
                                     "METHOD_DIRECT_DEBIT", date(2026, 1, 5), 5000, 1000, "gb-2012", f"calc-{case_id}")


def _payment(reference: str, case_id: str, pence: int = 6000) -> receipts.IncomingPayment:
    return receipts.IncomingPayment(reference, case_id, pence, FRIDAY, "METHOD_DIRECT_DEBIT")


async def _rows(pool, case_id: str) -> dict[str, int]:
    """How many rows of each kind the case has, in a connection of its own (committed rows only)."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT (SELECT count(*) FROM schedules WHERE case_id = %(c)s),"
            "       (SELECT count(*) FROM transactions WHERE case_id = %(c)s OR idempotency_key LIKE %(k)s),"
            "       (SELECT count(*) FROM postings p JOIN transactions t USING (transaction_id)"
            "         WHERE t.case_id = %(c)s OR t.idempotency_key LIKE %(k)s),"
            "       (SELECT count(*) FROM charges WHERE case_id = %(c)s),"
            "       (SELECT count(*) FROM allocations a JOIN charges c USING (charge_id) WHERE c.case_id = %(c)s),"
            "       (SELECT count(*) FROM bank_movements WHERE bank_reference LIKE %(k)s),"
            "       (SELECT count(*) FROM disbursement_outbox WHERE case_id = %(c)s)",
            {"c": case_id, "k": f"{case_id}%"})
        row = await cur.fetchone()
    assert row is not None
    names = ("schedules", "transactions", "postings", "charges", "allocations", "bank_movements", "outbox")
    return dict(zip(names, (int(n) for n in row)))


NOTHING = {"schedules": 0, "transactions": 0, "postings": 0, "charges": 0, "allocations": 0, "bank_movements": 0,
           "outbox": 0}


async def test_two_legs_posted_in_a_transaction_the_caller_rolls_back_leave_nothing(pool, case_id) -> None:
    async with pool.connection() as conn:
        with pytest.raises(CallerGaveUp):
            async with conn.transaction():
                header = await ledger.claim(conn, f"{case_id}/in-1", {"n": 1}, kind="unidentified_payment",
                                            case_id=None, value_date=FRIDAY, detail={"amount_pence": 500})
                await ledger.add_legs(conn, header.transaction_id, [ledger.Leg(ledger.CLIENT_FUNDS, 500),
                                                                    ledger.Leg(ledger.SUSPENSE, -500)])
                inside = await conn.execute("SELECT count(*) FROM postings WHERE transaction_id = %s",
                                            (header.transaction_id,))
                assert await inside.fetchone() == (2,)     # both legs are there while the transaction is open
                raise CallerGaveUp
    assert await _rows(pool, case_id) == NOTHING


async def test_the_same_two_legs_committed_by_the_caller_are_kept(pool, case_id) -> None:
    async with pool.connection() as conn, conn.transaction():
        header = await ledger.claim(conn, f"{case_id}/in-1", {"n": 1}, kind="unidentified_payment",
                                    case_id=None, value_date=FRIDAY, detail={"amount_pence": 500})
        await ledger.add_legs(conn, header.transaction_id, [ledger.Leg(ledger.CLIENT_FUNDS, 500),
                                                            ledger.Leg(ledger.SUSPENSE, -500)])
    assert await _rows(pool, case_id) == {**NOTHING, "transactions": 1, "postings": 2}


async def test_several_operations_in_one_caller_transaction_roll_back_together(pool, case_id) -> None:
    async with pool.connection() as conn:
        with pytest.raises(CallerGaveUp):
            async with conn.transaction():
                await schedules.create_schedule(conn, _schedule(case_id))
                await charges.charge_period(conn, case_id, 0)
                posted = await receipts.record_incoming_payment(conn, _payment(f"{case_id}-IN-1", case_id))
                assert posted.detail["allocated"]["maintenance"] == 5000   # it did allocate, inside the transaction
                raise CallerGaveUp
    assert await _rows(pool, case_id) == NOTHING


async def test_several_operations_in_one_caller_transaction_commit_together(pool, case_id) -> None:
    async with pool.connection() as conn, conn.transaction():
        await schedules.create_schedule(conn, _schedule(case_id))
        await charges.charge_period(conn, case_id, 0)
        await receipts.record_incoming_payment(conn, _payment(f"{case_id}-IN-1", case_id))
    # The charge (maintenance and fee: 2 charge rows, 4 legs), the payment (client funds, two debts
    # settled, rp_entitled -> rp_payable less the 4% fee: 6 legs, 2 allocations, 1 bank movement,
    # 1 outbox row written by the trigger).
    assert await _rows(pool, case_id) == {"schedules": 1, "transactions": 2, "postings": 10, "charges": 2,
                                          "allocations": 2, "bank_movements": 1, "outbox": 1}
    async with pool.connection() as conn, conn.transaction():
        found = await ledger.balance(conn, case_id, FRIDAY)
    assert (found.arrears_pence, found.paid_to_date_pence, found.payable_to_receiving_parent_pence) == (0, 6000, 4800)


async def test_a_refused_operation_takes_the_callers_earlier_writes_with_it(pool, case_id) -> None:
    async with pool.connection() as conn:
        with pytest.raises(ledger.Precondition):
            async with conn.transaction():
                await schedules.create_schedule(conn, _schedule(case_id))
                await charges.charge_period(conn, case_id, 0)
                await schedules.stop_schedule(conn, f"{case_id}/stop", case_id, date(2026, 1, 5), "closed")
                await charges.charge_period(conn, case_id, 1)    # nil liability: refused
    assert await _rows(pool, case_id) == NOTHING


async def test_a_write_in_autocommit_mode_outside_a_transaction_is_refused_before_it_writes(transactions_db, pool,
                                                                                            case_id) -> None:
    async with await psycopg.AsyncConnection.connect(transactions_db, autocommit=True,
                                                     options="-c search_path=payments,public") as conn:
        with pytest.raises(ledger.NoTransaction):
            await schedules.create_schedule(conn, _schedule(case_id))
        with pytest.raises(ledger.NoTransaction):
            await receipts.record_incoming_payment(conn, _payment(f"{case_id}-IN-1", ""))   # to suspense: no lock
        with pytest.raises(ledger.NoTransaction):
            await ledger.claim(conn, f"{case_id}/in-1", {"n": 1}, kind="unidentified_payment", case_id=None,
                               value_date=FRIDAY)
    assert await _rows(pool, case_id) == NOTHING


async def test_without_autocommit_the_writes_wait_for_the_callers_commit(transactions_db, pool, case_id) -> None:
    async with await psycopg.AsyncConnection.connect(transactions_db, options="-c search_path=payments,public") as conn:
        await schedules.create_schedule(conn, _schedule(case_id))     # psycopg began a transaction
        await charges.charge_period(conn, case_id, 0)
        assert not await _case_lock_free(pool, case_id)
        await conn.rollback()
    assert await _rows(pool, case_id) == NOTHING


async def _case_lock_free(pool, case_id: str) -> bool:
    """Whether another session could take the case lock now (taken and released at once if so)."""
    async with pool.connection() as conn, conn.transaction():
        cur = await conn.execute("SELECT pg_try_advisory_xact_lock(hashtextextended(%s, 6))", (f"payments:{case_id}",))
        row = await cur.fetchone()
    assert row is not None
    return bool(row[0])


async def test_the_case_lock_lasts_until_the_callers_transaction_ends(pool, case_id) -> None:
    async with pool.connection() as conn:
        async with conn.transaction():
            await schedules.create_schedule(conn, _schedule(case_id))
            await charges.charge_period(conn, case_id, 0)
            assert not await _case_lock_free(pool, case_id)     # held after the operations returned
        assert await _case_lock_free(pool, case_id)             # released by the caller's commit


async def test_the_packages_entry_points_commit_by_themselves_on_a_bare_connection(transactions_db, pool,
                                                                                   case_id) -> None:
    async with await psycopg.AsyncConnection.connect(transactions_db, autocommit=True,
                                                     options="-c search_path=payments,public") as conn:
        await ledger.create_schedule(conn, _schedule(case_id))
        await ledger.charge_period(conn, case_id, 0)
        again = await ledger.charge_period(conn, case_id, 0)
        assert again.duplicate
        assert await _case_lock_free(pool, case_id)             # each released its lock when it committed
    assert await _rows(pool, case_id) == {**NOTHING, "schedules": 1, "transactions": 1, "postings": 4, "charges": 2}


async def test_an_entry_point_inside_a_callers_transaction_rolls_back_with_it(pool, case_id) -> None:
    async with pool.connection() as conn:
        with pytest.raises(CallerGaveUp):
            async with conn.transaction():
                await ledger.create_schedule(conn, _schedule(case_id))      # a savepoint, not a commit
                await ledger.charge_period(conn, case_id, 0)
                raise CallerGaveUp
    assert await _rows(pool, case_id) == NOTHING


async def test_a_refused_entry_point_inside_a_callers_transaction_undoes_only_itself(pool, case_id) -> None:
    async with pool.connection() as conn, conn.transaction():
        await ledger.create_schedule(conn, _schedule(case_id))
        with pytest.raises(ledger.Precondition):
            await ledger.create_schedule(conn, schedules.ScheduleRequest(   # reaches back before the schedule
                f"{case_id}/too-early", case_id, "collect_and_pay", Frequency.WEEKLY, "METHOD_DIRECT_DEBIT",
                date(2025, 12, 29), 4000, 800, "gb-2012", None))
        await ledger.charge_period(conn, case_id, 0)
    assert await _rows(pool, case_id) == {**NOTHING, "schedules": 1, "transactions": 1, "postings": 4, "charges": 2}
