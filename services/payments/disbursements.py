"""Disbursement on arrival: money that reaches a case is passed on within 2 working days.

The collection cycle only disburses after a period's due date and grace, so a payment arriving
between due dates would wait up to a whole period. Instead every ledger transaction that puts
money in a case's hands leaves a row in `disbursement_outbox`, written by a database trigger in
the same transaction as the postings (migration 0003): a payment that commits always has its row.
This dispatcher turns each row into a DisbursementWorkflow (workflows/payments.py), ID
`case-<case_id>/disbursement-<bank_reference>` on the payments task queue:

  claim pending rows (FOR UPDATE SKIP LOCKED, so several service replicas share the queue)
  -> start the workflows (duplicate workflow IDs rejected)
  -> stamp started_at, in the same database transaction as the claim.

A crash between starting and stamping leaves the row pending; the next pass tries to start the
same workflow ID again, Temporal answers "already started", and the row is stamped: one workflow,
one disbursement. Should a second workflow ever run regardless, the ledger still pays once: the
disbursement takes the case lock and moves only what is payable, under an idempotency key.

Off unless CMS_PAYMENTS_DISBURSE_ON_ARRIVAL=1 (make run sets it), so a payments service without
Temporal (most tests) behaves as before.

Retention: once a row's workflow has started, the row is only a record of it. The loop deletes rows
started more than CMS_DISBURSEMENT_OUTBOX_RETENTION_DAYS ago (default 35), at most once per
PURGE_INTERVAL_SECONDS, in small batches of short transactions; a pending row is never deleted.
A deleted row cannot come back: it was written when its ledger transaction was inserted, and
idempotency keys stop that transaction being inserted again.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import structlog
from psycopg_pool import AsyncConnectionPool
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from cms.config import TASK_QUEUE_PAYMENTS, Settings, positive_from_env
from cms.temporal import connect
from services.payments.ledger import outbox
from services.payments.ledger.outbox import PendingDisbursement
from workflows.payments import DisbursementInput, DisbursementWorkflow

log = structlog.get_logger("payments.disbursements")

ENABLE_ENV = "CMS_PAYMENTS_DISBURSE_ON_ARRIVAL"
RETENTION_ENV = "CMS_DISBURSEMENT_OUTBOX_RETENTION_DAYS"
DEFAULT_RETENTION_DAYS = 35
POLL_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0
BATCH_SIZE = 50
PURGE_INTERVAL_SECONDS = 3600.0
PURGE_BATCH_SIZE = 500
PURGE_MAX_BATCHES = 20     # per purge: a large backlog is worked off over several intervals
_START_TIMEOUT = timedelta(seconds=10)
_UK = ZoneInfo("Europe/London")
_REAL_DAY_SECONDS = 86400.0


def disbursement_workflow_id(case_id: str, bank_reference: str) -> str:
    return f"case-{case_id}/disbursement-{bank_reference}"


def case_today(row: PendingDisbursement, now: datetime, seconds_per_day: float) -> date:
    """The case date at `now`. On the real calendar it is today in the UK (never before the money
    arrived: a bank may report a payment on its value date's evening). On a fast demo or test
    calendar, the money's value date plus the case days since the row was written."""
    if seconds_per_day >= _REAL_DAY_SECONDS:
        return max(row.received_on, now.astimezone(_UK).date())
    elapsed = max((now - row.created_at).total_seconds(), 0.0)
    return row.received_on + timedelta(days=int(elapsed // seconds_per_day))


def disbursement_input(row: PendingDisbursement, now: datetime, seconds_per_day: float) -> DisbursementInput:
    return DisbursementInput(case_id=row.case_id, received_on=row.received_on.isoformat(),
                             bank_reference=row.bank_reference,
                             today=case_today(row, now, seconds_per_day).isoformat(),
                             seconds_per_day=seconds_per_day)


class WorkflowStarter(Protocol):
    """What the dispatcher needs of a Temporal client: starting a workflow (a test's stand-in that
    dies mid-start provides just this)."""

    async def start_workflow(self, *args: Any, **kwargs: Any) -> Any: ...


async def _start(client: WorkflowStarter, row: PendingDisbursement, settings: Settings, now: datetime) -> str:
    workflow_id = disbursement_workflow_id(row.case_id, row.bank_reference)
    try:
        # REJECT_DUPLICATE: even a finished disbursement of this money is never started again.
        await client.start_workflow(DisbursementWorkflow.run, disbursement_input(row, now, settings.seconds_per_day),
                                    id=workflow_id, task_queue=TASK_QUEUE_PAYMENTS,
                                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                                    rpc_timeout=_START_TIMEOUT)
        log.info("disbursement_started", case_id=row.case_id, workflow_id=workflow_id)
    except WorkflowAlreadyStartedError:
        # Started by an earlier pass that died before stamping the row: that one is the disbursement.
        log.info("disbursement_already_started", case_id=row.case_id, workflow_id=workflow_id)
    return workflow_id


async def dispatch_pending(pool: AsyncConnectionPool, client: WorkflowStarter, settings: Settings,
                           limit: int = BATCH_SIZE) -> int:
    """Starts a DisbursementWorkflow for each pending outbox row (up to `limit`); returns how many
    rows it stamped as started. Rows whose start failed stay pending and the first such error is
    raised after the others are stamped, so the caller can back off."""
    async with pool.connection() as conn, conn.transaction():
        rows = await outbox.claim_pending(conn, limit)
        if not rows:
            return 0
        now = datetime.now(UTC)
        outcomes = await asyncio.gather(*(_start(client, row, settings, now) for row in rows),
                                        return_exceptions=True)
        started = [(row.outbox_id, outcome) for row, outcome in zip(rows, outcomes) if isinstance(outcome, str)]
        if started:
            await outbox.mark_started(conn, started)
    failures = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
    if failures:
        log.warning("disbursement_start_failed", pending=len(failures), error=str(failures[0]))
        raise failures[0]
    return len(started)


@dataclass(frozen=True)
class Retention:
    """How long started rows are kept, and how the loop purges older ones."""
    days: int = DEFAULT_RETENTION_DAYS
    interval_seconds: float = PURGE_INTERVAL_SECONDS
    batch_size: int = PURGE_BATCH_SIZE
    max_batches: int = PURGE_MAX_BATCHES


async def purge_dispatched(pool: AsyncConnectionPool, retention: Retention) -> int:
    """Deletes rows whose workflow started more than `retention.days` ago, one batch per
    transaction (so no lock is held for long), up to `retention.max_batches` batches; returns how
    many rows it deleted. Rows not yet started are never deleted, however old."""
    purged = 0
    for _ in range(retention.max_batches):
        async with pool.connection() as conn, conn.transaction():
            deleted = await outbox.purge_started(conn, timedelta(days=retention.days), retention.batch_size)
        purged += deleted
        if deleted < retention.batch_size:
            break
    if purged:
        log.info("disbursement_outbox_purged", rows=purged, retention_days=retention.days)
    return purged


@dataclass
class DispatcherStats:
    """What the loop has done, for operators' logs and for tests (no timing involved)."""
    dispatched: int = 0
    purged: int = 0
    failed_passes: int = 0
    connected: bool = False
    last_error: str = ""


async def run_dispatcher(pool: AsyncConnectionPool, settings: Settings, stop_event: asyncio.Event,
                         stats: DispatcherStats | None = None, poll_seconds: float = POLL_SECONDS,
                         max_backoff_seconds: float = MAX_BACKOFF_SECONDS, retention: Retention = Retention()) -> None:
    """Dispatches pending disbursements until `stop_event` is set or the pool is closed. While
    Temporal (or the database) is unreachable the rows wait in the outbox and the loop backs off,
    doubling its pause up to `max_backoff_seconds`. Purges started rows past `retention` on its
    first pass and then every `retention.interval_seconds`."""
    stats = stats if stats is not None else DispatcherStats()
    client: Client | None = None
    backoff = poll_seconds
    loop = asyncio.get_running_loop()
    next_purge = loop.time()
    while not stop_event.is_set() and not pool.closed:
        wait = poll_seconds
        if loop.time() >= next_purge:
            next_purge = loop.time() + retention.interval_seconds
            await _purge(pool, retention, stats)
        try:
            if client is None:
                client = await connect(settings)
                stats.connected = True
                log.info("disbursement_dispatcher_connected", temporal=settings.temporal_address)
            while (count := await dispatch_pending(pool, client, settings)) > 0:
                stats.dispatched += count
            backoff = poll_seconds
        except Exception as error:
            stats.failed_passes += 1
            stats.last_error = str(error)
            log.warning("disbursement_dispatch_paused", error=str(error), retry_in_seconds=backoff)
            wait, backoff = backoff, min(backoff * 2, max_backoff_seconds)
        try:
            await asyncio.wait_for(stop_event.wait(), timeout=wait)
        except TimeoutError:
            pass


async def _purge(pool: AsyncConnectionPool, retention: Retention, stats: DispatcherStats) -> None:
    # Housekeeping: a failure waits for the next interval and never holds up dispatching.
    try:
        stats.purged += await purge_dispatched(pool, retention)
    except Exception as error:
        log.warning("disbursement_outbox_purge_failed", error=str(error))


@dataclass
class Dispatcher:
    """A running dispatcher task; `aclose()` stops it (it also stops by itself when the pool closes)."""
    task: asyncio.Task
    stop_event: asyncio.Event
    stats: DispatcherStats = field(default_factory=DispatcherStats)

    async def aclose(self) -> None:
        self.stop_event.set()
        await asyncio.gather(self.task, return_exceptions=True)


_running: set[asyncio.Task] = set()   # the event loop holds tasks weakly


def enabled() -> bool:
    return os.environ.get(ENABLE_ENV, "") == "1"


def retention_days() -> int:
    """CMS_DISBURSEMENT_OUTBOX_RETENTION_DAYS (default 35); a bad value stops the service starting."""
    return int(positive_from_env(RETENTION_ENV, DEFAULT_RETENTION_DAYS, int))


def start_dispatcher(pool: AsyncConnectionPool, settings: Settings, force: bool = False) -> Dispatcher | None:
    """Starts the dispatcher in the running event loop, when CMS_PAYMENTS_DISBURSE_ON_ARRIVAL=1 (or
    `force`); None otherwise. Called from the payments service's `register()`."""
    if not (force or enabled()):
        return None
    stop_event, stats = asyncio.Event(), DispatcherStats()
    retention = Retention(days=retention_days())
    task = asyncio.create_task(run_dispatcher(pool, settings, stop_event, stats, retention=retention),
                               name="disbursement-dispatcher")
    _running.add(task)
    task.add_done_callback(_running.discard)
    log.info("disbursement_dispatcher_started", task_queue=TASK_QUEUE_PAYMENTS, outbox_retention_days=retention.days)
    return Dispatcher(task, stop_event, stats)
