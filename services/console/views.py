"""View models: what each page shows, in words, from the services' replies. Pure functions of
the messages and the moment, so they are tested without a server; the templates only lay out
what these return.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from urllib.parse import quote
from zoneinfo import ZoneInfo

from google.protobuf.timestamp_pb2 import Timestamp

from cms_proto.case.v1 import case_pb2
from cms_proto.notifications.v1 import notifications_pb2
from cms_proto.payments.v1 import payments_pb2
from cms_proto.risk.v1 import risk_pb2
from domain.lifecycle import last_qualifying_day
from domain.safeguarding import REDACTED
from domain.service_type import COLLECT_AND_PAY_REASONS

UK = ZoneInfo("Europe/London")
SLA_DAYS = 28
# A change this close to its 28-day deadline (in case-calendar days) is "nearly breached".
NEARLY_BREACHED_DAYS = 7
UNASSIGNED = "Unassigned"

STAGES = {"Application": "Application", "Assessment": "Assessment", "PaymentSchedule": "Payment schedule",
          "Active": "Active", "AnnualReview": "Annual review", "Closed": "Closed"}
SERVICE_TYPES = {"direct_pay": "Direct Pay", "collect_and_pay": "Collect & Pay",
                 case_pb2.SERVICE_TYPE_DIRECT_PAY: "Direct Pay", case_pb2.SERVICE_TYPE_COLLECT_AND_PAY: "Collect & Pay"}
REVIEW_REASONS = {
    "evidence_disputed": "the evidence is disputed",
    "safeguarding": "the case is safeguarded",
    "rules_cannot_decide": "the rules cannot decide it without a caseworker",
    "earlier_notification": "it was recorded as notified on an earlier date",
}
CHANGE_KINDS = {
    "paying_parent_income": "Paying parent's income", "shared_care_nights": "Shared care nights",
    "child_added": "Child added", "child_left": "Child left", "child_left_education": "Child left education",
    "child_continuing_education": "Child continuing in education",
    "relevant_other_children": "Relevant other children", "flat_rate_benefit_started": "Benefit started (flat rate)",
    "flat_rate_benefit_stopped": "Benefit stopped (flat rate)", "address": "Address", "employment": "Employment",
    "service_type": "Service type", "close_request": "Request to close",
}
PARTY_FIELDS = (("full_name", "Name"), ("address", "Address"), ("phone", "Phone"), ("email", "Email"),
                ("employer", "Employer"), ("bank_sort_code", "Bank sort code"))


# --- words for values ------------------------------------------------------------------------

def money(pence: int) -> str:
    """£1,234.56; a negative amount with a minus sign."""
    sign = "−" if pence < 0 else ""
    pounds, rest = divmod(abs(pence), 100)
    return f"{sign}£{pounds:,}.{rest:02d}"


def day_text(day: date | str) -> str:
    """27 March 2026, as GOV.UK writes dates; "" for none; text that is not a date as it is."""
    if isinstance(day, date):
        return f"{day.day} {day:%B %Y}"
    if not day:
        return ""
    try:
        parsed = date.fromisoformat(day)
    except ValueError:
        return day
    return f"{parsed.day} {parsed:%B %Y}"


def instant(stamp: Timestamp | None) -> datetime | None:
    if stamp is None or (stamp.seconds == 0 and stamp.nanos == 0):
        return None
    return stamp.ToDatetime(tzinfo=UTC)


def moment_text(moment: datetime | None) -> str:
    """27 March 2026 at 2:05pm, UK time."""
    if moment is None:
        return ""
    local = moment.astimezone(UK)
    hour = local.hour % 12 or 12
    return f"{day_text(local.date())} at {hour}:{local:%M}{'am' if local.hour < 12 else 'pm'}"


def plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def words(code: str) -> str:
    """A code as words: `rules_cannot_decide` -> "Rules cannot decide", `ChangeReview` -> "Change review"."""
    text = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", code).replace("_", " ").strip().lower()
    return text[:1].upper() + text[1:]


# --- the queues ------------------------------------------------------------------------------

@dataclass(frozen=True)
class QueueRow:
    case_id: str
    what: str           # "Case", "Change 2: shared care nights", "Enforcement"
    href: str           # where the console takes it up: the case page, or the change's review
    why: str
    due: str
    overdue: bool
    stage: str
    service_type: str
    temporal_url: str = ""


@dataclass(frozen=True)
class TeamQueue:
    team: str
    rows: tuple[QueueRow, ...]


ENFORCEMENT_TEAM = "enforcement"


def _due_words(due_at: datetime | None, now: datetime) -> tuple[str, bool]:
    if due_at is None:
        return "No deadline", False
    if due_at < now:
        return f"Overdue since {moment_text(due_at)}", True
    return f"Due {moment_text(due_at)}", False


def case_queue(cases: Iterable[case_pb2.CaseSummary], now: datetime, temporal_link: str = "") -> list[TeamQueue]:
    """Work needing a caseworker, by assigned team (alphabetical, unassigned last), each team's
    soonest due first and those with no deadline last: cases, their changes waiting for review and
    their enforcement steps waiting for approval. `temporal_link` (operations only) is the Temporal
    UI's workflow address with `{workflow_id}` in it."""
    teams: dict[str, list[tuple[datetime | None, QueueRow]]] = {}
    for summary in cases:
        if not summary.needs_caseworker:
            continue
        due_at = instant(summary.sla_due_at) if summary.HasField("sla_due_at") else None
        due, overdue = _due_words(due_at, now)
        workflow_id = summary.workflow_id or f"case-{summary.case_id}"
        row = QueueRow(
            case_id=summary.case_id, what=_queue_what(summary), href=_queue_href(summary), why=case_why(summary),
            due=due, overdue=overdue, stage=STAGES.get(summary.stage, words(summary.stage)),
            service_type=SERVICE_TYPES.get(summary.service_type, ""),
            temporal_url=temporal_link.format(workflow_id=quote(workflow_id, safe="")) if temporal_link else "")
        team = summary.assigned_team or (ENFORCEMENT_TEAM if summary.workflow_type == "EnforcementWorkflow" else UNASSIGNED)
        teams.setdefault(team, []).append((due_at, row))
    far = datetime.max.replace(tzinfo=UTC)
    return [TeamQueue(team, tuple(row for _, row in sorted(rows, key=lambda item: (item[0] or far, item[1].case_id))))
            for team, rows in sorted(teams.items(), key=lambda item: (item[0] == UNASSIGNED, item[0]))]


