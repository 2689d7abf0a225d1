"""Activities of a change of circumstances (`case-<id>/change-<n>`): thin and idempotent.

Each writes to `case_api.change_records`, keyed by (case_id, change_no), so a retry or a replay
never records twice: the first write of a fact wins (`COALESCE`, `ON CONFLICT DO NOTHING`).
The payment schedule change and the notice to both parents are recorded here as instructions
with an idempotency key derived from the workflow ID; the payments and notifications services
take them from there (see the final report of issue 7 for that wiring).

`load_sla_items` / `load_sla_report` are the repository the SLA view (CaseService.GetSlaReport,
`cmsctl sla`) reads: open changes plus the clearances of the last four weeks.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool
from temporalio import activity

from activities.context import db_pool
from domain.sla import SLA_DAYS, WINDOW_DAYS, SlaItem, SlaReport, sla_report


@dataclass
class ChangeOpened:
    case_id: str
    change_no: int
    workflow_id: str
    kind: str
    reported_date: str
    received_at: str          # ISO instant (workflow time)
    sla_due_at: str
    seconds_per_day: float
    idempotency_key: str = ""


@dataclass
class ChangeStatusUpdate:
    case_id: str
    change_no: int
    status: str               # awaiting_review | escalated
    assigned_team: str
    needs_caseworker: bool
    review_reason: str | None = None
    escalated_at: str | None = None
    breached_at: str | None = None


@dataclass
class PaymentScheduleChange:
    idempotency_key: str      # `<workflow id>/schedule`
    case_id: str
    change_no: int
    effective_date: str
    weekly_liability_pence: int | None   # None: the liability ends (case closure)
    paying_parent_pays_pence: int | None
    adjustment_pence: int     # + arrears from a backdated increase, − overpaid


@dataclass
class ChangeNotice:
    idempotency_key: str      # `<workflow id>/notice`
    case_id: str
    change_no: int
    outcome: str
    reason: str
    explanation: list[dict[str, str]] = field(default_factory=list)
    recipients: list[str] = field(default_factory=lambda: ["paying_parent", "receiving_parent"])


@dataclass
class ChangeCleared:
    case_id: str
    change_no: int
    outcome: str
    reason: str
    effective_date: str | None
    cleared_at: str
    cleared_day: str
    on_time: bool
    weekly_liability_pence: int | None = None
    adjustment_pence: int = 0
    reviewer: str | None = None
    review_note: str | None = None


@activity.defn
async def record_change_opened(opened: ChangeOpened) -> None:
    async with db_pool().connection() as conn:
        await conn.execute(
            "INSERT INTO case_api.change_records (case_id, change_no, workflow_id, idempotency_key, kind, status, "
            "reported_date, received_at, sla_due_at, seconds_per_day) "
            "VALUES (%s, %s, %s, %s, %s, 'open', %s, %s, %s, %s) ON CONFLICT (case_id, change_no) DO NOTHING",
            (opened.case_id, opened.change_no, opened.workflow_id, opened.idempotency_key or None, opened.kind,
             opened.reported_date, opened.received_at, opened.sla_due_at, opened.seconds_per_day),
        )


@activity.defn
async def record_change_status(update: ChangeStatusUpdate) -> None:
    async with db_pool().connection() as conn:
        await conn.execute(
            "UPDATE case_api.change_records SET status = %s, assigned_team = %s, needs_caseworker = %s, "
            "review_reason = COALESCE(review_reason, %s), escalated_at = COALESCE(escalated_at, %s), "
            "breached_at = COALESCE(breached_at, %s), updated_at = now() "
            "WHERE case_id = %s AND change_no = %s AND status <> 'cleared'",
            (update.status, update.assigned_team, update.needs_caseworker, update.review_reason,
             update.escalated_at, update.breached_at, update.case_id, update.change_no),
        )


async def _record_instruction_once(column: str, instruction: PaymentScheduleChange | ChangeNotice) -> None:
    """Stores an instruction on the change's record; a retry keeps the first one (COALESCE)."""
    async with db_pool().connection() as conn:
        await conn.execute(
            f"UPDATE case_api.change_records SET {column} = COALESCE({column}, %s), updated_at = now() "
            "WHERE case_id = %s AND change_no = %s",
            (Jsonb(asdict(instruction)), instruction.case_id, instruction.change_no),
        )


