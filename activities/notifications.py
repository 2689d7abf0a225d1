"""Activities that reach the notifications service (cms.notifications.v1) over gRPC.

Run on task queue `cms-notifications` (TASK_QUEUE_NOTIFICATIONS). Workflows call them like:

    await workflow.execute_activity_method(
        NotificationActivities.send_notification,
        NotificationRequest(case_id=..., recipient_party_id="pp", template="calculation_decision",
                            business_key="calculation:2026-04-01",
                            variables={"case_reference": case_id, "effective_date": "2026-04-01",
                                       "weekly_amount": 8412, "explanation": [...]}),
        task_queue="cms-notifications", start_to_close_timeout=timedelta(seconds=30))

The requests are described in activities/notification_messages.py. A missing template variable
is a non-retryable ApplicationError (type "InvalidNotification") naming the template and the
variable; an unreachable service is retried by Temporal.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.case_messages import CaseNotice
from activities.notification_messages import (
    INVALID_NOTIFICATION,
    NotificationRequest,
    NotificationResult,
    PartyDetailsRequest,
    SafeguardingRequest,
)
from cms_proto.notifications.v1 import notifications_pb2 as pb

if TYPE_CHECKING:
    from cms.grpc_client import ServiceClient
    from cms_proto.notifications.v1.notifications_pb2_grpc import NotificationsServiceStub

    Notifications = ServiceClient[NotificationsServiceStub]

_CHANNELS = {"": pb.CHANNEL_UNSPECIFIED, "email": pb.CHANNEL_EMAIL, "sms": pb.CHANNEL_SMS, "letter": pb.CHANNEL_LETTER}
_CHANNEL_NAMES = {value: name for name, value in _CHANNELS.items()}


def _channel(name: str) -> pb.Channel.ValueType:
    if name not in _CHANNELS:
        raise ApplicationError(f"unknown channel {name!r}", type=INVALID_NOTIFICATION, non_retryable=True)
    return _CHANNELS[name]


class NotificationActivities:
    def __init__(self, notifications: Notifications):
        self._notifications = notifications

    @activity.defn(name="send_notification")
    async def send_notification(self, request: NotificationRequest) -> NotificationResult:
        if not request.business_key:
            raise ApplicationError("business_key is required", type=INVALID_NOTIFICATION, non_retryable=True)
        workflow_id = activity.info().workflow_id
        service = self._notifications
        reply = await service.call(service.stub.Send, pb.SendRequest(
            idempotency_key=f"{workflow_id}:{request.business_key}", case_id=request.case_id,
            recipient_party_id=request.recipient_party_id, template=request.template,
            variables_json=json.dumps(request.variables), channel=_channel(request.channel),
            requested_by=f"workflow:{workflow_id}", reason=request.business_key,
        ))
        return NotificationResult(reply.notification_id, reply.status, _CHANNEL_NAMES[reply.channel])

    @activity.defn(name="set_party_details")
    async def set_party_details(self, request: PartyDetailsRequest) -> None:
        service = self._notifications
        await service.call(service.stub.SetParty, pb.SetPartyRequest(
            case_id=request.case_id, party_id=request.party_id, role=request.role,
            details_json=json.dumps(request.details),
            preferences=pb.ContactPreferences(channel=_channel(request.channel), no_phone=request.no_phone,
                                              safe_from=request.safe_from, safe_until=request.safe_until),
        ))

    @activity.defn(name="set_safeguarding_profile")
    async def set_safeguarding_profile(self, request: SafeguardingRequest) -> None:
        service = self._notifications
        await service.call(service.stub.SetSafeguardingProfile, pb.SetSafeguardingProfileRequest(
            case_id=request.case_id, active=request.active, protected_party_ids=request.protected_party_ids,
            reason=request.reason, safe_channel=_channel(request.safe_channel), no_phone=request.no_phone,
            set_by=request.set_by,
        ))


# --- the case workflow's letters (activities/case_notifications.py) through this service ----------

# The case workflow's notice templates -> ours. Its facts are strings; money facts end in _pence.
_CASE_TEMPLATES = {
    "notice_of_application": "notice_to_paying_parent",
    "calculation": "calculation_decision",
    "default_decision": "calculation_decision",
    "recalculation": "calculation_decision",      # a recalculation (income arrived, a child left, a change)
    "change_outcome": "change_outcome",           # a change that did not alter the calculation
    "annual_review": "annual_review",
    "closure": "case_closed",
    "service_type_change": "service_type_change",  # Direct Pay to Collect & Pay
    "payment_schedule": "payment_schedule",        # with every new schedule (the next payments)
}


def case_notice_variables(case_id: str, facts: dict[str, str], explanation: list[str]) -> dict[str, Any]:
    """Our template variables from a case notice's facts."""
    variables: dict[str, Any] = {"case_reference": case_id}
    for key, value in facts.items():
        variables[key] = int(value) if key.endswith("_pence") and value.lstrip("-").isdigit() else value
    if facts.get("initial_effective_date"):
        variables.setdefault("effective_date", facts["initial_effective_date"])
    if "weekly_liability_pence" in variables:
        variables["weekly_amount"] = variables["weekly_liability_pence"]
    if "reason" in variables:
        variables["reason"] = str(variables["reason"]).replace("_", " ")
    if explanation:
        variables["explanation"] = list(explanation)
    # An empty fact (e.g. a change's outcome_reason) is still a value; only no date is no date.
    return {key: value for key, value in variables.items() if value != "" or not key.endswith("date")}


class NotificationsNoticeSender:
    """Queues the case workflow's letters in the notifications service's outbox (used by
    activities.case_notifications.RecordedAndSentNotices). Needs the parties registered first
    (CaseService does it at application), or every notice fails as InvalidNotification."""

    def __init__(self, notifications: Notifications):
        self._notifications = notifications

    async def send(self, notice: CaseNotice) -> None:
        template = _CASE_TEMPLATES.get(notice.template)
        if template is None:
            raise ApplicationError(f"no notifications template for case notice {notice.template!r}",
                                   type=INVALID_NOTIFICATION, non_retryable=True)
        service = self._notifications
        await service.call(service.stub.Send, pb.SendRequest(
            idempotency_key=notice.idempotency_key, case_id=notice.case_id,
            recipient_party_id=notice.recipient_party_id, template=template,
            variables_json=json.dumps(case_notice_variables(notice.case_id, notice.facts, notice.explanation)),
            requested_by="workflow:case", reason=notice.template,
        ))
