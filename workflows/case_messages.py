"""The case workflow's input, carried state and message types (one dataclass per handler).

Every caseworker message is plain JSON a person can type into the Temporal UI's signal/update
form, e.g. `{"text": "called the paying parent", "author": "cw-17"}` for `add_note`.
Classes marked `__strict_json__` reject unknown keys when decoded with the strict data converter
of workflows/converter.py (the default converter silently ignores them, so a typo would otherwise
be lost). Like every message module, this one imports only the standard library and other message
modules, so a client, the API or the converter can load the types without the workflows.

No personal data here beyond what the process needs (party ids are opaque, children carry a
date of birth for the qualifying dates); names, addresses and incomes of parties live in the
case read model in PostgreSQL.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from workflows.change_messages import ChangeLedger

TIMELINE_KEPT_IN_STATE = 30
# A repeated delivery of a payment event comes soon after the first: remembering the last few
# dozen ids is enough, and keeps the carried state small.
PAYMENT_EVENTS_REMEMBERED = 50


# --- input and carried state ------------------------------------------------------------------
@dataclass
class Calendar:
    """Length of one case day in seconds: 86,400 in production, a few seconds in demo mode."""

    seconds_per_day: float = 86400.0


@dataclass
class ChildFacts:
    child_id: str
    date_of_birth: str                      # ISO date
    in_full_time_education: bool = False
    shared_care_nights: int = 0
    education_ended_on: str | None = None   # ISO date, from a machine feed or a change
    stopped_qualifying_on: str | None = None
    # Stopped because their qualifying dates passed on the case's calendar (not taken off the case
    # by a change): a report that they continue in education can make them qualify again.
    stopped_by_calendar: bool = False


@dataclass
class TimelineEvent:
    at: str        # UTC instant (ISO)
    day: str       # case-calendar date (ISO)
    kind: str
    text: str
    seq: int = 0


@dataclass
class LiabilityRecord:
    rate: str
    weekly_liability_pence: int
    paying_parent_pays_pence: int
    receiving_parent_receives_pence: int
    effective_date: str
    rule_set_id: str
    gross_weekly_income_pence: int


@dataclass
class ClosureRecord:
    reason: str
    closed_on: str
    actor: str


@dataclass
class ServiceSwitch:
    """A decided move from Direct Pay to Collect & Pay, from the start of a collection period."""

    reason: str            # a key of domain.service_type.COLLECT_AND_PAY_REASONS
    actor: str             # a staff id, or "system" for the automatic move after repeated misses
    decided_on: str        # ISO case date
    effective_from: str    # ISO case date: the first collection period on Collect & Pay
    note: str = ""         # staff only: never in the timeline or a letter


@dataclass
class RateInForce:
    """One entry of the liability history as payments holds it: the weekly liability and the
    paying parent's weekly collection fee (0 on Direct Pay) from a case date until the next entry."""

    effective_from: str    # ISO case date
    weekly_liability_pence: int
    weekly_fee_pence: int
    rate: str = ""         # the rate decided (empty in histories kept before it was recorded)