@activity.defn
async def schedule_payment_change(change: PaymentScheduleChange) -> None:
    await _record_instruction_once("payment_change", change)


@activity.defn
async def notify_parents_of_change(notice: ChangeNotice) -> None:
    await _record_instruction_once("notice", notice)


@activity.defn
async def record_change_cleared(cleared: ChangeCleared) -> None:
    async with db_pool().connection() as conn:
        await conn.execute(
            "UPDATE case_api.change_records SET status = 'cleared', outcome = %s, reason = %s, effective_date = %s, "
            "cleared_at = %s, cleared_day = %s, on_time = %s, weekly_liability_pence = %s, adjustment_pence = %s, "
            "reviewer = %s, review_note = %s, needs_caseworker = false, updated_at = now() "
            "WHERE case_id = %s AND change_no = %s AND cleared_at IS NULL",
            (cleared.outcome, cleared.reason, cleared.effective_date, cleared.cleared_at, cleared.cleared_day,
             cleared.on_time, cleared.weekly_liability_pence, cleared.adjustment_pence, cleared.reviewer,
             cleared.review_note, cleared.case_id, cleared.change_no),
        )


CHANGE_ACTIVITIES = [record_change_opened, record_change_status, schedule_payment_change,
                     notify_parents_of_change, record_change_cleared]


# --- the SLA repository -------------------------------------------------------------------------

_SLA_ITEMS_SQL = (
    "SELECT case_id, change_no, kind, received_at, seconds_per_day, assigned_team, needs_caseworker, cleared_at "
    "FROM case_api.change_records "
    "WHERE status <> 'cleared' "
    "   OR cleared_at >= %(now)s - make_interval(secs => %(window)s * seconds_per_day)"
)


async def load_sla_items(pool: AsyncConnectionPool, now: datetime) -> list[SlaItem]:
    async with pool.connection() as conn:
        cursor = await conn.execute(_SLA_ITEMS_SQL, {"now": now, "window": WINDOW_DAYS})
        return [SlaItem(*row) for row in await cursor.fetchall()]


async def database_now(pool: AsyncConnectionPool) -> datetime:
    async with pool.connection() as conn:
        cursor = await conn.execute("SELECT now()")
        return (await cursor.fetchone())[0]


async def load_sla_report(pool: AsyncConnectionPool, now: datetime | None = None, oldest: int = 10) -> SlaReport:
    """The SLA view at `now` (the database clock by default)."""
    now = now or await database_now(pool)
    return sla_report(await load_sla_items(pool, now), now, oldest=oldest)


def sla_report_json(report: SlaReport) -> dict[str, Any]:
    share = report.on_time_share
    return {
        "open_by_age_band_days": report.open_by_band,
        "open_total": report.open_total,
        "cleared_last_4_weeks": report.cleared_last_4_weeks,
        "cleared_on_time_last_4_weeks": report.cleared_on_time_last_4_weeks,
        "on_time_share_percent": None if share is None else f"{float(share * 100):.1f}",
        "breaches_open": report.breaches_open,
        "breaches_last_4_weeks": report.breaches_last_4_weeks,
        "sla_days": SLA_DAYS,
        "oldest": [{**asdict(item), "due_at": item.due_at.isoformat()} for item in report.oldest],
    }


__all__ = ["CHANGE_ACTIVITIES", "ChangeCleared", "ChangeNotice", "ChangeOpened", "ChangeStatusUpdate",
           "PaymentScheduleChange", "load_sla_items", "load_sla_report", "sla_report_json"]
