"""Prometheus gauges of the 28-day target for changes of circumstances (docs/rules.md section 9).

The numbers are the SLA view `cmsctl sla` and CaseService.GetSlaReport show
(services/case_api/repository.py, from domain.sla's rules), refreshed from PostgreSQL by a
background task of the case API (services.common.refresher). Labels are age bands and teams
only: never a case or party id.
"""

from __future__ import annotations

import math

from prometheus_client import Gauge
from psycopg_pool import AsyncConnectionPool

from domain.sla import AGE_BANDS, SLA_DAYS, WINDOW_DAYS, SlaReport
from services.case_api import repository as case_api
from services.common.refresher import MetricsRefresher, start_refresher

SOURCE = "case_api_sla"

OPEN_BY_BAND = Gauge("cms_changes_open", "Open changes of circumstances by age band, in whole case-calendar days "
                     f"since received (past {SLA_DAYS} days: breached)", ["band"])
OPEN_BREACHED = Gauge("cms_changes_open_breached",
                      f"Open changes of circumstances past their {SLA_DAYS}-day due time (breached, still open)")
CLEARED_RECENTLY = Gauge("cms_changes_cleared_last_4_weeks",
                         f"Changes of circumstances cleared in the last {WINDOW_DAYS} case-calendar days")
CLEARED_ON_TIME_RECENTLY = Gauge("cms_changes_cleared_on_time_last_4_weeks",
                                 f"Changes of circumstances cleared within {SLA_DAYS} days, of those cleared in the "
                                 f"last {WINDOW_DAYS} case-calendar days")
ON_TIME_RATIO = Gauge("cms_changes_cleared_on_time_ratio",
                      f"Share (0..1) of the last {WINDOW_DAYS} days' clearances that were within {SLA_DAYS} days; "
                      "NaN when nothing cleared")
OLDEST_OPEN_DAYS = Gauge("cms_changes_oldest_open_age_days",
                         "Age in whole case-calendar days of the oldest open change of circumstances (0: none open)")
AWAITING_CASEWORKER = Gauge("cms_changes_awaiting_caseworker",
                            "Open changes of circumstances waiting for a caseworker, by assigned team", ["team"])


class SlaMetrics:
    """Computes the gauges from PostgreSQL; `refresh()` sets them all or none."""

    def __init__(self, pool: AsyncConnectionPool):
        self._pool = pool
        self._teams_seen: set[str] = set()

    async def refresh(self) -> None:
        async with case_api.read_snapshot(self._pool) as conn:
            report = await case_api.load_sla_report(conn, oldest=1)
            # Open changes a caseworker must act on, per team (a handful of names: a small label set).
            awaiting = await case_api.changes_awaiting_caseworker(conn)
        self._publish(report, awaiting)

    def _publish(self, report: SlaReport, awaiting: dict[str, int]) -> None:
        for label, _, _ in AGE_BANDS:
            OPEN_BY_BAND.labels(label).set(report.open_by_band[label])
        OPEN_BREACHED.set(report.breaches_open)
        CLEARED_RECENTLY.set(report.cleared_last_4_weeks)
        CLEARED_ON_TIME_RECENTLY.set(report.cleared_on_time_last_4_weeks)
        share = report.on_time_share
        ON_TIME_RATIO.set(math.nan if share is None else float(share))
        OLDEST_OPEN_DAYS.set(report.oldest[0].age_days if report.oldest else 0)
        # A team whose queue emptied shows 0 rather than vanishing (an alert on it then resolves).
        self._teams_seen |= awaiting.keys()
        for team in self._teams_seen:
            AWAITING_CASEWORKER.labels(team).set(awaiting.get(team, 0))


def start_sla_metrics(pool: AsyncConnectionPool, force: bool = False,
                      interval: float | None = None) -> MetricsRefresher | None:
    """Starts refreshing the SLA gauges when metrics are on (or `force`); None otherwise."""
    return start_refresher(SOURCE, SlaMetrics(pool).refresh, force=force, interval=interval)