@dataclass
class CaseState:
    """Everything a run needs; carried whole across continue-as-new."""

    case_id: str
    stage: str = "Application"
    phase: str = "assessment"          # assessment | active | closing | closed
    service_type: str = "direct_pay"
    requested_service_type: str = "direct_pay"
    receiving_parent_id: str = "rp-1"
    paying_parent_id: str = "pp-1"
    children: list[ChildFacts] = field(default_factory=list)
    relevant_other_children: int = 0
    safeguarded: bool = False
    payment_frequency: str = "monthly"
    payment_method: str = "direct_debit"   # how the paying parent pays (domain.lifecycle.PAYMENT_METHODS)
    anchor_date: str = ""              # case date at anchor_instant
    anchor_instant: str = ""
    seconds_per_day: float = 86400.0
    application_date: str = ""
    address_verified: bool = False
    hmrc_annual_pence: int | None = None
    hmrc_requested_on: str | None = None
    # The HMRC figure asked for 30 days before an annual review (patch "review-income-on-review-date"):
    # held here until the review date, so a recalculation dated before the review uses the
    # figure then in force; copied into hmrc_annual_pence by the review's recalculation.
    review_hmrc_annual_pence: int | None = None
    awaiting_income: bool = False
    initial_effective_date: str | None = None
    next_review_date: str | None = None
    liability: LiabilityRecord | None = None
    schedule_version: int = 0
    needs_caseworker: bool = False
    caseworker_reason: str = ""
    sla_due_on: str | None = None
    on_hold: bool = False
    hold_reason: str = ""
    closure: ClosureRecord | None = None
    close_requested: ClosureRecord | None = None
    timeline: list[TimelineEvent] = field(default_factory=list)
    timeline_seq: int = 0
    synced_seq: int = 0
    reviews_done: int = 0
    runs: int = 1
    # Review outcome the read model has not seen yet, kept across continue-as-new.
    max_events_per_run: int = 2000
    # Changes of circumstances (workflows.case_changes): the ledger, and two facts only changes set.
    changes: ChangeLedger = field(default_factory=ChangeLedger)
    flat_rate_benefit: bool = False
    stated_weekly_income_pence: int | None = None
    # Payment events from payments (workflows.payments.PaymentEvent): arrears as payments last
    # reported them (None: never reported), the team a payment problem went to, and the ids of
    # the most recent events (bounded: PAYMENT_EVENTS_REMEMBERED) to drop a repeated delivery.
    arrears_pence: int | None = None
    assigned_team: str = ""
    missed_payments: int = 0
    payment_event_ids: list[str] = field(default_factory=list)
    # Move to Collect & Pay (patch "collect-and-pay-switch"): the due dates of recent missed Direct
    # Pay payments (bounded), a decided move not yet taken into the schedule, and the move made.
    direct_pay_missed_due: list[str] = field(default_factory=list)
    pending_switch: ServiceSwitch | None = None
    collect_and_pay_switch: ServiceSwitch | None = None
    # Enforcement (patch "enforcement-after-missed-payment"): the case day a Collect & Pay miss
    # starts enforcement unless put right, how many have started, and whether one is open.
    enforcement_due_on: str | None = None
    enforcements_started: int = 0
    enforcement_open: bool = False
    # Direct Pay (same patch): the day the paying parent was last warned in writing that a further
    # miss moves the case to Collect & Pay (SI 2014/1386 reg 6), and a warning waiting to be sent.
    direct_pay_warned_on: str | None = None
    direct_pay_warning_due: bool = False
    # The liability history handed to payments, each version superseding from its date; kept from
    # the first schedule on (None in runs that began before it was kept), so a change applied out
    # of date order can state what it adds for payments already due (workflows.case_changes).
    rates: list[RateInForce] | None = None
    # The statutory date rules this case has taken up (patch names, workflows.case_changes
    # DATE_RULE_PATCHES): taken up at the start of a run, so a running case keeps one rule for a run.
    date_rules: list[str] = field(default_factory=list)
    # The day the paying parent was sent notice of the duty to report an income increase: the
    # initial decision letter includes it (None: not yet, or a run from before it was kept; then
    # the initial effective date, when that letter went).
    income_duty_notice_on: str | None = None
    # While the case is on a default decision: the date the first of them took effect, which
    # income revises it from (s.16(3) CSA 1991); None once a calculation on income replaces it.
    default_decision_from: str | None = None
    # Collect & Pay from the assessment (patch "first-collection-after-notice"): the first
    # collection's due date, 10 working days or more after the payment schedule letter; what fell
    # due before it is initial arrears, spread over the first 52 weeks' instalments.
    first_collection_date: str | None = None
    # Special expenses agreed by variation (regs 63-67), a week in pence: taken off the paying
    # parent's income in every calculation (reg 72).
    special_expenses_weekly_pence: int = 0


@dataclass
class CaseInput:
    case_id: str
    application_date: str = ""          # ISO; empty = the day the workflow starts
    receiving_parent_id: str = "rp-1"
    paying_parent_id: str = "pp-1"
    children: list[ChildFacts] = field(default_factory=list)
    relevant_other_children: int = 0
    requested_service_type: str = "direct_pay"
    domestic_abuse: bool = False
    payment_frequency: str = "monthly"
    payment_method: str = "direct_debit"   # one of domain.lifecycle.PAYMENT_METHODS
    calendar: Calendar = field(default_factory=Calendar)
    # False only on Temporal's time-skipping test server, which cannot register custom search
    # attributes (an unregistered one fails every workflow task). Everywhere else: True.
    publish_search_attributes: bool = True
    # History bound: continue-as-new after this many events even between reviews.
    max_events_per_run: int = 2000
    # Set only by continue-as-new: the state of the previous run, carried over exactly.
    carried_state: CaseState | None = None


