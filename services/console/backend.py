"""The console's calls to the platform's services, each made with the signed-in person's token.

One channel per service for the console's life (a channel carries every concurrent call); the
person's token goes with each call as `authorization: Bearer <token>`, so the service verifies and
authorises the person, never the console. A failed call raises grpc.aio.AioRpcError; the pages
turn its status into a 403 page, field messages or the refusal in words (services/console/app.py).

`Backend` is what the pages need; `GrpcBackend` is the real one, and the tests give a fake.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Protocol

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from cms.config import Settings
from cms.grpc_client import BALANCED
from cms_proto.case.v1 import case_pb2, case_pb2_grpc
from cms_proto.notifications.v1 import notifications_pb2, notifications_pb2_grpc
from cms_proto.payments.v1 import payments_pb2, payments_pb2_grpc
from cms_proto.risk.v1 import risk_pb2, risk_pb2_grpc

CALL_TIMEOUT_SECONDS = 20.0
# Every case waiting for a caseworker fits on one queue page up to this many.
QUEUE_PAGE_SIZE = 1000


class Backend(Protocol):
    async def cases_needing_caseworker(self, token: str) -> list[case_pb2.CaseSummary]: ...
    async def list_changes(self, token: str, case_id: str = "", waiting_for_review_only: bool = False,
                           due_before: datetime | None = None, include_cleared: bool = False) -> list[case_pb2.ChangeItem]: ...
    async def get_case(self, token: str, case_id: str, staff_id: str, reason: str,
                       withhold_protected: bool) -> case_pb2.Case: ...
    async def timeline(self, token: str, case_id: str) -> list[case_pb2.TimelineEntry]: ...
    async def balance(self, token: str, case_id: str) -> payments_pb2.Balance: ...
    async def statement(self, token: str, case_id: str) -> payments_pb2.Statement: ...
    async def letters(self, token: str, case_id: str) -> list[notifications_pb2.Notification]: ...
    async def letter_pdf(self, token: str, notification_id: str, reason: str) -> notifications_pb2.LetterPdfResponse: ...
    async def risk(self, token: str, case_id: str) -> risk_pb2.CaseScore: ...
    async def suspense(self, token: str) -> list[payments_pb2.SuspenseItem]: ...
    async def signal_case(self, token: str, case_id: str, action: str, payload: dict[str, str],
                          idempotency_key: str) -> case_pb2.SignalCaseResponse: ...
    async def review_change(self, token: str, case_id: str, change_no: int, outcome: str, reason: str,
                            corrected_details: dict[str, Any] | None, idempotency_key: str) -> case_pb2.ReviewChangeResponse: ...
    async def assign_suspense(self, token: str, bank_reference: str, case_id: str,
                              idempotency_key: str) -> payments_pb2.SuspenseAssignment: ...


def _metadata(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def _timestamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


class GrpcBackend:
    def __init__(self, settings: Settings):
        self._settings = settings
        self._channels: dict[str, grpc.aio.Channel] = {}

    def _channel(self, service: str) -> grpc.aio.Channel:
        channel = self._channels.get(service)
        if channel is None:
            channel = self._channels[service] = grpc.aio.insecure_channel(
                self._settings.address_of(service), options=BALANCED)
        return channel

    @property
    def _cases(self) -> case_pb2_grpc.CaseServiceStub:
        return case_pb2_grpc.CaseServiceStub(self._channel("case_api"))

    @property
    def _payments(self) -> payments_pb2_grpc.PaymentsServiceStub:
        return payments_pb2_grpc.PaymentsServiceStub(self._channel("payments"))

    async def close(self) -> None:
        channels, self._channels = list(self._channels.values()), {}
        for channel in channels:
            await channel.close()

    async def cases_needing_caseworker(self, token: str) -> list[case_pb2.CaseSummary]:
        reply = await self._cases.ListCases(
            case_pb2.ListCasesRequest(needs_caseworker_only=True, with_changes_and_enforcement=True,
                                      page_size=QUEUE_PAGE_SIZE),
            metadata=_metadata(token), timeout=CALL_TIMEOUT_SECONDS)
        return list(reply.cases)

    async def list_changes(self, token: str, case_id: str = "", waiting_for_review_only: bool = False,
                           due_before: datetime | None = None, include_cleared: bool = False) -> list[case_pb2.ChangeItem]:
        request = case_pb2.ListChangesRequest(case_id=case_id, waiting_for_review_only=waiting_for_review_only,
                                              include_cleared=include_cleared, limit=QUEUE_PAGE_SIZE)
        if due_before is not None:
            request.due_before.CopyFrom(_timestamp(due_before))
        reply = await self._cases.ListChanges(request, metadata=_metadata(token), timeout=CALL_TIMEOUT_SECONDS)
        return list(reply.changes)

    async def get_case(self, token: str, case_id: str, staff_id: str, reason: str,
                       withhold_protected: bool) -> case_pb2.Case:
        request = case_pb2.GetCaseRequest(case_id=case_id, staff_id=staff_id, reason=reason,
                                          withhold_protected=withhold_protected)
        return await self._cases.GetCase(request, metadata=_metadata(token), timeout=CALL_TIMEOUT_SECONDS)

    async def timeline(self, token: str, case_id: str) -> list[case_pb2.TimelineEntry]:
        reply = await self._cases.GetTimeline(case_pb2.GetTimelineRequest(case_id=case_id),
                                              metadata=_metadata(token), timeout=CALL_TIMEOUT_SECONDS)
        return list(reply.entries)

    async def balance(self, token: str, case_id: str) -> payments_pb2.Balance:
        return await self._payments.GetBalance(payments_pb2.GetBalanceRequest(case_id=case_id),
                                               metadata=_metadata(token), timeout=CALL_TIMEOUT_SECONDS)

    async def statement(self, token: str, case_id: str) -> payments_pb2.Statement:
        return await self._payments.GetStatement(payments_pb2.GetStatementRequest(case_id=case_id),
                                                 metadata=_metadata(token), timeout=CALL_TIMEOUT_SECONDS)

    async def letters(self, token: str, case_id: str) -> list[notifications_pb2.Notification]:
        stub = notifications_pb2_grpc.NotificationsServiceStub(self._channel("notifications"))
        reply = await stub.ListForCase(notifications_pb2.ListForCaseRequest(case_id=case_id),
                                       metadata=_metadata(token), timeout=CALL_TIMEOUT_SECONDS)
        return list(reply.notifications)

    async def letter_pdf(self, token: str, notification_id: str, reason: str) -> notifications_pb2.LetterPdfResponse:
        stub = notifications_pb2_grpc.NotificationsServiceStub(self._channel("notifications"))
        return await stub.LetterPdf(notifications_pb2.LetterPdfRequest(notification_id=notification_id, reason=reason),
                                    metadata=_metadata(token), timeout=CALL_TIMEOUT_SECONDS)

    async def risk(self, token: str, case_id: str) -> risk_pb2.CaseScore:
        stub = risk_pb2_grpc.RiskServiceStub(self._channel("risk"))
        return await stub.ScoreCase(risk_pb2.ScoreCaseRequest(case_id=case_id),
                                    metadata=_metadata(token), timeout=CALL_TIMEOUT_SECONDS)

    async def suspense(self, token: str) -> list[payments_pb2.SuspenseItem]:
        reply = await self._payments.ListSuspense(payments_pb2.ListSuspenseRequest(limit=QUEUE_PAGE_SIZE),
                                                  metadata=_metadata(token), timeout=CALL_TIMEOUT_SECONDS)
        return list(reply.items)

    async def signal_case(self, token: str, case_id: str, action: str, payload: dict[str, str],
                          idempotency_key: str) -> case_pb2.SignalCaseResponse:
        return await self._cases.SignalCase(
            case_pb2.SignalCaseRequest(case_id=case_id, action=action, payload_json=json.dumps(payload),
                                       idempotency_key=idempotency_key),
            metadata=_metadata(token), timeout=CALL_TIMEOUT_SECONDS)

    async def review_change(self, token: str, case_id: str, change_no: int, outcome: str, reason: str,
                            corrected_details: dict[str, Any] | None, idempotency_key: str) -> case_pb2.ReviewChangeResponse:
        return await self._cases.ReviewChange(
            case_pb2.ReviewChangeRequest(
                case_id=case_id, change_no=change_no, outcome=outcome, reason=reason, idempotency_key=idempotency_key,
                corrected_details_json=json.dumps(corrected_details) if corrected_details is not None else ""),
            metadata=_metadata(token), timeout=CALL_TIMEOUT_SECONDS)

    async def assign_suspense(self, token: str, bank_reference: str, case_id: str,
                              idempotency_key: str) -> payments_pb2.SuspenseAssignment:
        return await self._payments.AssignSuspensePayment(
            payments_pb2.AssignSuspensePaymentRequest(idempotency_key=idempotency_key, bank_reference=bank_reference,
                                                      case_id=case_id),
            metadata=_metadata(token), timeout=CALL_TIMEOUT_SECONDS)