def _queue_what(summary: case_pb2.CaseSummary) -> str:
    if summary.change_no:
        kind = CHANGE_KINDS.get(summary.change_kind, words(summary.change_kind)) if summary.change_kind else ""
        return f"Change {summary.change_no}" + (f": {kind.lower()}" if kind else "")
    if summary.workflow_type == "EnforcementWorkflow":
        return "Enforcement"
    return "Case"


def _queue_href(summary: case_pb2.CaseSummary) -> str:
    if summary.change_no:
        return f"/cases/{quote(summary.case_id)}/changes/{summary.change_no}/review"
    return f"/cases/{quote(summary.case_id)}"


def case_why(summary: case_pb2.CaseSummary) -> str:
    """Why the work is in the queue, in words."""
    if summary.change_no:
        because = REVIEW_REASONS.get(summary.review_reason, words(summary.review_reason).lower())
        return f"The change waits for a caseworker's review: {because}" if because else \
            "The change waits for a caseworker's review"
    if summary.workflow_type == "EnforcementWorkflow":
        step = words(summary.enforcement_step).lower() if summary.enforcement_step else "its next step"
        return f"Enforcement needs a caseworker at {step}: an approval or a decision"
    if summary.caseworker_reason:
        return summary.caseworker_reason
    return f"Waiting for a caseworker at the {STAGES.get(summary.stage, summary.stage).lower()} stage"