@dataclass
class CaseOutcome:
    case_id: str
    stage: str
    closure: ClosureRecord | None


# --- caseworker updates and machine signals -------------------------------------------------
@dataclass
class NoteRequest:
    __strict_json__ = True
    text: str
    author: str


@dataclass
class NoteResult:
    entries: int


@dataclass
class ManualReviewRequest:
    __strict_json__ = True
    reason: str
    actor: str


@dataclass
class HoldRequest:
    __strict_json__ = True
    reason: str
    actor: str


@dataclass
class SafeguardingFlag:
    """A caseworker sets the safeguarding profile on a case after application (docs/design.md, Security and safeguarding)."""

    __strict_json__ = True
    reason: str
    actor: str


@dataclass
class CollectAndPayRequest:
    """A caseworker moves a Direct Pay case to Collect & Pay (docs/rules.md section 10), e.g.
    `{"reason": "direct_pay_missed", "actor": "cw-17", "note": "second missed payment"}`."""

    __strict_json__ = True
    reason: str      # one of domain.service_type.COLLECT_AND_PAY_REASONS
    actor: str
    note: str = ""   # kept with staff


@dataclass
class ReleaseRequest:
    __strict_json__ = True
    actor: str
    note: str = ""


@dataclass
class CloseRequest:
    """E.g. `{"reason": "paying_parent_died", "actor": "cw-17", "event_date": "2025-06-03"}`."""

    __strict_json__ = True
    reason: str      # one of domain.lifecycle.CLOSURE_REASONS except no_qualifying_child
    actor: str
    note: str = ""
    # ISO date of the event (a death, leaving the UK, no longer caring), or for the receiving
    # parent's request the day asked; empty: the day the closure is recorded.
    event_date: str = ""


@dataclass
class ActionResult:
    outcome: str
    stage: str


@dataclass
class CloseResult:
    outcome: str
    closed_on: str
    arrears: str


@dataclass
class IncomeReport:
    """HMRC feed (or the paying parent's evidence): the annual taxable income in pence."""

    __strict_json__ = True
    annual_pence: int
    source: str = "hmrc"


@dataclass
class EducationEnded:
    __strict_json__ = True
    child_id: str
    on_date: str     # ISO date


@dataclass
class CaseQuery:
    """Query argument (the UI may send `{}`): `recent` limits the timeline entries returned."""

    __strict_json__ = True
    recent: int = TIMELINE_KEPT_IN_STATE


@dataclass
class CaseView:
    case_id: str
    stage: str
    service_type: str
    safeguarded: bool
    needs_caseworker: bool
    caseworker_reason: str
    on_hold: bool
    application_date: str
    initial_effective_date: str | None
    next_review_date: str | None
    liability: LiabilityRecord | None
    closure: ClosureRecord | None
    today: str
    reviews_done: int
    runs: int
    arrears_pence: int = 0
    missed_payments: int = 0
    # A decided move to Collect & Pay still to be taken into the schedule, or the move made.
    collect_and_pay_switch: ServiceSwitch | None = None


@dataclass
class ChildQualifying:
    """A child of the case and the last day they qualify, as the case now stands."""
    child_id: str
    qualifies_until: str   # ISO case date: the last qualifying day


@dataclass
class LiabilityHistory:
    """The `liability_history` query: the liability history handed to payments (each entry in
    force from its date to the next; after a closure, none from the closure date) and each
    child's last qualifying day. `rates` is empty for a case not yet decided."""
    rates: list[RateInForce]
    children: list[ChildQualifying]
    closed_on: str | None = None


def unknown_keys(message_type: type, payload: dict) -> list[str]:
    """For the API: the keys of a typed JSON payload that `message_type` does not take."""
    allowed = {f.name for f in dataclasses.fields(message_type)}
    return sorted(set(payload) - allowed)
