"""The changes-of-circumstances SLA gauges (services.case_api.sla_metrics): exact values from
known change_records, kept when a refresh fails, refreshed by a loop that survives failures and
stops with the case API. A database of its own (scratch_case_db), since the gauges count the table."""

from __future__ import annotations

import asyncio
import math
from dataclasses import replace
from datetime import timedelta

import pytest
from prometheus_client import REGISTRY
from psycopg_pool import AsyncConnectionPool

from cms.config import load_settings
from cms.infra.processes import free_port
from domain.sla import AGE_BANDS
from services.case_api import service as case_service
from services.case_api.sla_metrics import SOURCE, SlaMetrics
from services.common.refresher import RefreshStats, refresh_once, start_refresher
from services.common.server import serve_in_background

pytestmark = pytest.mark.asyncio(loop_scope="session")

DAY = 86_400.0
HOUR_DAY = 3_600.0   # a fast calendar: a case day is an hour

# (case, open?, age in case days at receipt, cleared that many case days ago, team, needs caseworker,
# seconds per day). Ages are half a day off any boundary, so the moments between seeding and
# refreshing cannot move a row across one.
ROWS = [
    ("m-a", 2.5, None, "changes", False, DAY),            # open, 0-7
    ("m-b", 10.5, None, "changes", True, DAY),            # open, 8-14, waiting for a caseworker
    ("m-c", 30.5, None, "changes-senior", True, DAY),     # open, 28+, breached
    ("m-d", 50.5, None, "changes-senior", True, HOUR_DAY),  # open, 28+ on a fast calendar: the oldest
    ("m-e", 20.5, 5.5, "changes", False, DAY),            # cleared on time (15 days), in the window
    ("m-f", 40.5, 2.5, "changes", False, DAY),            # cleared late (38 days), in the window
    ("m-g", 100.5, 60.5, "changes", True, DAY),           # cleared before the window: not counted
    ("m-h", 10.5, 1.5, "changes-senior", False, DAY),     # cleared on time (9 days), in the window
]