@dataclass(frozen=True)
class ChangeRow:
    case_id: str
    change_no: int
    kind: str
    why: str
    team: str
    clock: str          # "Day 5 of 28", "3 days over the 28 days"
    due: str
    breached: bool
    nearly_breached: bool
    status: str
    needs_caseworker: bool
    effective: str


def change_row(change: case_pb2.ChangeItem) -> ChangeRow:
    days_left = SLA_DAYS - change.age_days
    open_change = change.status != "cleared"
    if not open_change:
        clock = f"Cleared on day {change.age_days} of {SLA_DAYS}" + (" (late)" if change.breached else "")
    elif change.breached:
        clock = f"Breached: {plural(max(change.age_days - SLA_DAYS, 0), 'day')} over the {SLA_DAYS} days"
    else:
        clock = f"Day {change.age_days} of {SLA_DAYS}: {plural(max(days_left, 0), 'day')} left"
    return ChangeRow(
        case_id=change.case_id, change_no=change.change_no, kind=CHANGE_KINDS.get(change.kind, words(change.kind)),
        why=change_why(change), team=change.assigned_team or UNASSIGNED, clock=clock,
        due=moment_text(instant(change.sla_due_at)), breached=change.breached and open_change,
        nearly_breached=open_change and not change.breached and days_left <= NEARLY_BREACHED_DAYS,
        status=words(change.status), needs_caseworker=change.needs_caseworker,
        effective=day_text(change.effective_date))


def change_why(change: case_pb2.ChangeItem) -> str:
    """Why the change is in a queue, in words."""
    if change.status == "cleared":
        outcome = words(change.outcome) if change.outcome else "Cleared"
        return f"{outcome}: {change.reason}" if change.reason else outcome
    if change.needs_caseworker:
        because = REVIEW_REASONS.get(change.review_reason, words(change.review_reason).lower())
        return f"Waiting for a caseworker's review: {because}" if because else "Waiting for a caseworker's review"
    if change.breached:
        return "Not decided within 28 days"
    return "Being decided automatically"


def breach_rows(changes: Iterable[case_pb2.ChangeItem]) -> list[ChangeRow]:
    """Open changes breached or within NEARLY_BREACHED_DAYS of breaching, breached first."""
    rows = [change_row(change) for change in changes if change.status != "cleared"]
    kept = [row for row in rows if row.breached or row.nearly_breached]
    return sorted(kept, key=lambda row: not row.breached)


@dataclass(frozen=True)
class SuspenseRow:
    bank_reference: str
    claimed_case_id: str
    amount: str
    received: str
    why: str


def suspense_rows(items: Iterable[payments_pb2.SuspenseItem]) -> list[SuspenseRow]:
    rows = []
    for item in items:
        why = (f"The payment names case {item.claimed_case_id}, which is not on Collect & Pay or not known"
               if item.claimed_case_id else "The payment names no case")
        rows.append(SuspenseRow(item.bank_reference, item.claimed_case_id, money(item.amount_pence),
                                day_text(item.received_on), why))
    return rows


# --- the case page ---------------------------------------------------------------------------

@dataclass(frozen=True)
class PartyView:
    role: str
    party_id: str
    rows: tuple[tuple[str, str], ...]    # (label, value) with withheld values in words
    withheld: bool


def party_view(role: str, party: case_pb2.Party) -> PartyView:
    rows, withheld = [], False
    for name, label in PARTY_FIELDS:
        value = getattr(party, name)
        if value == REDACTED:
            withheld = True
            rows.append((label, "Withheld"))
        elif value:
            rows.append((label, value))
    return PartyView(role, party.party_id, tuple(rows), withheld)


@dataclass(frozen=True)
class ChildView:
    child_id: str
    born: str
    qualifies_until: str
    in_education: bool
    shared_care_nights: int


def child_view(child: case_pb2.Child) -> ChildView:
    try:
        born = date.fromisoformat(child.date_of_birth)
    except ValueError:
        return ChildView(child.child_id, child.date_of_birth, "", child.in_full_time_education, child.shared_care_nights)
    until = last_qualifying_day(born, child.in_full_time_education)
    return ChildView(child.child_id, day_text(born), day_text(until), child.in_full_time_education,
                     child.shared_care_nights)


