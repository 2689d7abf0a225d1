"""Activities of a change of circumstances (`case-<id>/change-<n>`): thin and idempotent.

Each writes to `case_api.change_records`, keyed by (case_id, change_no), so a retry or a replay
never records twice: the first write of a fact wins (`COALESCE`, `ON CONFLICT DO NOTHING`).
The payment schedule change and the notice to both parents are recorded here, with an
idempotency key derived from the workflow ID, as the record of what the change decided; the case
workflow, told by the change's `change_cleared` signal, sends the new schedule to payments and
the letters to both parents through its own recalculation (workflows/case_changes.py).

`load_sla_report` is the repository the SLA view (CaseService.GetSlaReport, `cmsctl sla`) reads:
open changes by age band, clearances of the last four weeks, breaches and the oldest items, in two
set-based queries. `seed_change_records` fills the table with synthetic rows to time them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool
from temporalio import activity

from activities.context import db_pool
from domain.sla import SLA_DAYS, OldItem, SlaReport, report_from_counts, sql_parameters


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


_CLEAR_SQL = (
    "UPDATE case_api.change_records SET status = 'cleared', outcome = %s, reason = %s, effective_date = %s, "
    "cleared_at = %s, cleared_day = %s, on_time = %s, weekly_liability_pence = %s, adjustment_pence = %s, "
    "reviewer = %s, review_note = %s, needs_caseworker = false, updated_at = now() "
    "WHERE case_id = %s AND change_no = %s AND cleared_at IS NULL")


def _clear_parameters(cleared: ChangeCleared) -> tuple:
    return (cleared.outcome, cleared.reason, cleared.effective_date, cleared.cleared_at, cleared.cleared_day,
            cleared.on_time, cleared.weekly_liability_pence, cleared.adjustment_pence, cleared.reviewer,
            cleared.review_note, cleared.case_id, cleared.change_no)


@activity.defn
async def record_change_cleared(cleared: ChangeCleared) -> None:
    async with db_pool().connection() as conn:
        await conn.execute(_CLEAR_SQL, _clear_parameters(cleared))


# The one-write patch of ChangeWorkflow: the payment instruction, the parents' notice and the
# clearance are short idempotent writes to this service's own change record, so one local
# activity does them in one transaction and an automatic change completes in a single workflow
# task (what lets the weekly volume run at the rate SPEC 4.6 needs: bench/bench_changes.py).
@dataclass
class ChangeDecisionWrite:
    notice: ChangeNotice
    cleared: ChangeCleared
    payment_change: PaymentScheduleChange | None = None   # None: nothing changes for payments


@activity.defn
async def record_change_decision(write: ChangeDecisionWrite) -> None:
    """Instructions first (kept as first written: COALESCE), then the clearance (once: only
    while cleared_at is NULL), in one transaction, so a retry after a crash is harmless."""
    cleared = write.cleared
    payment = Jsonb(asdict(write.payment_change)) if write.payment_change else None
    async with db_pool().connection() as conn, conn.transaction():
        await conn.execute(
            "UPDATE case_api.change_records SET notice = COALESCE(notice, %s),"
            " payment_change = COALESCE(payment_change, %s), updated_at = now()"
            " WHERE case_id = %s AND change_no = %s",
            (Jsonb(asdict(write.notice)), payment, cleared.case_id, cleared.change_no))
        await conn.execute(_CLEAR_SQL, _clear_parameters(cleared))


@dataclass
class ChangeArrears:
    """What a backdated change adds for payments already due (domain.changes.backdated_arrears_pence)."""

    case_id: str
    change_no: int
    arrears_pence: int


@activity.defn
async def record_change_arrears(arrears: ChangeArrears) -> None:
    async with db_pool().connection() as conn:
        await conn.execute(
            "UPDATE case_api.change_records SET arrears_pence = COALESCE(arrears_pence, %s), updated_at = now() "
            "WHERE case_id = %s AND change_no = %s", (arrears.arrears_pence, arrears.case_id, arrears.change_no))


CHANGE_ACTIVITIES = [record_change_opened, record_change_status, schedule_payment_change,
                     notify_parents_of_change, record_change_cleared, record_change_decision, record_change_arrears]


# --- the SLA repository -------------------------------------------------------------------------
# Set-based SQL over change_records: the rules (28 days, the 4-week window, the age bands) come
# from domain.sla as parameters. Open changes and the clearances of the window are two branches,
# each served by its own covering partial index (migration 0005). A clearance is in the window
# of its own calendar; `window_floor` (the window on the longest calendar day) is the same bound
# in a form the cleared_at index can use.

_DUE_AT = "received_at + make_interval(secs => %(sla_days)s * seconds_per_day)"
_OPEN_AGE = "extract(epoch FROM %(now)s - received_at)::float8 / seconds_per_day"

# One row per open age band (band = 1-based position in AGE_BANDS), then one for the clearances.
_SLA_COUNTS_SQL = f"""
    SELECT width_bucket(greatest(floor({_OPEN_AGE}), 0), %(band_starts)s::float8[]) AS band,
           count(*) AS items,
           count(*) FILTER (WHERE %(now)s > {_DUE_AT}) AS open_breached,
           0 AS on_time
      FROM case_api.change_records
     WHERE status <> 'cleared'
  GROUP BY 1
 UNION ALL
    SELECT NULL, count(*), 0, count(*) FILTER (WHERE cleared_at <= {_DUE_AT})
      FROM case_api.change_records
     WHERE status = 'cleared' AND cleared_at >= %(window_floor)s
       AND cleared_at >= %(now)s - make_interval(secs => %(window_days)s * seconds_per_day)
