"""All SQL on the case_api schema: the case read model, the parties, the letters and schedules
handed over, the changes of circumstances and their SLA view, the staff audit.

Two writers share it: CaseService (applications, staff reads) and the worker's case activities
(what the case workflow records). Every function takes a connection from the caller, so the
caller decides what one transaction holds: `async with pool.connection() as conn,
conn.transaction(): await upsert_case(conn, ...)`. Reads that must agree with each other run in
`read_snapshot(pool)`. Every write is idempotent on its key, so a retried activity writes
nothing twice.

psycopg is only named for the type checker: the case workflow imports the activities that
import this module, and a workflow must not load the database driver. JSON goes in as text cast
to jsonb.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from domain.sla import OldItem, SlaReport, report_from_counts, sql_parameters

if TYPE_CHECKING:
    from psycopg import AsyncConnection
    from psycopg_pool import AsyncConnectionPool

# The details of a party the read model keeps (case_api.parties), as CaseService receives them.
PARTY_DETAIL_FIELDS = ("full_name", "address", "phone", "email", "employer", "bank_sort_code")


def _json(value: Mapping[str, Any]) -> str:
    return json.dumps(value)


@asynccontextmanager
async def read_snapshot(pool: AsyncConnectionPool) -> AsyncIterator[AsyncConnection]:
    """A connection in one REPEATABLE READ, READ ONLY transaction: every read through it sees
    the same moment (now() included)."""
    async with pool.connection() as conn, conn.transaction():
        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield conn


# --- applications (CaseService) ---------------------------------------------------------------

async def record_application(conn: AsyncConnection, case_id: str, idempotency_key: str, service_type: str,
                             safeguarded: bool, protected_party_ids: list[str],
                             parties: Iterable[tuple[str, str, Mapping[str, str]]],
                             children: Iterable[tuple[str, str, int, bool]]) -> tuple[str, bool]:
    """A new case with its parties ((party_id, role, details)) and children ((child_id, date of
    birth, shared care nights, in full-time education)): (case_id, True). When the idempotency
    key already named a case, nothing is written and that case's id comes back, (its id, False),
    even if ids were derived differently when it was made."""
    inserted = await (await conn.execute(
        "INSERT INTO case_api.cases (case_id, idempotency_key, stage, service_type, safeguarded, protected_party_ids) "
        "VALUES (%s, %s, 'Application', %s, %s, %s) ON CONFLICT DO NOTHING RETURNING case_id",
        (case_id, idempotency_key, service_type, safeguarded, protected_party_ids),
    )).fetchone()
    if inserted is None:
        existing = await (await conn.execute(
            "SELECT case_id FROM case_api.cases WHERE idempotency_key = %s", (idempotency_key,))).fetchone()
        return (existing[0] if existing else case_id), False
    for party_id, role, details in parties:
        await conn.execute(
            "INSERT INTO case_api.parties (case_id, party_id, role, " + ", ".join(PARTY_DETAIL_FIELDS) + ") "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (case_id, party_id, role, *(details.get(name, "") for name in PARTY_DETAIL_FIELDS)),
        )
    for child_id, date_of_birth, shared_care_nights, in_full_time_education in children:
        await conn.execute(
            "INSERT INTO case_api.children (case_id, child_id, date_of_birth, shared_care_nights, "
            "in_full_time_education) VALUES (%s, %s, %s, %s, %s)",
            (case_id, child_id, date_of_birth, shared_care_nights, in_full_time_education),
        )
    return case_id, True


# --- reading a case (CaseService) --------------------------------------------------------------

async def load_case(conn: AsyncConnection, case_id: str) -> dict[str, Any] | None:
    """The case's row of case_api.cases by column name; None when there is no such case."""
    cursor = await conn.execute("SELECT * FROM case_api.cases WHERE case_id = %s", (case_id,))
    row = await cursor.fetchone()
    if row is None:
        return None
    return dict(zip([column.name for column in cursor.description or ()], row))


