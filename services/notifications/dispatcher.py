"""The outbox dispatcher: delivers queued notifications with retries and backoff.

Runs as a background task inside the notifications service, and standalone
(`python -m services.notifications.dispatcher`) so tests can kill it mid-send.

Exactly-once per idempotency key:
- rows are claimed with `SELECT ... FOR UPDATE SKIP LOCKED` inside one transaction, so two
  dispatchers never hold the same row, and a dispatcher that dies releases its rows with its
  transaction (they are still 'queued' and are picked up again);
- the provider gets the notification_id as its own reference and treats a repeat as already
  delivered, so a crash after the provider accepted but before the row was updated cannot
  deliver a second copy;
- transient failures back off exponentially with jitter (next_attempt_at); after
  `max_attempts` the row is 'failed' with the reason.
"""

from __future__ import annotations

import asyncio
import os
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import structlog
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from domain.notifications.render import postal_address_lines
from domain.safeguarding import AuditEntry
from services.notifications.letters import LetterError, render_letter_pdf
from services.notifications.notify import NotifyProvider, NotifySettings, Receipt
from services.notifications.providers import (
    DeliveryResult,
    FileSinkProvider,
    FlakyProvider,
    NotificationProvider,
    OutboundMessage,
    ProviderRejected,
    ProviderUnavailable,
)
from services.notifications.repository import record_receipt, write_audit

log = structlog.get_logger("notifications.dispatcher")


@runtime_checkable
class ReceiptSource(Protocol):
    """A provider whose deliveries are confirmed later (Notify), asked by polling."""

    async def receipt(self, notification_id: str) -> Receipt: ...

_CLAIM = """
SELECT o.notification_id, o.case_id, o.recipient_party_id, o.channel, o.subject, o.body, o.attempts,
       o.language, p.details, c.accessible_format
FROM notifications.outbox o
LEFT JOIN notifications.parties p ON p.case_id = o.case_id AND p.party_id = o.recipient_party_id
LEFT JOIN notifications.contact_preferences c ON c.case_id = o.case_id AND c.party_id = o.recipient_party_id
WHERE o.status = 'queued' AND o.next_attempt_at <= now()
ORDER BY o.next_attempt_at
LIMIT %s
FOR UPDATE OF o SKIP LOCKED
"""


@dataclass(frozen=True)
class DispatcherConfig:
    batch_size: int = 100
    max_attempts: int = 20
    base_backoff_seconds: float = 2.0
    max_backoff_seconds: float = 3600.0
    idle_poll_seconds: float = 0.5
    concurrency: int = 16
    receipt_poll_seconds: float = 60.0     # how often a provider with receipts is asked about 'sent' rows


@dataclass(frozen=True)
class _Outcome:
    notification_id: str
    status: str               # sent | delivered | queued (retry) | failed
    attempts: int
    failure_reason: str = ""
    retry_in_seconds: float = 0.0


