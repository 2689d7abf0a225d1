"""Letters to the parents from the case workflow, through a `NoticeSender` the worker chooses.

`RecordingNotices` records each letter in the case read model (`case_api.notices`), keyed by an
idempotency key from the workflow ID and a business key, so a retry sends nothing twice.
`RecordedAndSentNotices` (make run: CMS_CASE_NOTICES_VIA_NOTIFICATIONS=1) records them the same
way and then queues each in the notifications service's outbox
(`cms.notifications.v1.NotificationsService/Send`).
Letters carry figures and dates only: nothing about one parent reaches the other.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Protocol

from temporalio import activity

from activities.case_messages import CaseNotice
from services.case_api import repository as case_api

if TYPE_CHECKING:
    from psycopg_pool import AsyncConnectionPool

    from activities.notifications import NotificationsNoticeSender


class NoticeSender(Protocol):
    async def send_all(self, notices: list[CaseNotice]) -> None:
        """Sends every letter; each is idempotent on its own key."""


class RecordingNotices:
    def __init__(self, pool: AsyncConnectionPool):
        self._pool = pool

    async def send_all(self, notices: list[CaseNotice]) -> None:
        """Both parents' letters of one decision in one transaction: readers see both or neither."""
        async with self._pool.connection() as conn, conn.transaction():
            for notice in notices:
                await case_api.record_notice(conn, notice.idempotency_key, notice.case_id,
                                             notice.recipient_party_id, notice.template, asdict(notice))


class RecordedAndSentNotices(RecordingNotices):
    """Records each letter in the case read model (as RecordingNotices), then queues it in the
    notifications service's outbox, which renders it for the addressee with the parties' details
    CaseService registered at application. Both steps are idempotent on the notice's key, so a
    retried activity sends nothing twice."""

    def __init__(self, pool: AsyncConnectionPool, service: NotificationsNoticeSender):
        super().__init__(pool)
        self._service = service

    async def send_all(self, notices: list[CaseNotice]) -> None:
        await super().send_all(notices)
        for notice in notices:
            await self._service.send(notice)


class CaseNoticeActivities:
    def __init__(self, sender: NoticeSender):
        self._sender = sender

    @activity.defn(name="send_case_notices")
    async def send_case_notices(self, notices: list[CaseNotice]) -> None:
        """Several letters in one activity (e.g. both parents' calculation letters): fewer history
        events per case; each letter is idempotent on its own key."""
        await self._sender.send_all(notices)
