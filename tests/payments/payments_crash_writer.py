"""A client posting to the ledger, for the crash tests (run as a subprocess and killed).

    python payments_crash_writer.py URL loop CASE START COUNT  # posts payments, printing each key
    python payments_crash_writer.py URL hold KEY               # half-posts one transaction, then waits
"""

from __future__ import annotations

import asyncio
import sys
from datetime import date

import psycopg

from domain.payments.schedule import Frequency
from services.payments import ledger


async def _connect(url: str) -> psycopg.AsyncConnection:
    return await psycopg.AsyncConnection.connect(url, options="-c search_path=payments,public")


async def loop(url: str, case_id: str, start: int, count: int) -> None:
    conn = await _connect(url)
    await ledger.create_schedule(conn, ledger.ScheduleRequest(
        f"{case_id}/schedule", case_id, "collect_and_pay", Frequency.WEEKLY, "METHOD_DIRECT_DEBIT",
        date(2026, 1, 5), 5000, 1000, "gb-2012", "crash-test"))
    for index in range(40):
        await ledger.charge_period(conn, case_id, index)
    for n in range(start, start + count):
        key = f"{case_id}-in-{n:06d}"
        await ledger.record_incoming_payment(conn, ledger.IncomingPayment(key, case_id, 1000 + n % 7000, date(2026, 3, 2),
                                                                          "METHOD_CARD"))
        print(f"POSTED {key}", flush=True)


async def hold(url: str, key: str) -> None:
    conn = await _connect(url)
    async with conn.transaction():
        posted = await ledger.claim(conn, key, {"k": key}, kind="unidentified_payment", case_id=None,
                                    value_date=date(2026, 3, 2))
        await conn.execute("INSERT INTO postings (transaction_id, account, amount_pence) VALUES (%s, 'client_funds', 500)",
                           (posted.transaction_id,))
        print("MID", flush=True)    # one leg of two written, not committed
        await asyncio.sleep(3600)


if __name__ == "__main__":
    url, mode = sys.argv[1], sys.argv[2]
    if mode == "loop":
        asyncio.run(loop(url, sys.argv[3], int(sys.argv[4]), int(sys.argv[5])))
    else:
        asyncio.run(hold(url, sys.argv[3]))