class Dispatcher:
    def __init__(self, pool: AsyncConnectionPool, provider: NotificationProvider,
                 config: DispatcherConfig = DispatcherConfig(), seed: int | None = None):
        self.pool = pool
        self.provider = provider
        self.config = config
        self._random = random.Random(seed)

    def backoff_seconds(self, attempts: int) -> float:
        """Exponential backoff with 'equal jitter': half fixed, half random, capped."""
        ceiling = min(self.config.max_backoff_seconds, self.config.base_backoff_seconds * 2 ** (attempts - 1))
        return ceiling / 2 + self._random.uniform(0, ceiling / 2)

    async def run_once(self) -> int:
        """Claims and delivers one batch; returns how many rows it handled."""
        async with self.pool.connection() as conn:
            async with conn.transaction():
                async with conn.cursor(row_factory=dict_row) as cur:
                    await cur.execute(_CLAIM, (self.config.batch_size,))
                    rows = await cur.fetchall()
                if not rows:
                    return 0
                gate = asyncio.Semaphore(self.config.concurrency)
                outcomes = await asyncio.gather(*(self._deliver_one(row, gate) for row in rows))
                await self._record(conn, outcomes)
                await write_audit(conn, [entry for row in rows if (entry := _audit_of(row)) is not None])
        for outcome in outcomes:
            log.info("notification_dispatched", notification_id=outcome.notification_id,
                     status=outcome.status, attempts=outcome.attempts)
        return len(rows)

    async def poll_receipts(self, limit: int = 100) -> int:
        """Asks a provider that keeps delivery receipts (Notify) about messages still 'sent', and
        records the final ones; returns how many changed. Other providers deliver at once."""
        if not isinstance(self.provider, ReceiptSource):
            return 0
        async with self.pool.connection() as conn:
            cursor = await conn.execute("SELECT notification_id FROM notifications.outbox WHERE status = 'sent' "
                                        "ORDER BY updated_at LIMIT %s", (limit,))
            waiting = [str(row[0]) for row in await cursor.fetchall()]
        changed = 0
        for notification_id in waiting:
            try:
                receipt = await self.provider.receipt(notification_id)
            except ProviderUnavailable as error:
                log.warning("receipt_poll_failed", notification_id=notification_id, error=str(error)[:200])
                break
            if receipt.delivered is None:
                continue
            async with self.pool.connection() as conn:
                changed += await record_receipt(conn, notification_id, receipt.delivered,
                                                f"provider status {receipt.status}")
        return changed

    async def run_forever(self, stop: asyncio.Event) -> None:
        log.info("dispatcher_started")
        loop = asyncio.get_running_loop()
        next_receipts = loop.time() + self.config.receipt_poll_seconds
        while not stop.is_set():
            try:
                handled = await self.run_once()
                if loop.time() >= next_receipts:
                    next_receipts = loop.time() + self.config.receipt_poll_seconds
                    await self.poll_receipts()
            except Exception as error:  # the database may be restarting: keep going, log why
                log.warning("dispatcher_batch_failed", error=type(error).__name__)
                handled = 0
            if handled == 0:
                try:
                    await asyncio.wait_for(stop.wait(), timeout=self.config.idle_poll_seconds)
                except TimeoutError:
                    pass
        log.info("dispatcher_stopped")

    async def _deliver_one(self, row: dict[str, Any], gate: asyncio.Semaphore) -> _Outcome:
        notification_id = str(row["notification_id"])
        attempts = row["attempts"] + 1
        try:
            message = _message_of(row)
            async with gate:
                result: DeliveryResult = await self.provider.deliver(message)
            return _Outcome(notification_id, result.status, attempts)
        except ProviderRejected as error:
            return _Outcome(notification_id, "failed", attempts, f"rejected: {error}")
        except Exception as error:  # ProviderUnavailable, I/O, or a provider bug: retry, then give up
            if not isinstance(error, (ProviderUnavailable, OSError, TimeoutError)):
                log.warning("provider_error", notification_id=notification_id, error=type(error).__name__)
            # Provider messages are ours; anything else may quote a destination, so keep its type only.
            reason = (f"{type(error).__name__}: {error}" if isinstance(error, ProviderUnavailable)
                      else type(error).__name__)[:500]
            if attempts >= self.config.max_attempts:
                return _Outcome(notification_id, "failed", attempts, f"gave up after {attempts} attempts; {reason}")
            return _Outcome(notification_id, "queued", attempts, reason, self.backoff_seconds(attempts))

    async def _record(self, conn, outcomes: list[_Outcome]) -> None:
        now = datetime.now(UTC)
        async with conn.cursor() as cur:
            await cur.executemany(
                "UPDATE notifications.outbox SET status = %s, attempts = %s, failure_reason = %s, "
                "next_attempt_at = %s, updated_at = now() WHERE notification_id = %s",
                [(o.status, o.attempts, o.failure_reason, now + timedelta(seconds=o.retry_in_seconds),
                  o.notification_id) for o in outcomes],
            )


