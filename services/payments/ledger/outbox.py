"""The disbursement outbox: one row per ledger transaction that put money in a case's hands,
written by a trigger in the same transaction as its postings (migration 0003), turned into a
DisbursementWorkflow by services.payments.disbursements.

Takes the caller's connection. Claiming holds the rows' locks until the caller's transaction
ends, so the caller starts the workflows and stamps the rows inside that one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from psycopg import AsyncConnection

from .postings import require_transaction


@dataclass(frozen=True)
class PendingDisbursement:
    outbox_id: int
    bank_reference: str
    case_id: str
    received_on: date
    created_at: datetime


async def claim_pending(conn: AsyncConnection, limit: int) -> list[PendingDisbursement]:
    """Up to `limit` rows whose workflow has not started, oldest first. SKIP LOCKED: several
    service replicas share the queue, each taking rows the others have not claimed."""
    require_transaction(conn)
    cur = await conn.execute(
        "SELECT outbox_id, bank_reference, case_id, received_on, created_at FROM disbursement_outbox"
        " WHERE started_at IS NULL ORDER BY outbox_id LIMIT %s FOR UPDATE SKIP LOCKED", (limit,))
    return [PendingDisbursement(*found) for found in await cur.fetchall()]


async def mark_started(conn: AsyncConnection, started: list[tuple[int, str]]) -> None:
    """Stamps claimed rows (outbox id, workflow id) as started."""
    await conn.execute("UPDATE disbursement_outbox SET started_at = now(), workflow_id = u.workflow_id"
                       " FROM unnest(%s::bigint[], %s::text[]) AS u(outbox_id, workflow_id)"
                       " WHERE disbursement_outbox.outbox_id = u.outbox_id",
                       ([i for i, _ in started], [w for _, w in started]))


async def purge_started(conn: AsyncConnection, older_than: timedelta, batch_size: int) -> int:
    """Deletes one batch of the oldest rows whose workflow started more than `older_than` ago;
    returns how many. A row not yet started is never deleted. SKIP LOCKED: replicas purging at
    the same time take different rows instead of waiting on each other."""
    cur = await conn.execute(
        "DELETE FROM disbursement_outbox WHERE outbox_id IN ("
        "SELECT outbox_id FROM disbursement_outbox WHERE started_at IS NOT NULL AND started_at < now() - %s"
        " ORDER BY started_at LIMIT %s FOR UPDATE SKIP LOCKED)", (older_than, batch_size))
    return cur.rowcount
