"""GOV.UK Notify behind the `NotificationProvider` interface (notifications-python-client).

- Letters go as precompiled PDFs (`services.notifications.letters` draws them to Notify's letter
  specification); email and SMS go through two Notify templates that print our already-rendered
  text: `((subject))` and `((body))` for email, `((body))` for SMS. Their ids come from the
  environment (`NotifySettings.from_environment`).
- Our notification_id is Notify's `reference`.

Exactly once. Notify does not de-duplicate: the same request sent twice is two letters. The
dispatcher is at-least-once (a crash after Notify accepted a message but before the outbox row
was updated leaves the row queued, and it is sent again). This provider turns that into
exactly-once by recording before sending, on Notify's side: every send first asks Notify for a
notification with this reference, and a message Notify already holds is reported as already
delivered instead of being sent again. Only one dispatcher holds an outbox row at a time (the
claim is `FOR UPDATE SKIP LOCKED`), so no two senders race on one reference. The cost is one
extra request per message; the price of skipping it would be a second letter to a parent.

Outcomes, mapped to the outbox:
- accepted: 'sent'; the delivery receipt comes later by status polling (`poll_receipts`);
- a validation error (400): 'failed' at once (`ProviderRejected`): resending cannot help;
- a bad API key (403): retried (`ProviderUnavailable`): the message is fine and must not be lost
  while the key is put right; the reason names the key problem so the failure is visible;
- a rate limit (429), a Notify outage (5xx) or no answer: retried with backoff.
"""

from __future__ import annotations

import asyncio
import base64
import io
import os
from dataclasses import dataclass
from typing import Any

import requests
from notifications_python_client.errors import HTTPError
from notifications_python_client.notifications import NotificationsAPIClient

from services.notifications.providers import (
    DeliveryResult,
    OutboundMessage,
    ProviderRejected,
    ProviderUnavailable,
)

NOTIFY_BASE_URL = "https://api.notifications.service.gov.uk"

# Notify's statuses -> our delivery receipt: True delivered, False failed, None not final yet.
# A letter's last status is "received" (handed to the post); "returned-letter" is a failure.
RECEIPTS: dict[str, bool | None] = {
    "created": None, "sending": None, "pending": None, "sent": None, "accepted": None,
    "pending-virus-check": None,
    "delivered": True, "received": True,
    "permanent-failure": False, "temporary-failure": False, "technical-failure": False,
    "validation-failed": False, "virus-scan-failed": False, "cancelled": False, "returned-letter": False,
}


@dataclass(frozen=True)
class NotifySettings:
    api_key: str
    email_template_id: str
    sms_template_id: str
    base_url: str = NOTIFY_BASE_URL
    postage: str = "second"
    timeout_seconds: float = 30.0

    @classmethod
    def from_environment(cls, api_key: str) -> NotifySettings:
        return cls(api_key=api_key,
                   email_template_id=os.environ.get("CMS_NOTIFY_EMAIL_TEMPLATE_ID", ""),
                   sms_template_id=os.environ.get("CMS_NOTIFY_SMS_TEMPLATE_ID", ""),
                   base_url=os.environ.get("CMS_NOTIFY_BASE_URL") or NOTIFY_BASE_URL,
                   postage=os.environ.get("CMS_NOTIFY_POSTAGE") or "second")


@dataclass(frozen=True)
class Receipt:
    notification_id: str
    delivered: bool | None          # None: not final yet
    status: str                     # Notify's own word for it


class NotifyProvider:
    def __init__(self, settings: NotifySettings):
        self.settings = settings
        try:
            self._client = NotificationsAPIClient(settings.api_key, base_url=settings.base_url,
                                                  timeout=settings.timeout_seconds)
        except (AssertionError, ValueError, IndexError) as error:
            raise ValueError("CMS_NOTIFY_API_KEY is not a Notify API key (name-service id-secret)") from error

    async def deliver(self, message: OutboundMessage) -> DeliveryResult:
        return await asyncio.to_thread(self._deliver, message)

    async def receipt(self, notification_id: str) -> Receipt:
        return await asyncio.to_thread(self._receipt, notification_id)

    def _deliver(self, message: OutboundMessage) -> DeliveryResult:
        if not message.destination:
            raise ProviderRejected("no destination")
        if self._call(self._held_by_notify, message.notification_id) is not None:
            return DeliveryResult(status="sent", already_delivered=True)
        self._call(self._send, message)
        return DeliveryResult(status="sent")

    def _held_by_notify(self, reference: str) -> dict[str, Any] | None:
        found = self._client.get_all_notifications(reference=reference).get("notifications", [])
        return found[0] if found else None

    def _send(self, message: OutboundMessage) -> dict[str, Any]:
        reference = message.notification_id
        if message.channel == "letter":
            return self._client.send_precompiled_letter_notification(
                reference, io.BytesIO(message.letter_pdf), postage=self.settings.postage)
        if message.channel == "email":
            return self._client.send_email_notification(
                message.destination[0], self.settings.email_template_id,
                personalisation={"subject": message.subject, "body": message.body}, reference=reference)
        return self._client.send_sms_notification(
            message.destination[0], self.settings.sms_template_id, personalisation={"body": message.body},
            reference=reference)

    def _receipt(self, notification_id: str) -> Receipt:
        held = self._call(self._held_by_notify, notification_id)
        if held is None:
            return Receipt(notification_id, None, "unknown")
        status = str(held.get("status", ""))
        return Receipt(notification_id, RECEIPTS.get(status), status)

    @staticmethod
    def _call(action: Any, *arguments: Any) -> Any:
        """One Notify request, its errors mapped to the outbox's retry-or-fail."""
        try:
            return action(*arguments)
        except HTTPError as error:
            raise _mapped(error) from None
        except requests.RequestException as error:
            raise ProviderUnavailable(f"Notify did not answer: {type(error).__name__}") from None


def _mapped(error: HTTPError) -> Exception:
    if error.response is None:      # the client's word for a connection that failed or timed out
        return ProviderUnavailable(f"Notify did not answer: {error.message}")
    messages = "; ".join(f"{item.get('error', '')}: {item.get('message', '')}" for item in _errors_of(error))
    if error.status_code == 400:
        return ProviderRejected(f"Notify refused the message: {messages}")
    if error.status_code == 403:
        return ProviderUnavailable(f"Notify refused our API key (check CMS_NOTIFY_API_KEY): {messages}")
    if error.status_code == 429:
        return ProviderUnavailable(f"Notify rate limit: {messages}")
    return ProviderUnavailable(f"Notify answered {error.status_code}: {messages}")


def _errors_of(error: HTTPError) -> list[dict[str, str]]:
    message = error.message
    if isinstance(message, list):
        return [item for item in message if isinstance(item, dict)]
    return [{"error": "", "message": str(message)}]


def letter_content(pdf: bytes) -> str:
    """How a precompiled letter travels in Notify's API (base64), for the fake and for tests."""
    return base64.b64encode(pdf).decode("ascii")