def value(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def bands() -> dict[str, float | None]:
    return {label: value("cms_changes_open", band=label) for label, _, _ in AGE_BANDS}


async def seed(pool: AsyncConnectionPool, rows=ROWS) -> None:
    async with pool.connection() as conn:
        await conn.execute("TRUNCATE case_api.change_records")
        clock = await (await conn.execute("SELECT now()")).fetchone()
        assert clock is not None
        now = clock[0]
        for case_id, age, cleared_ago, team, needs, day in rows:
            received = now - timedelta(seconds=age * day)
            cleared = None if cleared_ago is None else now - timedelta(seconds=cleared_ago * day)
            await conn.execute(
                "INSERT INTO case_api.change_records (case_id, change_no, workflow_id, kind, status, assigned_team,"
                " needs_caseworker, reported_date, received_at, sla_due_at, seconds_per_day, cleared_at)"
                " VALUES (%s, 1, %s, 'address', %s, %s, %s, %s, %s, %s, %s, %s)",
                (case_id, f"case-{case_id}/change-1", "open" if cleared is None else "cleared", team, needs,
                 received.date(), received, received + timedelta(seconds=28 * day), day, cleared))


async def test_one_refresh_sets_every_gauge_from_change_records(scratch_case_db) -> None:
    await seed(scratch_case_db)
    await SlaMetrics(scratch_case_db).refresh()
    assert bands() == {"0-7": 1, "8-14": 1, "15-21": 0, "22-28": 0, "28+": 2}
    assert value("cms_changes_open_breached") == 2
    assert value("cms_changes_cleared_last_4_weeks") == 3
    assert value("cms_changes_cleared_on_time_last_4_weeks") == 2
    assert value("cms_changes_cleared_on_time_ratio") == pytest.approx(2 / 3)
    assert value("cms_changes_oldest_open_age_days") == 50
    # Open and waiting only: m-g waited too, but it is cleared.
    assert value("cms_changes_awaiting_caseworker", team="changes") == 1
    assert value("cms_changes_awaiting_caseworker", team="changes-senior") == 2


async def test_an_empty_table_reads_zero_and_no_share_and_emptied_teams_show_zero(scratch_case_db) -> None:
    metrics = SlaMetrics(scratch_case_db)
    await seed(scratch_case_db)
    await metrics.refresh()
    await seed(scratch_case_db, rows=[])
    await metrics.refresh()
    assert set(bands().values()) == {0}
    assert value("cms_changes_open_breached") == 0 and value("cms_changes_oldest_open_age_days") == 0
    ratio = value("cms_changes_cleared_on_time_ratio")
    assert ratio is not None and math.isnan(ratio)   # nothing cleared: no share, not 0%
    assert value("cms_changes_awaiting_caseworker", team="changes") == 0
    assert value("cms_changes_awaiting_caseworker", team="changes-senior") == 0


async def test_a_failed_refresh_keeps_the_last_values_and_counts_the_failure(scratch_case_db) -> None:
    await seed(scratch_case_db)
    await SlaMetrics(scratch_case_db).refresh()
    failures = value("cms_business_metrics_refresh_failures_total", source=SOURCE) or 0
    closed = AsyncConnectionPool(scratch_case_db.conninfo, open=False)   # never opened: every call fails
    stats = RefreshStats()
    assert await refresh_once(SOURCE, SlaMetrics(closed).refresh, stats) is False
    assert (stats.refreshes, stats.failures) == (0, 1) and "PoolClosed" in stats.last_error
    assert value("cms_business_metrics_refresh_failures_total", source=SOURCE) == failures + 1
    assert bands() == {"0-7": 1, "8-14": 1, "15-21": 0, "22-28": 0, "28+": 2}
    assert value("cms_changes_oldest_open_age_days") == 50


async def _wait_for(condition, what: str) -> None:
    for _ in range(400):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


async def test_the_loop_survives_a_failed_refresh_and_refreshes_again(scratch_case_db) -> None:
    await seed(scratch_case_db, rows=[])
    await SlaMetrics(scratch_case_db).refresh()
    await seed(scratch_case_db)
    broken = SlaMetrics(AsyncConnectionPool(scratch_case_db.conninfo, open=False))
    working = SlaMetrics(scratch_case_db)
    attempts = 0

    async def first_fails() -> None:
        nonlocal attempts
        attempts += 1
        await (broken if attempts == 1 else working).refresh()

    refresher = start_refresher(SOURCE, first_fails, force=True, interval=0.05)
    assert refresher is not None, "forced on"
    try:
        await _wait_for(lambda: refresher.stats.refreshes >= 1, "a refresh after the failure")
        assert refresher.stats.failures == 1 and not refresher.task.done()
        assert value("cms_changes_oldest_open_age_days") == 50
    finally:
        await refresher.aclose()
    assert refresher.task.done() and refresher.task.exception() is None


async def test_off_unless_metrics_are_on_or_forced(scratch_case_db, monkeypatch) -> None:
    monkeypatch.setenv("CMS_METRICS", "off")
    assert start_refresher(SOURCE, SlaMetrics(scratch_case_db).refresh) is None
    monkeypatch.setenv("CMS_METRICS", "on")
    monkeypatch.setenv("CMS_BUSINESS_METRICS_SECONDS", "nonsense")
    with pytest.raises(ValueError, match="CMS_BUSINESS_METRICS_SECONDS"):
        start_refresher(SOURCE, SlaMetrics(scratch_case_db).refresh)


async def test_the_case_api_refreshes_the_gauges_and_stops_the_loop_when_it_stops(scratch_case_db) -> None:
    await seed(scratch_case_db, rows=[])
    await SlaMetrics(scratch_case_db).refresh()
    await seed(scratch_case_db)
    services = []

    async def register(server, pool, settings):
        services.append(await case_service.register(server, pool, settings, business_metrics=True))
        return services[-1]

    settings = load_settings()
    settings = replace(settings, database_url=scratch_case_db.conninfo,
                       ports={**settings.ports, "case_api": free_port()})
    running = await serve_in_background("case_api", register, settings)
    refresher = services[0].sla_metrics
    assert refresher is not None, "business metrics are on"
    try:
        await _wait_for(lambda: refresher.stats.refreshes >= 1, "the service's first refresh")
        assert value("cms_changes_oldest_open_age_days") == 50
        assert not refresher.task.done()
    finally:
        await running.stop()
    assert refresher.task.done() and not refresher.task.cancelled() and refresher.task.exception() is None
    assert refresher.stop_event.is_set()


async def test_the_case_api_starts_no_loop_when_metrics_are_off(scratch_case_db, monkeypatch) -> None:
    monkeypatch.setenv("CMS_METRICS", "off")
    service = case_service.CaseService(scratch_case_db, load_settings())
    assert service.sla_metrics is None
    await service.aclose()

