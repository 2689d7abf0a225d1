"""What CaseWorkflow sends its activities and gets back: the read-model snapshot, letters, the
schedule hand-over to payments, the decision's writes and the HMRC requests.

Standard library only, so a workflow imports them without loading the activities' clients. The
names and fields are part of every recorded history: rename or reshape nothing; a new field
needs a default.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# --- the case read model (activities.case_records) -------------------------------------------


@dataclass
class TimelineRow:
    seq: int
    at: str
    day: str
    kind: str
    text: str


@dataclass
class ChildRow:
    child_id: str
    date_of_birth: str
    shared_care_nights: int
    in_full_time_education: bool
    stopped_qualifying_on: str | None


@dataclass
class CaseSnapshot:
    """The case as the read model shows it: no names or addresses (CaseService wrote those at
    application), plus the timeline entries the read model has not seen yet."""

    case_id: str
    stage: str
    service_type: str
    safeguarded: bool
    application_date: str
    case_day: str
    initial_effective_date: str | None = None
    next_review_date: str | None = None
    rate: str | None = None
    weekly_liability_pence: int | None = None
    paying_parent_pays_pence: int | None = None
    receiving_parent_receives_pence: int | None = None
    liability_effective_date: str | None = None
    rule_set_id: str | None = None
    needs_caseworker: bool = False
    caseworker_reason: str = ""
    on_hold: bool = False
    hold_reason: str = ""
    sla_due_at: str | None = None
    closure_reason: str | None = None
    closed_on: str | None = None
    reviews_done: int = 0
    children: list[ChildRow] = field(default_factory=list)
    timeline: list[TimelineRow] = field(default_factory=list)


# --- letters to the parents (activities.case_notifications) -----------------------------------


@dataclass
class CaseNotice:
    idempotency_key: str
    case_id: str
    recipient_party_id: str
    template: str     # notice_of_application | calculation | default_decision | annual_review | closure
    facts: dict[str, str] = field(default_factory=dict)
    explanation: list[str] = field(default_factory=list)


# --- the schedule handed to payments (activities.case_payments) ------------------------------


@dataclass
class ScheduleRequest:
    idempotency_key: str
    case_id: str
    version: int
    service_type: str
    frequency: str
    effective_from: str
    weekly_liability_pence: int
    paying_parent_pays_weekly_pence: int
    instalment_pence: int
    first_instalment_pence: int
    instalments_per_year: int
    first_due_date: str
    annual_pence: int
    # Weekly Collect & Pay fees (0 on Direct Pay) and the decision behind the schedule.
    paying_parent_fee_pence: int = 0
    receiving_parent_fee_pence: int = 0
    rule_set_id: str = ""
    method: str = "direct_debit"       # how the paying parent pays (domain.lifecycle.PAYMENT_METHODS)
    # Collect & Pay, first schedule: the first collection's due date (ISO; "" for none), no
    # earlier than 10 working days after the payment schedule letter; what fell due before it is
    # initial arrears spread over the first 52 weeks' instalments (domain.payments.schedule).
    first_collection_date: str = ""
    # The case calendar at the hand-over, for the collection cycles (CollectionsWorkflow).
    case_day: str = ""
    case_instant: str = ""
    seconds_per_day: float = 86400.0


@dataclass
class StopScheduleRequest:
    idempotency_key: str
    case_id: str
    stop_from: str
    reason: str


# --- a decision's writes in one local activity (activities.case_decision) ---------------------


@dataclass
class DecisionWrites:
    snapshot: CaseSnapshot
    notices: list[CaseNotice] = field(default_factory=list)
    schedule: ScheduleRequest | None = None


# --- HMRC (activities.hmrc) -------------------------------------------------------------------

# The ApplicationError type of a request HMRC can never answer (a caseworker must act).
PERMANENT_FAILURE_TYPE = "HmrcPermanentFailure"


@dataclass
class AddressCheck:
    case_id: str
    party_id: str


@dataclass
class IncomeRequest:
    case_id: str
    party_id: str
    requested_on: str    # case-calendar date (ISO)


@dataclass
class IncomeAnswer:
    found: bool
    annual_pence: int | None
    tax_year: str
