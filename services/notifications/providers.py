"""Delivery providers behind one interface, so a real one (e.g. a government notify API) can be
added without touching callers or the dispatcher.

The contract that makes outbox delivery exactly-once: `deliver` receives the notification_id as
the provider's own reference and must treat a second delivery with the same reference as
already done (returning success without delivering again). That is how a notify API's
`reference` field works, and what `FileSinkProvider` does with one file per notification.
"""

from __future__ import annotations

import asyncio
import os
import random
import tempfile
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol


class ProviderUnavailable(Exception):
    """A transient failure (outage, timeout, rate limit): the dispatcher retries later."""


class ProviderRejected(Exception):
    """A permanent failure (e.g. invalid destination): retrying cannot help."""


@dataclass(frozen=True)
class OutboundMessage:
    notification_id: str            # also the provider reference (idempotency key)
    channel: str                    # email | sms | letter
    subject: str
    body: str
    destination: tuple[str, ...]    # email: (address,); sms: (number,); letter: address lines
    letter_pdf: bytes = b""         # the letter as a PDF (letters only)


@dataclass(frozen=True)
class DeliveryResult:
    status: str                     # "sent" (accepted, receipt to follow) or "delivered"
    already_delivered: bool = False


class NotificationProvider(Protocol):
    async def deliver(self, message: OutboundMessage) -> DeliveryResult: ...


_EXTENSIONS = {"email": "eml", "sms": "sms.txt", "letter": "pdf"}


class FileSinkProvider:
    """Dev and test provider: one file `<notification_id>.<ext>` per delivered message in `folder`.

    The file is created atomically and only if absent (a hard link of a finished temporary file),
    so an existing file means "already delivered". `deliveries.log` records each call as `new` or
    `duplicate`, which lets tests prove nothing was delivered twice even across crashes.
    `pause_after_write` (seconds) widens the crash window between accepting and the caller
    recording it, for the kill-the-dispatcher test.
    """

    def __init__(self, folder: Path, pause_after_write: float = 0.0):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.pause_after_write = pause_after_write

    def path_for(self, notification_id: str, channel: str) -> Path:
        return self.folder / f"{notification_id}.{_EXTENSIONS[channel]}"

    async def deliver(self, message: OutboundMessage) -> DeliveryResult:
        if not message.destination:
            raise ProviderRejected("no destination")
        target = self.path_for(message.notification_id, message.channel)
        created = self._write_once(target, _content(message))
        self._log(message.notification_id, "new" if created else "duplicate")
        if self.pause_after_write:
            await asyncio.sleep(self.pause_after_write)
        return DeliveryResult(status="delivered", already_delivered=not created)

    def _write_once(self, target: Path, content: bytes) -> bool:
        if target.exists():
            return False
        handle, temporary = tempfile.mkstemp(dir=self.folder, prefix=".partial-")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(content)
                out.flush()
                os.fsync(out.fileno())
            try:
                os.link(temporary, target)  # fails if the target exists: create-if-absent, atomically
            except FileExistsError:
                return False
            return True
        finally:
            os.unlink(temporary)

    def _log(self, notification_id: str, outcome: str) -> None:
        with open(self.folder / "deliveries.log", "a", encoding="utf-8") as log:
            log.write(f"{notification_id} {outcome}\n")


def _content(message: OutboundMessage) -> bytes:
    if message.channel == "letter":
        return message.letter_pdf
    if message.channel == "email":
        email = EmailMessage()
        email["To"] = message.destination[0]
        email["From"] = "noreply@child-maintenance.service.gov.uk"
        email["Subject"] = message.subject
        email["X-Reference"] = message.notification_id
        email.set_content(message.body)
        return bytes(email)
    return f"To: {message.destination[0]}\n\n{message.body}\n".encode()


class FlakyProvider:
    """Test provider: fails transiently (an outage) for the first `fail_first` calls and then with
    probability `failure_rate`, delegating successes to `inner`."""

    def __init__(self, inner: NotificationProvider, fail_first: int = 0, failure_rate: float = 0.0,
                 seed: int = 1):
        self.inner = inner
        self.fail_first = fail_first
        self.failure_rate = failure_rate
        self.calls = 0
        self._random = random.Random(seed)

    async def deliver(self, message: OutboundMessage) -> DeliveryResult:
        self.calls += 1
        if self.calls <= self.fail_first or self._random.random() < self.failure_rate:
            raise ProviderUnavailable("provider unavailable (simulated outage)")
        return await self.inner.deliver(message)


class DownProvider:
    """Always unavailable: a long outage."""

    async def deliver(self, message: OutboundMessage) -> DeliveryResult:
        raise ProviderUnavailable("provider unavailable (simulated outage)")
