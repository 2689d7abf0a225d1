"""What workflows send the notifications activities (task queue `cms-notifications`).

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

`PartyDetailsRequest` / `SafeguardingRequest` (inputs of `set_party_details` /
`set_safeguarding_profile`) register who the parties are and how to reach them, once at
application and again on an address/contact change.

Standard library only, so a workflow imports them without loading the activities' clients.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# The ApplicationError type of a notification that can never be sent as asked (a missing
# template variable, an unknown channel or template): non-retryable.
INVALID_NOTIFICATION = "InvalidNotification"


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
