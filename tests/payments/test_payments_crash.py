"""Killing the client or PostgreSQL mid-posting leaves no half-posted transaction, and replaying
the same bank notifications afterwards posts nothing twice. Uses its own PostgreSQL (it is killed)."""

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import LiteralString

import psycopg

from cms.db.migrate import apply_migrations
from cms.infra.postgres import postgres_url, start_postgres
from cms.infra.processes import free_port
from services import SERVICES_BY_NAME
from tests.helpers.rows import required_row

WRITER = Path(__file__).with_name("payments_crash_writer.py")
REPO = Path(__file__).resolve().parents[2]


def _writer(url: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(WRITER), url, *args], stdout=subprocess.PIPE, text=True,
                            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})


def _wait_for_lines(process: subprocess.Popen, prefix: str, count: int) -> list[str]:
    assert process.stdout is not None, "the writer was started without a pipe on its output"
    seen: list[str] = []
    while len(seen) < count:
        line = process.stdout.readline()
        assert line, f"writer exited early with {process.wait()}"
        if line.startswith(prefix):
            seen.append(line.split()[-1] if " " in line else line.strip())
    return seen


def _kill_server(server) -> None:
    # The whole process group: postmaster and every backend, as a power cut would.
    os.killpg(server.popen.pid, signal.SIGKILL)
    server.popen.wait(10)


def _scalar(conn: psycopg.Connection, query: LiteralString) -> int:
    return required_row(conn.execute(query).fetchone(), query)[0]


def _books(url: str) -> dict:
    with psycopg.connect(url, options="-c search_path=payments") as conn:
        unbalanced = _scalar(
            conn, "SELECT count(*) FROM transactions t LEFT JOIN (SELECT transaction_id, sum(amount_pence) s, count(*) n"
            " FROM postings GROUP BY transaction_id) p USING (transaction_id) WHERE p.n IS NULL OR p.n < 2 OR p.s <> 0")
        total = _scalar(conn, "SELECT coalesce(sum(amount_pence), 0) FROM postings")
        client = _scalar(conn, "SELECT coalesce(sum(amount_pence), 0) FROM postings WHERE account = 'client_funds'")
        bank = _scalar(conn, "SELECT coalesce(sum(amount_pence), 0) FROM bank_movements")
        payments = _scalar(conn, "SELECT count(*) FROM transactions WHERE kind = 'incoming_payment'")
        allocated_ok = _scalar(
            conn, "SELECT count(*) FROM transactions t WHERE t.kind = 'incoming_payment' AND"
            " (SELECT coalesce(sum(amount_pence), 0) FROM allocations a WHERE a.transaction_id = t.transaction_id)"
            " + (t.detail->>'credit_pence')::bigint <> (t.detail->>'amount_pence')::bigint")
        keys = {row[0] for row in conn.execute("SELECT idempotency_key FROM transactions")}
    return {"unbalanced": unbalanced, "total": total, "client_funds": client, "bank": bank, "payments": payments,
            "misallocated": allocated_ok, "keys": keys}


def test_killing_the_client_or_postgres_mid_posting_leaves_whole_transactions(tmp_path) -> None:
    port = free_port()
    data_dir, log = tmp_path / "pgdata", tmp_path / "postgres.log"
    tmp_path.chmod(0o755)
    server = start_postgres(data_dir, port, log)
    url = postgres_url(port)
    try:
        info = SERVICES_BY_NAME["payments"]
        apply_migrations(url, info.schema, info.migrations)

        # 1. kill -9 a client that is posting payments in a loop.
        writer = _writer(url, "loop", "crash-1", "0", "100000")
        posted = _wait_for_lines(writer, "POSTED", 25)
        writer.kill()
        writer.wait(10)
        books = _books(url)
        assert books["unbalanced"] == 0 and books["total"] == 0 and books["misallocated"] == 0
        assert set(posted) <= books["keys"]

        # 2. kill -9 a client that has written one leg of two: nothing of it survives.
        holder = _writer(url, "hold", "half-posted-1")
        _wait_for_lines(holder, "MID", 1)
        holder.kill()
        holder.wait(10)
        assert "half-posted-1" not in _books(url)["keys"]

        # 3. SIGKILL PostgreSQL while a transaction is half-written, then restart on the same data.
        holder = _writer(url, "hold", "half-posted-2")
        _wait_for_lines(holder, "MID", 1)
        before = _books(url)
        _kill_server(server)
        holder.kill()
        holder.wait(10)
        server = start_postgres(data_dir, port, log)
        after = _books(url)
        assert "half-posted-2" not in after["keys"]
        assert after["keys"] == before["keys"]          # every committed transaction survived the crash
        assert after["unbalanced"] == 0 and after["total"] == 0 and after["client_funds"] == after["bank"]

        # 4. Replaying the same bank notifications (the feed restarts from the top) posts nothing twice.
        replay = _writer(url, "loop", "crash-1", "0", str(len(posted) + 5))
        assert replay.wait(60) == 0
        final = _books(url)
        assert final["payments"] == max(after["payments"], len(posted) + 5)
        assert final["unbalanced"] == 0 and final["total"] == 0 and final["misallocated"] == 0
        assert final["client_funds"] == final["bank"]
    finally:
        server.stop()
