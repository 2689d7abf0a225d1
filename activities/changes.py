"""Activities of a change of circumstances (`case-<id>/change-<n>`): thin and idempotent.

Each writes to `case_api.change_records` (services/case_api/repository.py), keyed by
(case_id, change_no), so a retry or a replay never records twice: the first write of a fact wins.
The payment schedule change and the notice to both parents are recorded here, with an
idempotency key derived from the workflow ID, as the record of what the change decided; the case
workflow, told by the change's `change_cleared` signal, sends the new schedule to payments and
the letters to both parents through its own recalculation (workflows/case_changes.py).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING

from temporalio import activity

from activities.change_messages import (
    ChangeArrears,
    ChangeCleared,
    ChangeDecisionWrite,
    ChangeNotice,
    ChangeOpened,
    ChangeStatusUpdate,
    PaymentScheduleChange,
)
from services.case_api import repository as case_api

if TYPE_CHECKING:
    from psycopg import AsyncConnection
    from psycopg_pool import AsyncConnectionPool


async def _clear(conn: AsyncConnection, cleared: ChangeCleared) -> None:
    await case_api.clear_change(
        conn, cleared.case_id, cleared.change_no, cleared.outcome, cleared.reason, cleared.effective_date,
        cleared.cleared_at, cleared.cleared_day, cleared.on_time, cleared.weekly_liability_pence,
        cleared.adjustment_pence, cleared.reviewer, cleared.review_note)


class ChangeActivities:
    def __init__(self, pool: AsyncConnectionPool):
        self._pool = pool

    @activity.defn(name="record_change_opened")
    async def record_change_opened(self, opened: ChangeOpened) -> None:
        async with self._pool.connection() as conn:
            await case_api.open_change(
                conn, opened.case_id, opened.change_no, opened.workflow_id, opened.idempotency_key or None,
                opened.kind, opened.reported_date, opened.received_at, opened.sla_due_at, opened.seconds_per_day)

    @activity.defn(name="record_change_status")
    async def record_change_status(self, update: ChangeStatusUpdate) -> None:
        async with self._pool.connection() as conn:
            await case_api.update_change_status(
                conn, update.case_id, update.change_no, update.status, update.assigned_team,
                update.needs_caseworker, update.review_reason, update.escalated_at, update.breached_at)

    @activity.defn(name="schedule_payment_change")
    async def schedule_payment_change(self, change: PaymentScheduleChange) -> None:
        async with self._pool.connection() as conn:
            await case_api.keep_change_instructions(conn, change.case_id, change.change_no,
                                                    payment_change=asdict(change))

    @activity.defn(name="notify_parents_of_change")
    async def notify_parents_of_change(self, notice: ChangeNotice) -> None:
        async with self._pool.connection() as conn:
            await case_api.keep_change_instructions(conn, notice.case_id, notice.change_no, notice=asdict(notice))

    @activity.defn(name="record_change_cleared")
    async def record_change_cleared(self, cleared: ChangeCleared) -> None:
        async with self._pool.connection() as conn:
            await _clear(conn, cleared)

    # The one-write patch of ChangeWorkflow: the payment instruction, the parents' notice and the
    # clearance are short idempotent writes to this service's own change record, so one local
    # activity does them in one transaction and an automatic change completes in a single workflow
    # task (what lets the weekly volume run at the rate docs/rules.md section 9 needs: bench/bench_changes.py).
    @activity.defn(name="record_change_decision")
    async def record_change_decision(self, write: ChangeDecisionWrite) -> None:
        """Instructions first (kept as first written), then the clearance (once: only while
        cleared_at is NULL), in one transaction, so a retry after a crash is harmless."""
        cleared = write.cleared
        async with self._pool.connection() as conn, conn.transaction():
            await case_api.keep_change_instructions(
                conn, cleared.case_id, cleared.change_no, notice=asdict(write.notice),
                payment_change=asdict(write.payment_change) if write.payment_change else None)
            await _clear(conn, cleared)

    @activity.defn(name="record_change_arrears")
    async def record_change_arrears(self, arrears: ChangeArrears) -> None:
        async with self._pool.connection() as conn:
            await case_api.record_change_arrears(conn, arrears.case_id, arrears.change_no, arrears.arrears_pence)
