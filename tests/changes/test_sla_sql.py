"""The SLA view in SQL (services.case_api.repository.load_sla_report) equals the in-memory reference
(domain.sla.sla_report) on any set of change_records rows: ages on and either side of every band
edge, the 28-day due time and the 4-week window, on real and fast calendars, ties in age."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.sla import AGE_BANDS, SLA_DAYS, WINDOW_DAYS, SlaItem, SlaReport, band_starts, sla_report
from services.case_api import repository as case_api

pytestmark = pytest.mark.asyncio(loop_scope="session")

NOW = datetime(2025, 6, 30, 12, 0, tzinfo=UTC)
# Real and fast calendars whose day is a whole number of microseconds (as every calendar in use is
# to the microsecond the database keeps), so both sides see the same instants.
CALENDARS = (86_400.0, 3_600.0, 60.0, 2.0, 1.0, 0.5, 0.25)


@st.composite
def offsets(draw, day_us: int) -> int:
    """Microseconds: a whole number of case days, then exactly on, just either side of, or
    anywhere within the day."""
    edges = sorted({first for first in band_starts()} | {first - 1 for first in band_starts()} | {SLA_DAYS})
    days = draw(st.one_of(st.sampled_from(edges), st.integers(-1, 40)))
    jitter = draw(st.one_of(st.sampled_from([-1, 0, 1]), st.integers(0, day_us - 1)))
    return days * day_us + jitter


def clearance_times(received: datetime, day_us: int) -> st.SearchStrategy[datetime | None]:
    """Cleared some time after receipt (edges of the due time), or some time before now (edges of
    the 4-week window), or not yet."""
    return st.one_of(
        st.none(),
        offsets(day_us).map(lambda us: received + timedelta(microseconds=abs(us))),
        offsets(day_us).map(lambda us: max(received, NOW - timedelta(microseconds=us))),
        st.sampled_from([-1, 0, 1]).map(lambda us: NOW - timedelta(microseconds=WINDOW_DAYS * day_us + us)))


@st.composite
def items(draw) -> list[SlaItem]:
    keys = draw(st.lists(st.tuples(st.text("aAbB_-1", min_size=1, max_size=3), st.integers(1, 3)),
                         max_size=25, unique=True))
    drawn = []
    for case_id, change_no in keys:
        seconds_per_day = draw(st.sampled_from(CALENDARS))
        day_us = int(seconds_per_day * 1_000_000)
        received = NOW - timedelta(microseconds=draw(offsets(day_us)))
        cleared = draw(clearance_times(received, day_us))
        drawn.append(SlaItem(case_id, change_no, draw(st.sampled_from(["address", "shared_care_nights"])),
                             received, seconds_per_day, draw(st.sampled_from(["changes", "changes-senior"])),
                             draw(st.booleans()), cleared))
    return drawn


async def replace_rows(pool, rows: list[SlaItem]) -> None:
    async with pool.connection() as conn:
        await conn.execute("TRUNCATE case_api.change_records")
        async with conn.cursor() as cursor:
            await cursor.executemany(
                "INSERT INTO case_api.change_records (case_id, change_no, workflow_id, kind, status, assigned_team, "
                "needs_caseworker, reported_date, received_at, sla_due_at, seconds_per_day, cleared_at) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [(i.case_id, i.change_no, f"case-{i.case_id}/change-{i.change_no}", i.kind,
                  "open" if i.is_open else "cleared", i.assigned_team, i.needs_caseworker, i.received_at.date(),
                  i.received_at, i.due_at, i.seconds_per_day, i.cleared_at) for i in rows])


async def load_sla_report(pool, now: datetime, oldest: int = 10) -> SlaReport:
    async with case_api.read_snapshot(pool) as conn:
        return await case_api.load_sla_report(conn, now, oldest=oldest)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(rows=items(), oldest=st.integers(0, 8))
async def test_the_sql_report_equals_the_reference(scratch_case_db, rows, oldest) -> None:
    await replace_rows(scratch_case_db, rows)
    assert await load_sla_report(scratch_case_db, NOW, oldest=oldest) == sla_report(rows, NOW, oldest=oldest)


async def test_day_28_is_on_time_and_a_microsecond_later_is_a_breach(scratch_case_db) -> None:
    """Named edges, so a wrong comparison shows up by name and not only as a shrunk example."""
    day = timedelta(days=1)
    due = SLA_DAYS * day
    rows = [SlaItem("open-at-due", 1, "address", NOW - due, 86_400.0),
            SlaItem("open-past-due", 1, "address", NOW - due - timedelta(microseconds=1), 86_400.0),
            SlaItem("cleared-at-due", 1, "address", NOW - 30 * day, 86_400.0, cleared_at=NOW - 30 * day + due),
            SlaItem("cleared-late", 1, "address", NOW - 40 * day, 86_400.0,
                    cleared_at=NOW - 40 * day + due + timedelta(microseconds=1)),
            SlaItem("cleared-before-window", 1, "address", NOW - 60 * day, 86_400.0,
                    cleared_at=NOW - due - timedelta(microseconds=1))]
    await replace_rows(scratch_case_db, rows)
    report = await load_sla_report(scratch_case_db, NOW)
    assert report.open_by_band == {"0-7": 0, "8-14": 0, "15-21": 0, "22-28": 2, "28+": 0}
    assert (report.breaches_open, report.cleared_last_4_weeks, report.cleared_on_time_last_4_weeks,
            report.breaches_last_4_weeks) == (1, 2, 1, 1)
    assert [item.case_id for item in report.oldest] == ["open-past-due", "open-at-due"]
    assert report == sla_report(rows, NOW)


async def test_the_table_refuses_rows_the_query_could_misread(scratch_case_db) -> None:
    insert = ("INSERT INTO case_api.change_records (case_id, change_no, workflow_id, kind, status, reported_date, "
              "received_at, sla_due_at, seconds_per_day, cleared_at) VALUES "
              "('bad', 1, 'case-bad/change-1', 'address', %s, '2025-06-01', %s, %s, %s, %s)")
    for status, seconds_per_day, cleared in (("cleared", 86_400.0, None), ("open", 86_400.0, NOW),
                                             ("open", 172_800.0, None)):
        async with scratch_case_db.connection() as conn:
            with pytest.raises(psycopg.errors.CheckViolation):
                await conn.execute(insert, (status, NOW, NOW, seconds_per_day, cleared))


async def test_the_bands_tile_the_days() -> None:
    assert band_starts() == [first for _, first, _ in AGE_BANDS] == [0, 8, 15, 22, 29]


async def test_seeded_rows_give_a_plausible_report(scratch_case_db) -> None:
    async with scratch_case_db.connection() as conn:
        await conn.execute("TRUNCATE case_api.change_records")
    async with scratch_case_db.connection() as conn:
        await case_api.seed_change_records(conn, 2_000, NOW)
    report = await load_sla_report(scratch_case_db, NOW)
    async with scratch_case_db.connection() as conn:
        rows = await (await conn.execute(
            "SELECT case_id, change_no, kind, received_at, seconds_per_day, assigned_team, needs_caseworker, "
            "cleared_at FROM case_api.change_records")).fetchall()
    assert len(rows) == 2_000 and report.open_total == 60  # 3 in every 100
    assert 0 < report.cleared_on_time_last_4_weeks < report.cleared_last_4_weeks
    assert report == sla_report([SlaItem(*row) for row in rows], NOW)
