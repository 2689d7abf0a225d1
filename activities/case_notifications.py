"""Letters to the parents, behind an interface the notifications service will implement.

`RecordingNotices` (the default) records each request in the case read model (`case_api.notices`),
keyed by an idempotency key from the workflow ID and a business key, so a retry sends nothing
twice. The notifications service (`cms.notifications.v1.NotificationsService/Send`) replaces it
by implementing `NoticeSender` and calling `set_notice_sender` at worker start.
Letters carry figures and dates only: nothing about one parent reaches the other.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Protocol

from psycopg.types.json import Jsonb
from temporalio import activity

from activities.context import db_pool


@dataclass
class CaseNotice:
    idempotency_key: str
    case_id: str
    recipient_party_id: str
    template: str     # notice_of_application | calculation | default_decision | annual_review | closure
    facts: dict[str, str] = field(default_factory=dict)
    explanation: list[str] = field(default_factory=list)


class NoticeSender(Protocol):
    async def send(self, notice: CaseNotice) -> None: ...


class RecordingNotices:
    _INSERT = ("INSERT INTO case_api.notices (idempotency_key, case_id, recipient_party_id, template, body) "
               "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (idempotency_key) DO NOTHING")

    async def send(self, notice: CaseNotice) -> None:
        await self.send_all([notice])

    async def send_all(self, notices: list[CaseNotice]) -> None:
        """Both parents' letters of one decision in one transaction: readers see both or neither."""
        async with db_pool().connection() as conn, conn.transaction():
            for notice in notices:
                await conn.execute(self._INSERT, (notice.idempotency_key, notice.case_id, notice.recipient_party_id,
                                                  notice.template, Jsonb(asdict(notice))))


class RecordedAndSentNotices(RecordingNotices):
    """Records each letter in the case read model (as before), then queues it in the notifications
    service's outbox (`activities.notifications.NotificationsNoticeSender`), which renders it for
    the addressee with the parties' details CaseService registered at application. Both steps are
    idempotent on the notice's key, so a retried activity sends nothing twice."""

    def __init__(self) -> None:
        from activities.notifications import NotificationsNoticeSender

        self._service = NotificationsNoticeSender()

    async def send_all(self, notices: list[CaseNotice]) -> None:
        await super().send_all(notices)
        for notice in notices:
            await self._service.send(notice)


def sender_from_environment() -> NoticeSender:
    """CMS_CASE_NOTICES_VIA_NOTIFICATIONS=1 (set by `make run`) sends letters through the
    notifications service; otherwise they are only recorded (workflow tests need no service)."""
    if os.environ.get("CMS_CASE_NOTICES_VIA_NOTIFICATIONS") == "1":
        return RecordedAndSentNotices()
    return RecordingNotices()


_sender: NoticeSender = sender_from_environment()


def set_notice_sender(sender: NoticeSender) -> None:
    global _sender
    _sender = sender


@activity.defn
async def send_case_notices(notices: list[CaseNotice]) -> None:
    """Several letters in one activity (e.g. both parents' calculation letters): fewer history
    events per case; each letter is idempotent on its own key."""
    send_all = getattr(_sender, "send_all", None)
    if send_all is not None:
        await send_all(notices)
        return
    for notice in notices:
        await _sender.send(notice)