async def case_exists(conn: AsyncConnection, case_id: str) -> bool:
    row = await (await conn.execute("SELECT 1 FROM case_api.cases WHERE case_id = %s", (case_id,))).fetchone()
    return row is not None


async def load_parties(conn: AsyncConnection, case_id: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(party_id, role, details by PARTY_DETAIL_FIELDS) of each party, paying parent first."""
    rows = await (await conn.execute(
        "SELECT party_id, role, " + ", ".join(PARTY_DETAIL_FIELDS) + " FROM case_api.parties WHERE case_id = %s "
        "ORDER BY role", (case_id,))).fetchall()
    return [(party_id, role, dict(zip(PARTY_DETAIL_FIELDS, values))) for party_id, role, *values in rows]


async def load_children(conn: AsyncConnection, case_id: str) -> list[tuple[str, Any, int, bool]]:
    """(child_id, date of birth, shared care nights, in full-time education), by child id."""
    return list(await (await conn.execute(
        "SELECT child_id, date_of_birth, shared_care_nights, in_full_time_education FROM case_api.children "
        "WHERE case_id = %s ORDER BY child_id", (case_id,))).fetchall())


async def load_timeline(conn: AsyncConnection, case_id: str) -> list[tuple[datetime, Any, str, str]]:
    """(at, day, kind, text) of each timeline entry, in the order the case wrote them."""
    return list(await (await conn.execute(
        "SELECT at, day, kind, text FROM case_api.timeline WHERE case_id = %s ORDER BY seq", (case_id,))).fetchall())


async def load_safeguarding(conn: AsyncConnection, case_id: str) -> tuple[bool, list[str]]:
    """Whether the case is safeguarded, and the parties it protects."""
    row = await (await conn.execute(
        "SELECT safeguarded, protected_party_ids FROM case_api.cases WHERE case_id = %s", (case_id,))).fetchone()
    if row is None:
        return False, []
    return bool(row[0]), list(row[1] or [])


async def record_staff_read(conn: AsyncConnection, case_id: str, staff_id: str, reason: str, action: str,
                            fields: list[str]) -> None:
    """Audit: a member of staff saw these protected fields of the case, and why."""
    await conn.execute(
        "INSERT INTO case_api.audit (case_id, staff_id, reason, action, fields) VALUES (%s, %s, %s, %s, %s)",
        (case_id, staff_id, reason, action, fields),
    )


async def load_audit(conn: AsyncConnection, case_id: str, limit: int) -> list[tuple[datetime, str, str, str, list[str]]]:
    """The case's audit entries, newest first: (at, staff_id, action, reason, fields)."""
    cursor = await conn.execute(
        "SELECT at, staff_id, action, reason, fields FROM case_api.audit WHERE case_id = %s "
        "ORDER BY at DESC, id DESC LIMIT %s", (case_id, limit))
    return [(at, staff_id, action, reason, list(fields or [])) for at, staff_id, action, reason, fields
            in await cursor.fetchall()]


# --- the case workflow's record (worker activities) -------------------------------------------

# Columns of case_api.cases the case workflow keeps current (all but the application's own).
CASE_RECORD_COLUMNS = (
    "case_id", "stage", "service_type", "safeguarded", "application_date", "case_day", "initial_effective_date",
    "next_review_date", "rate", "weekly_liability_pence", "paying_parent_pays_pence",
    "receiving_parent_receives_pence", "liability_effective_date", "rule_set_id", "needs_caseworker",
    "caseworker_reason", "on_hold", "hold_reason", "sla_due_at", "closure_reason", "closed_on", "reviews_done",
    "synced_seq",
)

_UPSERT_CASE = f"""
INSERT INTO case_api.cases AS c ({", ".join(CASE_RECORD_COLUMNS)}, updated_at)
VALUES ({", ".join(f"%({column})s" for column in CASE_RECORD_COLUMNS)}, now())
ON CONFLICT (case_id) DO UPDATE SET
    {", ".join(f"{column} = EXCLUDED.{column}" for column in CASE_RECORD_COLUMNS if column != "case_id")},
    updated_at = now()
-- A retried (older) snapshot never overwrites a newer one.
WHERE c.synced_seq <= EXCLUDED.synced_seq
"""

_UPSERT_CHILD = """
INSERT INTO case_api.children (case_id, child_id, date_of_birth, shared_care_nights,
    in_full_time_education, stopped_qualifying_on)
VALUES (%s, %s, %s, %s, %s, %s)
ON CONFLICT (case_id, child_id) DO UPDATE SET shared_care_nights = EXCLUDED.shared_care_nights,
    in_full_time_education = EXCLUDED.in_full_time_education,
    stopped_qualifying_on = EXCLUDED.stopped_qualifying_on
"""


async def upsert_case(conn: AsyncConnection, record: Mapping[str, Any]) -> None:
    """The case's row from `record` (every one of CASE_RECORD_COLUMNS); kept when the stored row
    was synced from a later timeline entry (`synced_seq`)."""
    await conn.execute(_UPSERT_CASE, {column: record[column] for column in CASE_RECORD_COLUMNS})


async def upsert_child(conn: AsyncConnection, case_id: str, child_id: str, date_of_birth: str,
                       shared_care_nights: int, in_full_time_education: bool,
                       stopped_qualifying_on: str | None) -> None:
    await conn.execute(_UPSERT_CHILD, (case_id, child_id, date_of_birth, shared_care_nights, in_full_time_education,
                                       stopped_qualifying_on))


async def append_timeline(conn: AsyncConnection, case_id: str, entries: Iterable[tuple[int, str, str, str, str]]
                          ) -> None:
    """Timeline entries ((seq, at, day, kind, text)); one already written under its seq is kept."""
    async with conn.cursor() as cursor:
        await cursor.executemany(
            "INSERT INTO case_api.timeline (case_id, seq, at, day, kind, text) "
            "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (case_id, seq) DO NOTHING",
            [(case_id, *entry) for entry in entries],
        )


async def record_notice(conn: AsyncConnection, idempotency_key: str, case_id: str, recipient_party_id: str,
                        template: str, body: Mapping[str, Any]) -> None:
    """A letter to a party, once per idempotency key."""
    await conn.execute(
        "INSERT INTO case_api.notices (idempotency_key, case_id, recipient_party_id, template, body) "
        "VALUES (%s, %s, %s, %s, %s::jsonb) ON CONFLICT (idempotency_key) DO NOTHING",
        (idempotency_key, case_id, recipient_party_id, template, _json(body)),
    )


async def record_payment_request(conn: AsyncConnection, idempotency_key: str, case_id: str, kind: str,
                                 body: Mapping[str, Any]) -> None:
    """A schedule handed to payments (kind create_schedule | stop_schedule), once per key."""
    await conn.execute(
        "INSERT INTO case_api.payment_requests (idempotency_key, case_id, kind, body) "
        "VALUES (%s, %s, %s, %s::jsonb) ON CONFLICT (idempotency_key) DO NOTHING",
        (idempotency_key, case_id, kind, _json(body)),
    )


# --- changes of circumstances (worker activities) ----------------------------------------------
# change_records is keyed by (case_id, change_no): the first write of a fact wins (COALESCE,
# ON CONFLICT DO NOTHING), so a retry or a replay never records twice.

async def open_change(conn: AsyncConnection, case_id: str, change_no: int, workflow_id: str,
                      idempotency_key: str | None, kind: str, reported_date: str, received_at: str,
                      sla_due_at: str, seconds_per_day: float) -> None:
    await conn.execute(
        "INSERT INTO case_api.change_records (case_id, change_no, workflow_id, idempotency_key, kind, status, "
        "reported_date, received_at, sla_due_at, seconds_per_day) "
        "VALUES (%s, %s, %s, %s, %s, 'open', %s, %s, %s, %s) ON CONFLICT (case_id, change_no) DO NOTHING",
        (case_id, change_no, workflow_id, idempotency_key, kind, reported_date, received_at, sla_due_at,
         seconds_per_day),
    )


async def update_change_status(conn: AsyncConnection, case_id: str, change_no: int, status: str,
                               assigned_team: str, needs_caseworker: bool, review_reason: str | None,
                               escalated_at: str | None, breached_at: str | None) -> None:
    """A change waiting for review or escalated; nothing once it is cleared. The first reason,
    escalation and breach are kept."""
    await conn.execute(
        "UPDATE case_api.change_records SET status = %s, assigned_team = %s, needs_caseworker = %s, "
        "review_reason = COALESCE(review_reason, %s), escalated_at = COALESCE(escalated_at, %s), "
        "breached_at = COALESCE(breached_at, %s), updated_at = now() "
        "WHERE case_id = %s AND change_no = %s AND status <> 'cleared'",
        (status, assigned_team, needs_caseworker, review_reason, escalated_at, breached_at, case_id, change_no),
    )


async def keep_change_instructions(conn: AsyncConnection, case_id: str, change_no: int,
                                   notice: Mapping[str, Any] | None = None,
                                   payment_change: Mapping[str, Any] | None = None) -> None:
    """The parents' notice and/or the payment schedule change a change decided on; a retry
    keeps the instruction first written."""
    await conn.execute(
        "UPDATE case_api.change_records SET notice = COALESCE(notice, %s::jsonb),"
        " payment_change = COALESCE(payment_change, %s::jsonb), updated_at = now()"
        " WHERE case_id = %s AND change_no = %s",
        (_json(notice) if notice is not None else None,
         _json(payment_change) if payment_change is not None else None, case_id, change_no),
    )


async def clear_change(conn: AsyncConnection, case_id: str, change_no: int, outcome: str, reason: str,
                       effective_date: str | None, cleared_at: str, cleared_day: str, on_time: bool,
                       weekly_liability_pence: int | None, adjustment_pence: int, reviewer: str | None,
                       review_note: str | None) -> None:
    """The change's clearance, once: a cleared change keeps its first outcome."""
    await conn.execute(
        "UPDATE case_api.change_records SET status = 'cleared', outcome = %s, reason = %s, effective_date = %s, "
        "cleared_at = %s, cleared_day = %s, on_time = %s, weekly_liability_pence = %s, adjustment_pence = %s, "
        "reviewer = %s, review_note = %s, needs_caseworker = false, updated_at = now() "
        "WHERE case_id = %s AND change_no = %s AND cleared_at IS NULL",
        (outcome, reason, effective_date, cleared_at, cleared_day, on_time, weekly_liability_pence,
         adjustment_pence, reviewer, review_note, case_id, change_no),
    )


async def record_change_arrears(conn: AsyncConnection, case_id: str, change_no: int, arrears_pence: int) -> None:
    """What a backdated change adds for payments already due; the first figure is kept."""
    await conn.execute(
        "UPDATE case_api.change_records SET arrears_pence = COALESCE(arrears_pence, %s), updated_at = now() "
        "WHERE case_id = %s AND change_no = %s", (arrears_pence, case_id, change_no))


# --- the SLA view of changes (CaseService.GetSlaReport, `cmsctl sla`, the SLA gauges) ----------
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


async def database_now(conn: AsyncConnection) -> datetime:
    """The database clock (in a transaction: the moment it began)."""
    row = await (await conn.execute("SELECT now()")).fetchone()
    assert row is not None  # SELECT without FROM returns one row
    return row[0]


async def load_sla_report(conn: AsyncConnection, now: datetime | None = None, oldest: int = 10) -> SlaReport:
    """The SLA view at `now` (the database clock by default). Run it in `read_snapshot`, so its
    two queries see the same change_records."""
    now = now or await database_now(conn)
    params = sql_parameters(now, max(oldest, 0))
    counts = await (await conn.execute(_SLA_COUNTS_SQL, params)).fetchall()
    oldest_rows = await (await conn.execute(_SLA_OLDEST_SQL, params)).fetchall()
    open_by_band = {band: items for band, items, _, _ in counts if band is not None}
    cleared = next(((items, on_time) for band, items, _, on_time in counts if band is None), (0, 0))
    return report_from_counts(open_by_band, sum(breached for _, _, breached, _ in counts), cleared[0], cleared[1],
                              [OldItem(*row) for row in oldest_rows])


# One case's changes (open first, then newest), or every case's open changes soonest due first.
_CHANGE_COLUMNS = """case_id, change_no, kind, status, assigned_team, needs_caseworker, COALESCE(review_reason, ''),
    reported_date, effective_date, received_at, sla_due_at,
    CASE WHEN status = 'cleared' THEN cleared_at > sla_due_at ELSE now() > sla_due_at END,
    COALESCE(outcome, ''), COALESCE(reason, ''), cleared_at, weekly_liability_pence, COALESCE(reviewer, ''),
    greatest(floor(extract(epoch FROM COALESCE(cleared_at, now()) - received_at) / seconds_per_day), 0)::int"""


async def load_changes(conn: AsyncConnection, case_id: str = "", waiting_for_review_only: bool = False,
                       due_before: datetime | None = None, include_cleared: bool = False,
                       limit: int = 100) -> list[tuple[Any, ...]]:
    """Changes as CaseService.ListChanges lists them (the columns of _CHANGE_COLUMNS). Without a
    case id only open changes are listed, which the open-changes index serves."""
    clauses: list[str] = []
    params: list[Any] = []
    if case_id:
        clauses.append("case_id = %s")
        params.append(case_id)
    if not (case_id and include_cleared):
        clauses.append("status <> 'cleared'")
    if waiting_for_review_only:
        clauses.append("needs_caseworker")
    if due_before is not None:
        clauses.append("status <> 'cleared' AND sla_due_at < %s")
        params.append(due_before)
    where = " AND ".join(clauses) or "true"
    order = "(status = 'cleared'), change_no DESC" if case_id else 'sla_due_at, case_id COLLATE "C", change_no'
    cursor = await conn.execute(
        f"SELECT {_CHANGE_COLUMNS} FROM case_api.change_records WHERE {where} ORDER BY {order} LIMIT %s",
        (*params, limit))
    return list(await cursor.fetchall())


async def case_reasons(conn: AsyncConnection, case_ids: Iterable[str]) -> dict[str, str]:
    """Why each case needs a caseworker, in words, as the read model keeps it."""
    cursor = await conn.execute("SELECT case_id, COALESCE(caseworker_reason, '') FROM case_api.cases"
                                " WHERE case_id = ANY(%s)", (list(case_ids),))
    return {case_id: reason for case_id, reason in await cursor.fetchall()}


async def change_reviews(conn: AsyncConnection, changes: Iterable[tuple[str, int]]) -> dict[tuple[str, int], tuple[str, str]]:
    """(kind, review reason) of each (case id, change number)."""
    pairs = list(changes)
    cursor = await conn.execute(
        "SELECT case_id, change_no, kind, COALESCE(review_reason, '') FROM case_api.change_records"
        " WHERE (case_id, change_no) IN (SELECT * FROM unnest(%s::text[], %s::int[]))",
        ([case_id for case_id, _ in pairs], [number for _, number in pairs]))
    return {(case_id, number): (kind, reason) for case_id, number, kind, reason in await cursor.fetchall()}


async def changes_awaiting_caseworker(conn: AsyncConnection) -> dict[str, int]:
    """Open changes a caseworker must act on, by assigned team."""
    rows = await (await conn.execute(
        "SELECT assigned_team, count(*) FROM case_api.change_records"
        " WHERE status <> 'cleared' AND needs_caseworker GROUP BY assigned_team")).fetchall()
    return {team: int(count) for team, count in rows}


async def seed_change_records(conn: AsyncConnection, n: int, now: datetime | None = None) -> None:
    """Inserts `n` synthetic changes (one INSERT ... SELECT generate_series) for measuring the SLA
    query: received over the year before `now` (the clock by default) on the real calendar; about
    3% still open; the rest cleared 0-34 days after receipt (so some late), none after `now`.
    Case ids `seed-<i>`."""
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