def _message_of(row: dict[str, Any]) -> OutboundMessage:
    details = row["details"] or {}
    channel = row["channel"]
    notification_id = str(row["notification_id"])
    if channel == "letter":
        address = postal_address_lines(details)
        if len(address) < 2:
            raise ProviderRejected("the recipient has no postal address")
        try:
            pdf = render_letter_pdf(address, row["subject"], row["body"], row["case_id"], datetime.now(UTC).date(),
                                    large_print=row.get("accessible_format") == "large_print",
                                    language=row.get("language") or "en")
        except LetterError as error:
            raise ProviderRejected(f"the letter cannot be printed: {error}") from None
        return OutboundMessage(notification_id, channel, row["subject"], row["body"], address, pdf)
    destination = details.get("email" if channel == "email" else "phone") or ""
    if not destination:
        raise ProviderRejected(f"the recipient has no {'email address' if channel == 'email' else 'phone number'}")
    return OutboundMessage(notification_id, channel, row["subject"], row["body"], (destination,))


def _audit_of(row: dict[str, Any]) -> AuditEntry | None:
    """Delivery reads the recipient's own contact details: audited like any other read."""
    details = row["details"] or {}
    used = {"letter": ("address", "postcode"), "email": ("email",), "sms": ("phone",)}[row["channel"]]
    read = tuple(name for name in used if details.get(name))
    if not read:
        return None
    return AuditEntry(row["case_id"], row["recipient_party_id"], "system:notifications-dispatcher",
                      f"deliver notification {row['notification_id']}", read)


def provider_from_environment(data_dir: Path) -> NotificationProvider:
    """CMS_NOTIFY_API_KEY set: GOV.UK Notify (services.notifications.notify; its template ids and
    base URL from CMS_NOTIFY_EMAIL_TEMPLATE_ID, CMS_NOTIFY_SMS_TEMPLATE_ID, CMS_NOTIFY_BASE_URL).
    Otherwise CMS_NOTIFY_PROVIDER: 'sink' (default) or 'flaky-sink'; the sink folder is
    CMS_NOTIFY_SINK_DIR or <CMS_DATA_DIR>/outbox-sink. CMS_SINK_PAUSE_AFTER_WRITE widens the
    crash window for tests."""
    api_key = os.environ.get("CMS_NOTIFY_API_KEY", "")
    if api_key:
        try:
            return NotifyProvider(NotifySettings.from_environment(api_key))
        except ValueError as error:
            raise SystemExit(f"error: {error}") from None
    folder = Path(os.environ.get("CMS_NOTIFY_SINK_DIR") or data_dir / "outbox-sink")
    sink = FileSinkProvider(folder, float(os.environ.get("CMS_SINK_PAUSE_AFTER_WRITE") or 0))
    kind = os.environ.get("CMS_NOTIFY_PROVIDER") or "sink"
    if kind == "sink":
        return sink
    if kind == "flaky-sink":
        return FlakyProvider(sink, failure_rate=float(os.environ.get("CMS_FLAKY_FAILURE_RATE") or 0.3))
    raise SystemExit(f"error: CMS_NOTIFY_PROVIDER={kind!r} is not known (use sink or flaky-sink)")


def config_from_environment() -> DispatcherConfig:
    defaults = DispatcherConfig()
    return DispatcherConfig(
        batch_size=int(os.environ.get("CMS_DISPATCH_BATCH") or defaults.batch_size),
        max_attempts=int(os.environ.get("CMS_DISPATCH_MAX_ATTEMPTS") or defaults.max_attempts),
        base_backoff_seconds=float(os.environ.get("CMS_DISPATCH_BACKOFF") or defaults.base_backoff_seconds),
        idle_poll_seconds=float(os.environ.get("CMS_DISPATCH_POLL") or defaults.idle_poll_seconds),
    )


async def _main() -> None:
    import signal

    from cms.config import load_settings
    from cms.infra.postgres import check_reachable
    from cms.log import configure_logging

    configure_logging("notifications-dispatcher")
    settings = load_settings()
    check_reachable(settings.database_url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with AsyncConnectionPool(settings.database_url, min_size=1, max_size=4, open=False) as pool:
        await pool.wait()
        dispatcher = Dispatcher(pool, provider_from_environment(settings.data_dir), config_from_environment())
        await dispatcher.run_forever(stop)


if __name__ == "__main__":
    asyncio.run(_main())
