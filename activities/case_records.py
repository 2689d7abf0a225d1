"""The activity that keeps the case read model (schema `case_api`) current: idempotent upserts.

The workflow sends a snapshot of the case (no names or addresses: those are written by the
CaseService at application) plus the timeline entries the read model has not seen yet; the
timeline is keyed by (case_id, seq), so a retried activity writes nothing twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from temporalio import activity

from activities.case_messages import CaseSnapshot
from services.case_api import repository as case_api

if TYPE_CHECKING:
    from psycopg import AsyncConnection
    from psycopg_pool import AsyncConnectionPool


async def write_case_record(conn: AsyncConnection, snapshot: CaseSnapshot) -> None:
    """The snapshot's writes on the caller's connection (and transaction)."""
    record = {column: getattr(snapshot, column) for column in case_api.CASE_RECORD_COLUMNS if column != "synced_seq"}
    record["synced_seq"] = max((row.seq for row in snapshot.timeline), default=0)
    await case_api.upsert_case(conn, record)
    for child in snapshot.children:
        await case_api.upsert_child(conn, snapshot.case_id, child.child_id, child.date_of_birth,
                                    child.shared_care_nights, child.in_full_time_education,
                                    child.stopped_qualifying_on)
    await case_api.append_timeline(conn, snapshot.case_id,
                                   [(row.seq, row.at, row.day, row.kind, row.text) for row in snapshot.timeline])


class CaseRecordActivities:
    def __init__(self, pool: AsyncConnectionPool):
        self._pool = pool

    @activity.defn(name="sync_case_record")
    async def sync_case_record(self, snapshot: CaseSnapshot) -> None:
        async with self._pool.connection() as conn, conn.transaction():
            await write_case_record(conn, snapshot)
