"""Activities that reach the notifications service (cms.notifications.v1) over gRPC.

Run on task queue `cms-notifications` (TASK_QUEUE_NOTIFICATIONS). Workflows call them like:

    await workflow.execute_activity(
        "send_notification",
        NotificationRequest(case_id=..., recipient_party_id="pp", template="calculation_decision",
                            business_key="calculation:2026-04-01",
                            variables={"case_reference": case_id, "effective_date": "2026-04-01",
                                       "weekly_amount": 8412, "explanation": [...]}),
        task_queue="cms-notifications", start_to_close_timeout=timedelta(seconds=30),
        result_type=NotificationResult)

`NotificationRequest` (input of `send_notification`):
- case_id, recipient_party_id: the addressee must have been registered with `set_party_details`.
- template: one of domain.notifications.TEMPLATES (application_received, notice_to_paying_parent,
  calculation_decision, payment_schedule, payment_received, payment_missed, change_outcome,
  annual_review, enforcement_step, case_closed); its variables are listed by
  `domain.notifications.required_variables(TEMPLATES[name])`.
- business_key: what makes this message unique within the workflow (e.g. "calculation:2026-04-01",
  "payment-missed:2026-05-28"). Idempotency key = workflow id + ":" + business_key, so a retried
  activity or a replayed workflow never queues a second message.
- variables: JSON values; money in integer pence, dates "YYYY-MM-DD", explanation a list of lines.
  Never put a party's address, phone, employer or bank details here: they are withheld anyway.
- channel: "" (the recipient's preference; the default) or "email" | "sms" | "letter" (a wish:
  contact preferences and the safeguarding profile win).

A missing template variable is a non-retryable ApplicationError (type "InvalidNotification")
naming the template and the variable; an unreachable service is retried by Temporal.

`PartyDetailsRequest` / `SafeguardingRequest` (inputs of `set_party_details` /
`set_safeguarding_profile`) register who the parties are and how to reach them, once at
application and again on an address/contact change.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import grpc
from temporalio import activity
from temporalio.exceptions import ApplicationError

from cms.config import load_settings
from cms_proto.notifications.v1 import notifications_pb2 as pb
from cms_proto.notifications.v1 import notifications_pb2_grpc

_CHANNELS = {"": pb.CHANNEL_UNSPECIFIED, "email": pb.CHANNEL_EMAIL, "sms": pb.CHANNEL_SMS, "letter": pb.CHANNEL_LETTER}
_CHANNEL_NAMES = {value: name for name, value in _CHANNELS.items()}


@dataclass
class NotificationRequest:
    case_id: str
    recipient_party_id: str
    template: str
    business_key: str
    variables: dict[str, Any] = field(default_factory=dict)
    channel: str = ""


@dataclass
class NotificationResult:
    notification_id: str
    status: str
    channel: str


@dataclass
class PartyDetailsRequest:
    case_id: str
    party_id: str
    role: str                              # receiving_parent | paying_parent
    details: dict[str, str] = field(default_factory=dict)   # full_name, address, postcode, email, phone, ...
    channel: str = ""                      # preferred channel
    no_phone: bool = False
    safe_from: str = ""                    # "HH:MM" UK time, both or neither
    safe_until: str = ""


@dataclass
class SafeguardingRequest:
    case_id: str
    active: bool
    protected_party_ids: list[str] = field(default_factory=list)
    reason: str = ""
    safe_channel: str = ""
    no_phone: bool = False
    set_by: str = "application"


_stub: notifications_pb2_grpc.NotificationsServiceStub | None = None


def _service() -> notifications_pb2_grpc.NotificationsServiceStub:
    global _stub
    if _stub is None:
        channel = grpc.aio.insecure_channel(load_settings().address_of("notifications"))
        _stub = notifications_pb2_grpc.NotificationsServiceStub(channel)
    return _stub


def use_notifications_address(address: str) -> None:
    """Points the activities at a service address (tests; the worker uses NOTIFICATIONS_PORT)."""
    global _stub
    _stub = notifications_pb2_grpc.NotificationsServiceStub(grpc.aio.insecure_channel(address))


def _channel(name: str) -> int:
    if name not in _CHANNELS:
        raise ApplicationError(f"unknown channel {name!r}", type="InvalidNotification", non_retryable=True)
    return _CHANNELS[name]


async def _call(method, request):
    try:
        return await method(request, timeout=20)
    except grpc.aio.AioRpcError as error:
        if error.code() == grpc.StatusCode.INVALID_ARGUMENT:
            raise ApplicationError(error.details() or "invalid notification", type="InvalidNotification",
                                   non_retryable=True) from None
        raise


@activity.defn
async def send_notification(request: NotificationRequest) -> NotificationResult:
    if not request.business_key:
        raise ApplicationError("business_key is required", type="InvalidNotification", non_retryable=True)
    key = f"{activity.info().workflow_id}:{request.business_key}"
    reply = await _call(_service().Send, pb.SendRequest(
        idempotency_key=key, case_id=request.case_id, recipient_party_id=request.recipient_party_id,
        template=request.template, variables_json=json.dumps(request.variables), channel=_channel(request.channel),
        requested_by=f"workflow:{activity.info().workflow_id}", reason=request.business_key,
    ))
    return NotificationResult(reply.notification_id, reply.status, _CHANNEL_NAMES[reply.channel])


@activity.defn
async def set_party_details(request: PartyDetailsRequest) -> None:
    await _call(_service().SetParty, pb.SetPartyRequest(
        case_id=request.case_id, party_id=request.party_id, role=request.role,
        details_json=json.dumps(request.details),
        preferences=pb.ContactPreferences(channel=_channel(request.channel), no_phone=request.no_phone,
                                          safe_from=request.safe_from, safe_until=request.safe_until),
    ))


@activity.defn
async def set_safeguarding_profile(request: SafeguardingRequest) -> None:
    await _call(_service().SetSafeguardingProfile, pb.SetSafeguardingProfileRequest(
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
    """Implements activities.case_notifications.NoticeSender with the notifications service:
    `set_notice_sender(NotificationsNoticeSender())` at worker start. Needs the parties registered
    first (`set_party_details`), or every notice fails as InvalidNotification."""

    async def send(self, notice: Any) -> None:
        template = _CASE_TEMPLATES.get(notice.template)
        if template is None:
            raise ApplicationError(f"no notifications template for case notice {notice.template!r}",
                                   type="InvalidNotification", non_retryable=True)
        await _call(_service().Send, pb.SendRequest(
            idempotency_key=notice.idempotency_key, case_id=notice.case_id,
            recipient_party_id=notice.recipient_party_id, template=template,
            variables_json=json.dumps(case_notice_variables(notice.case_id, notice.facts, notice.explanation)),
            requested_by="workflow:case", reason=notice.template,
        ))
