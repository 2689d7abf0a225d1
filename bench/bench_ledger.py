"""Ledger benchmarks, on an embedded PostgreSQL of their own (fsync on, as in production):

- idempotent postings per second (claim the key, insert balanced legs, deferred balance check at
  COMMIT; one database transaction each) as a ratio to plain INSERTs of the same shape (header +
  two legs, one transaction each) into comparable tables without constraints or triggers;
- replayed postings per second (every key already posted: the duplicate path);
- reconciliation time over 1,000,000 postings (target < 30 s). The data is bulk-loaded with COPY
  and triggers off (session_replication_role = replica) because only the reconciliation is timed.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import psycopg

from cms.db.migrate import apply_migrations
from cms.infra.postgres import postgres_url, start_postgres
from cms.infra.processes import free_port
from services import SERVICES_BY_NAME
from services.payments import ledger

FULL_POSTINGS, QUICK_POSTINGS = 3000, 400
FULL_RECONCILE, QUICK_RECONCILE = 1_000_000, 100_000


def _row(name: str, value: float, unit: str, baseline: float | None, ratio: float | None, target: str) -> dict:
    return {"benchmark": name, "value": round(value, 3), "unit": unit,
            "baseline": None if baseline is None else round(baseline, 3),
            "ratio": None if ratio is None else round(ratio, 3), "target": target}


_PLAIN_TABLES = """
CREATE TABLE IF NOT EXISTS plain_transactions (transaction_id bigserial PRIMARY KEY, idempotency_key text NOT NULL,
    fingerprint text NOT NULL, case_id text, kind text NOT NULL, value_date date NOT NULL, detail jsonb NOT NULL DEFAULT '{}',
    posted_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS plain_postings (posting_id bigserial PRIMARY KEY, transaction_id bigint NOT NULL,
    account text NOT NULL, case_id text, amount_pence bigint NOT NULL);
CREATE INDEX IF NOT EXISTS plain_postings_transaction_idx ON plain_postings (transaction_id);
CREATE INDEX IF NOT EXISTS plain_postings_case_account_idx ON plain_postings (case_id, account);
"""


async def _plain(conn: psycopg.AsyncConnection, count: int) -> float:
    started = time.perf_counter()
    for n in range(count):
        async with conn.transaction():
            cur = await conn.execute(
                "INSERT INTO plain_transactions (idempotency_key, fingerprint, case_id, kind, value_date)"
                " VALUES (%s, %s, %s, 'incoming_payment', %s) RETURNING transaction_id",
                (f"plain-{n}", "x", f"bench-{n % 100}", date(2026, 1, 5)))
            inserted = await cur.fetchone()
            assert inserted is not None, "INSERT ... RETURNING gives a row"
            tid = inserted[0]
            await conn.execute(
                "INSERT INTO plain_postings (transaction_id, account, case_id, amount_pence) "
                "SELECT %s, a, c, v FROM unnest(%s::text[], %s::text[], %s::bigint[]) AS u(a, c, v)",
                (tid, ["bank_clearing", "suspense"], [None, None], [1000 + n, -(1000 + n)]))
    return count / (time.perf_counter() - started)


async def _idempotent(conn: psycopg.AsyncConnection, count: int, prefix: str) -> float:
    started = time.perf_counter()
    for n in range(count):
        async with conn.transaction():
            posted = await ledger.claim(conn, f"{prefix}-{n}", {"n": n}, kind="unidentified_payment", case_id=None,
                                        value_date=date(2026, 1, 5), detail={"amount_pence": 1000 + n})
            if not posted.duplicate:
                await ledger.add_legs(conn, posted.transaction_id, [ledger.Leg("bank_clearing", 1000 + n),
                                                                    ledger.Leg("suspense", -(1000 + n))])
    return count / (time.perf_counter() - started)


async def _posting_rows(url: str, quick: bool) -> list[dict]:
    count = QUICK_POSTINGS if quick else FULL_POSTINGS
    async with await psycopg.AsyncConnection.connect(url, options="-c search_path=payments,public",
                                                     autocommit=True) as conn:
        await conn.execute(_PLAIN_TABLES)
        await _plain(conn, count // 10)              # warm-up, both paths
        await _idempotent(conn, count // 10, "warm")
        plain = await _plain(conn, count)
        idempotent = await _idempotent(conn, count, "bench")
        replayed = await _idempotent(conn, count, "bench")
    return [
        _row(f"idempotent postings ({count:,}, one commit each)", idempotent, "postings/s", plain, idempotent / plain,
             "ratio >= 0.5"),
        _row(f"replayed postings ({count:,}, all duplicates)", replayed, "postings/s", plain, replayed / plain,
             "returns the first result"),
    ]


def _load(url: str, postings: int) -> None:
    transactions = postings // 2
    first = date(2025, 1, 1)
    with psycopg.connect(url, options="-c search_path=payments,public") as conn:
        conn.execute("SET session_replication_role = replica")   # bulk load only: triggers off
        next_id = conn.execute("SELECT coalesce(max(transaction_id), 0) + 1 FROM transactions").fetchone()
        assert next_id is not None, "an aggregate gives a row"
        start = next_id[0]
        with conn.cursor().copy("COPY transactions (transaction_id, idempotency_key, fingerprint, case_id, kind,"
                                " value_date, detail) FROM STDIN") as copy:
            for n in range(transactions):
                copy.write_row((start + n, f"recon-{n}", "x", f"case-{n % 50_000}", "incoming_payment",
                                first + timedelta(days=n % 365), f'{{"amount_pence": {100 + n % 9000}}}'))
        with conn.cursor().copy("COPY postings (transaction_id, account, case_id, amount_pence) FROM STDIN") as copy:
            for n in range(transactions):
                amount = 100 + n % 9000
                copy.write_row((start + n, "client_funds", None, amount))
                copy.write_row((start + n, "pp_maintenance", f"case-{n % 50_000}", -amount))
        with conn.cursor().copy("COPY bank_movements (bank_reference, amount_pence, value_date, transaction_id)"
                                " FROM STDIN") as copy:
            for n in range(transactions):
                copy.write_row((f"recon-{n}", 100 + n % 9000, first + timedelta(days=n % 365), start + n))
        conn.execute("SELECT setval(pg_get_serial_sequence('transactions', 'transaction_id'), %s)",
                     (start + transactions,))
        conn.commit()
        conn.execute("ANALYZE transactions")
        conn.execute("ANALYZE postings")
        conn.execute("ANALYZE bank_movements")
        conn.commit()


async def _reconcile(url: str) -> tuple[float, dict]:
    async with await psycopg.AsyncConnection.connect(url, options="-c search_path=payments,public",
                                                     autocommit=True) as conn:
        started = time.perf_counter()
        report = await ledger.reconcile(conn, date(2026, 12, 31), None)
        return time.perf_counter() - started, report


def run(quick: bool = False) -> list[dict]:
    postings = QUICK_RECONCILE if quick else FULL_RECONCILE
    with tempfile.TemporaryDirectory(prefix="cms-bench-ledger-") as folder:
        root = Path(folder)
        root.chmod(0o755)
        port = free_port()
        server = start_postgres(root / "pgdata", port, root / "postgres.log")
        try:
            url = postgres_url(port)
            info = SERVICES_BY_NAME["payments"]
            apply_migrations(url, info.schema, info.migrations)
            rows = asyncio.run(_posting_rows(url, quick))
            _load(url, postings)
            seconds, report = asyncio.run(_reconcile(url))
            if not report["ok"]:
                raise RuntimeError(f"reconciliation found differences in generated data: {report['differences']}")
            rows.append(_row(f"reconciliation of {report['postings']:,} postings", seconds, "s", None, None,
                             f"< {30 * postings / FULL_RECONCILE:g} s"))
            return rows
        finally:
            server.stop()


if __name__ == "__main__":
    import json
    import os

    print(json.dumps(run(quick=os.environ.get("BENCH_QUICK") == "1"), indent=2))