@dataclass(frozen=True)
class LiabilityEntry:
    when: str
    weekly: str
    what: str


@dataclass(frozen=True)
class CaseView:
    case_id: str
    stage: str
    service_type: str
    safeguarded: bool
    on_hold: bool
    closed: bool
    needs_caseworker: bool
    caseworker_reason: str
    sla_due: str
    parties: tuple[PartyView, ...]
    protected_shown: bool
    children: tuple[ChildView, ...]
    liability: tuple[tuple[str, str], ...]
    explanation: str
    liability_history: tuple[LiabilityEntry, ...]
    open_changes: tuple[ChangeRow, ...]
    key_dates: tuple[tuple[str, str], ...]
    timeline: tuple[tuple[str, str, str], ...] = ()
    balance: tuple[tuple[str, str], ...] = ()
    statement: tuple[tuple[str, str, str, str, str], ...] = ()
    letters: tuple[LetterRow, ...] = ()
    risk: tuple[str, tuple[str, ...]] | None = None
    unavailable: tuple[str, ...] = field(default_factory=tuple)   # parts a service could not give


def liability_rows(case: case_pb2.Case) -> tuple[tuple[str, str], ...]:
    if not case.HasField("liability") or not case.liability.rate:
        return ()
    liability = case.liability
    rows = [("Rate", words(liability.rate)), ("Weekly liability", money(liability.weekly_liability_pence)),
            ("From", day_text(liability.effective_date))]
    if liability.paying_parent_pays_pence:
        rows.append(("Paying parent pays a week", money(liability.paying_parent_pays_pence)))
    if liability.receiving_parent_receives_pence:
        rows.append(("Receiving parent receives a week", money(liability.receiving_parent_receives_pence)))
    return tuple(rows)


# Timeline entries that explain the liability: a calculation, a decided change, a revised default.
_EXPLAINING_KINDS = frozenset({"calculation", "change_cleared", "default_revised", "review_income"})


def latest_explanation(timeline: Sequence[case_pb2.TimelineEntry]) -> str:
    """The newest timeline text that explains the liability (a calculation or a decided change)."""
    for entry in reversed(timeline):
        if entry.text and entry.kind in _EXPLAINING_KINDS:
            return entry.text
    return ""


def liability_history(case: case_pb2.Case, changes: Iterable[case_pb2.ChangeItem]) -> tuple[LiabilityEntry, ...]:
    """Each liability the case had: the first decision, then every change that set one (newest first)."""
    entries = [LiabilityEntry(day_text(change.effective_date) or moment_text(instant(change.cleared_at)),
                              money(change.weekly_liability_pence),
                              f"{CHANGE_KINDS.get(change.kind, words(change.kind))} (change {change.change_no}): "
                              f"{words(change.outcome) if change.outcome else 'decided'}")
               for change in changes if change.has_weekly_liability and change.status == "cleared"]
    if case.initial_effective_date:
        entries.append(LiabilityEntry(day_text(case.initial_effective_date), "", "First calculation"))
    return tuple(entries)


