"""Business metrics refreshed from PostgreSQL by a background task of the owning service.

prometheus_client collects synchronously, on the HTTP server's thread, while the services read
the database through async psycopg pools; so rather than querying on scrape, each service runs a
`MetricsRefresher` in its own event loop that recomputes its gauges every
CMS_BUSINESS_METRICS_SECONDS (default 60). It runs only when metrics are served (CMS_METRICS not
"off", as `make run` sets) or when a test forces it, and the service stops it in `aclose()`.

A refresh computes every value first and sets the gauges last, so a failed one (database down,
pool closed) changes nothing: operators keep the last values, see the failure counter and the
age of the last success, and the service carries on.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog
from prometheus_client import Counter, Gauge

from cms.config import positive_from_env

log = structlog.get_logger("business_metrics")

INTERVAL_ENV = "CMS_BUSINESS_METRICS_SECONDS"
# A minute: the payments figures scan the charges and credit postings of every case, which is
# cheap at demo size and seconds at national size; alerts on money and SLA need minutes, not seconds.
DEFAULT_INTERVAL_SECONDS = 60.0
STOP_GRACE_SECONDS = 5.0   # a refresh stuck on the database is cancelled after this on stop

LAST_SUCCESS = Gauge("cms_business_metrics_last_success_timestamp_seconds",
                     "Unix time of the last successful refresh of a service's business metrics "
                     "(their values are as of then)", ["source"])
FAILURES = Counter("cms_business_metrics_refresh_failures_total",
                   "Business metrics refreshes that failed (the previous values were kept)", ["source"])


def metrics_enabled() -> bool:
    """The same switch as the /metrics endpoint (services.common.server)."""
    return os.environ.get("CMS_METRICS", "off") != "off"


def refresh_interval() -> float:
    """CMS_BUSINESS_METRICS_SECONDS (default 60); a bad value stops the service starting."""
    return float(positive_from_env(INTERVAL_ENV, DEFAULT_INTERVAL_SECONDS, float))


@dataclass
class RefreshStats:
    """What the loop has done, for tests and logs (no timing involved)."""
    refreshes: int = 0
    failures: int = 0
    last_error: str = ""


@dataclass
class MetricsRefresher:
    """A running refresh loop; `aclose()` stops it."""
    source: str
    task: asyncio.Task
    stop_event: asyncio.Event
    stats: RefreshStats = field(default_factory=RefreshStats)

    async def aclose(self) -> None:
        self.stop_event.set()
        done, _ = await asyncio.wait({self.task}, timeout=STOP_GRACE_SECONDS)
        if not done:
            self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


async def refresh_once(source: str, refresh: Callable[[], Awaitable[None]], stats: RefreshStats) -> bool:
    """One refresh; a failure is logged and counted, never raised."""
    try:
        await refresh()
    except Exception as error:
        stats.failures += 1
        # The type and the driver's message only: the queries are aggregates, no row is quoted.
        stats.last_error = f"{type(error).__name__}: {error}"[:300]
        FAILURES.labels(source).inc()
        log.warning("business_metrics_refresh_failed", source=source, error=stats.last_error)
        return False
    stats.refreshes += 1
    LAST_SUCCESS.labels(source).set(time.time())
    return True


async def run_refresher(source: str, refresh: Callable[[], Awaitable[None]], interval: float,
                        stop_event: asyncio.Event, stats: RefreshStats) -> None:
    """Refreshes now, then every `interval` seconds until `stop_event` is set."""
    while not stop_event.is_set():
        await refresh_once(source, refresh, stats)
        try:
            await asyncio.wait_for(stop_event.wait(), timeout=interval)
        except TimeoutError:
            pass


_running: set[asyncio.Task] = set()   # the event loop holds tasks weakly


def start_refresher(source: str, refresh: Callable[[], Awaitable[None]], force: bool = False,
                    interval: float | None = None) -> MetricsRefresher | None:
    """Starts the loop in the running event loop when metrics are on (or `force`); None otherwise."""
    if not (force or metrics_enabled()):
        return None
    interval = interval if interval is not None else refresh_interval()
    stop_event, stats = asyncio.Event(), RefreshStats()
    task = asyncio.create_task(run_refresher(source, refresh, interval, stop_event, stats),
                               name=f"business-metrics-{source}")
    _running.add(task)
    task.add_done_callback(_running.discard)
    log.info("business_metrics_started", source=source, interval_seconds=interval)
    return MetricsRefresher(source, task, stop_event, stats)