"""

# Oldest open first; ties by case and number in byte order (as Python compares strings). The
# ranking reads only the open index; the other columns are fetched for the few rows kept.
_SLA_OLDEST_SQL = f"""
    WITH oldest AS (
        SELECT case_id, change_no, {_OPEN_AGE} AS age, {_DUE_AT} AS due_at
          FROM case_api.change_records
         WHERE status <> 'cleared'
      ORDER BY age DESC, case_id COLLATE "C", change_no
         LIMIT %(oldest)s)
    SELECT case_id, change_no, kind, greatest(floor(age), 0)::int, assigned_team, needs_caseworker, due_at,
           %(now)s > due_at
      FROM oldest JOIN case_api.change_records USING (case_id, change_no)
  ORDER BY age DESC, case_id COLLATE "C", change_no
"""


async def database_now(pool: AsyncConnectionPool) -> datetime:
    async with pool.connection() as conn:
        cursor = await conn.execute("SELECT now()")
        return (await cursor.fetchone())[0]


async def load_sla_report(pool: AsyncConnectionPool, now: datetime | None = None, oldest: int = 10) -> SlaReport:
    """The SLA view at `now` (the database clock by default), from one snapshot of change_records."""
    now = now or await database_now(pool)
    params = sql_parameters(now, max(oldest, 0))
    async with pool.connection() as conn:
        async with conn.transaction():
            await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            counts = await (await conn.execute(_SLA_COUNTS_SQL, params)).fetchall()
            oldest_rows = await (await conn.execute(_SLA_OLDEST_SQL, params)).fetchall()
    open_by_band = {band: items for band, items, _, _ in counts if band is not None}
    cleared = next(((items, on_time) for band, items, _, on_time in counts if band is None), (0, 0))
    return report_from_counts(open_by_band, sum(breached for _, _, breached, _ in counts), cleared[0], cleared[1],
                              [OldItem(*row) for row in oldest_rows])


async def seed_change_records(pool: AsyncConnectionPool, n: int, now: datetime | None = None) -> None:
    """Inserts `n` synthetic changes (one INSERT ... SELECT generate_series) for measuring the SLA
    query: received over the past year on the real calendar; about 3% still open; the rest cleared
    0-34 days after receipt (so some late), none in the future. Case ids `seed-<i>`."""
    async with pool.connection() as conn:
        await conn.execute(
            """
            INSERT INTO case_api.change_records (case_id, change_no, workflow_id, kind, status, reported_date,
                   received_at, sla_due_at, seconds_per_day, cleared_at, on_time, cleared_day, outcome)
            SELECT 'seed-' || i, 1, 'case-seed-' || i || '/change-1', kind, CASE WHEN cleared IS NULL THEN 'open'
                   ELSE 'cleared' END, received::date, received, received + interval '28 days', 86400, cleared,
                   cleared <= received + interval '28 days', cleared::date,
                   CASE WHEN cleared IS NULL THEN NULL ELSE 'recalculated' END
              FROM (SELECT i, received,
                           (ARRAY['paying_parent_income', 'shared_care_nights', 'address', 'child_left'])[1 + i %% 4]
                               AS kind,
                           CASE WHEN i %% 100 < 3 THEN NULL
                                ELSE least(received + make_interval(secs => (i * 7919 %% (35 * 86400))), %(now)s)
                           END AS cleared
                      FROM (SELECT i, %(now)s - make_interval(secs => (i * 104729 %% (365 * 86400))) AS received
                              FROM generate_series(1, %(n)s::bigint) AS i) AS spread) AS rows
            ON CONFLICT DO NOTHING
            """,
            {"n": n, "now": now or datetime.now(UTC)},
        )


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


__all__ = ["CHANGE_ACTIVITIES", "ChangeArrears", "ChangeCleared", "ChangeNotice", "ChangeOpened", "ChangeStatusUpdate",
           "PaymentScheduleChange", "load_sla_report", "seed_change_records", "sla_report_json"]