def case_view(case: case_pb2.Case, now: datetime, changes: Sequence[case_pb2.ChangeItem] = (),
              timeline: Sequence[case_pb2.TimelineEntry] = (), protected_shown: bool = False) -> CaseView:
    parties = tuple(party_view(role, getattr(case, role)) for role in ("receiving_parent", "paying_parent")
                    if case.HasField(role))
    open_changes = tuple(change_row(change) for change in changes if change.status != "cleared")
    key_dates = tuple((label, day_text(value)) for label, value in (
        ("Application date", case.application_date), ("Initial effective date", case.initial_effective_date),
        ("Next annual review", case.next_review_date), ("Closed on", case.closed_on)) if value)
    return CaseView(
        case_id=case.case_id, stage=STAGES.get(case.stage, case.stage),
        service_type=SERVICE_TYPES.get(case.service_type, "Not decided"), safeguarded=case.safeguarded,
        on_hold=case.on_hold, closed=case.stage == "Closed", needs_caseworker=case.needs_caseworker,
        caseworker_reason=case.caseworker_reason,
        sla_due=moment_text(instant(case.sla_due_at)) if case.HasField("sla_due_at") else "",
        parties=parties, protected_shown=protected_shown,
        children=tuple(child_view(child) for child in case.children), liability=liability_rows(case),
        explanation=latest_explanation(timeline), liability_history=liability_history(case, changes),
        open_changes=open_changes, key_dates=key_dates,
        timeline=tuple((moment_text(instant(entry.at)), day_text(entry.day), entry.text or words(entry.kind))
                       for entry in reversed(timeline)),
    )


def balance_rows(balance: payments_pb2.Balance) -> tuple[tuple[str, str], ...]:
    rows = [("Arrears", money(balance.arrears_pence)), ("Paid to date", money(balance.paid_to_date_pence))]
    if balance.next_payment_due:
        rows.append(("Next payment", f"{money(balance.next_payment_pence)} due {day_text(balance.next_payment_due)}"))
    for label, pence in (("Enforcement charges", balance.enforcement_charges_pence), ("In credit", balance.credit_pence),
                         ("Collected, not yet passed on", balance.payable_to_receiving_parent_pence),
                         ("Overpaid to the receiving parent", balance.overpaid_to_receiving_parent_pence)):
        if pence:
            rows.append((label, money(pence)))
    return tuple(rows)


def statement_rows(statement: payments_pb2.Statement) -> tuple[tuple[str, str, str, str, str], ...]:
    return tuple((day_text(line.date), line.description, money(line.due_pence) if line.due_pence else "",
                  money(line.paid_pence) if line.paid_pence else "", money(line.balance_pence))
                 for line in statement.lines)


LETTER_STATUSES = {"queued": "Waiting to send", "sent": "Sent", "delivered": "Delivered", "failed": "Failed",
                   "for_caseworker": "Needs a caseworker"}
CHANNELS = {notifications_pb2.CHANNEL_EMAIL: "Email", notifications_pb2.CHANNEL_SMS: "Text message",
            notifications_pb2.CHANNEL_LETTER: "Letter"}


@dataclass(frozen=True)
class LetterRow:
    when: str
    what: str
    to: str
    status: str
    notification_id: str
    printable: bool      # a letter: its PDF can be previewed


def letter_rows(letters: Iterable[notifications_pb2.Notification], roles: dict[str, str]) -> tuple[LetterRow, ...]:
    """Letters and messages sent, newest first; the recipient by their role in the case."""
    ordered = sorted(letters, key=lambda letter: letter.created_at, reverse=True)
    return tuple(LetterRow(
        when=moment_text(datetime.fromisoformat(letter.created_at)) if letter.created_at else "",
        what=f"{words(letter.template)} ({CHANNELS.get(letter.channel, 'Letter')})",
        to=roles.get(letter.recipient_party_id, "A party"),
        status=LETTER_STATUSES.get(letter.status, words(letter.status)),
        notification_id=letter.notification_id, printable=letter.channel == notifications_pb2.CHANNEL_LETTER)
        for letter in ordered)


def risk_view(score: risk_pb2.CaseScore) -> tuple[str, tuple[str, ...]] | None:
    if not score.band:
        return None
    band = f"{words(score.band)} risk of payments breaking down within 8 weeks"
    if not score.eligible:
        band += " (not eligible for early intervention)"
    return band, tuple(reason.text for reason in score.reasons)


COLLECT_AND_PAY = COLLECT_AND_PAY_REASONS


def nearly_breached_before(now: datetime, seconds_per_day: float) -> datetime:
    """Open changes due before this instant are breached or nearly breached."""
    return now + timedelta(seconds=NEARLY_BREACHED_DAYS * seconds_per_day)
