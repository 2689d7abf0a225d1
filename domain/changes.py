"""Changes of circumstances (docs/rules.md section 9): pure rules, no I/O, no clock.

A parent (or HMRC, or a caseworker) reports a change with the date it was reported and the date
it happened or will happen. :func:`parse_change` validates it; :func:`decide` says whether it
changes the calculation, what the new calculation input is, from which date, why (in plain words
for the letter to both parents), and whether a caseworker must look at it first.

Rules applied (docs/rules.md):

* a change is dated from the day the service was told: the case-calendar day the report arrives.
  A date a parent or HMRC gives for that is not taken; a caseworker may record an earlier day of
  notification, with a reason, and the change then goes to a caseworker (:func:`day_told`);
* an income change outside the annual review counts only if it is at least 25% of the income
  used in the current calculation (reg 23). Income reported in the 30 days before an annual
  review meets the same test against the HMRC figure that review takes (reg 34(2)(a)), where the
  case says so (``CaseContext.review_income_test``); before that, any change flowed through;
* a shared-care change counts only when a child's nights cross a band edge (52 / 104 / 156 / 175);
* an income figure HMRC reports is historic income: recorded, taken at the next annual review
  (reg 20), never current income, which is what a parent reports and the service accepts (reg 34;
  ``CaseContext.hmrc_income_is_historic``);
* a young person reported as continuing in education after their qualifying dates passed
  qualifies again from the day told, while under 20 (reg 76; ``CaseContext.stopped_children``);
* a special expenses variation at or above its ground's threshold (rule set, reg 68) is taken off
  income from the day applied for (reg 56) once a caseworker agrees it; never below the flat rate
  (reg 74(1A), in the calculation);
* flat-rate benefit start or stop, a child leaving or leaving education, and relevant other
  children count from the date of the change (reg 18(3));
* an income increase the paying parent was obliged to report counts from the date it happened,
  so late reporting creates arrears (reg 18(4)); the duty is a fact of the case, from the day the
  paying parent was sent notice of it (:func:`duty_to_report_increase`);
* income that arrives while the case is on a default decision revises that decision from the date
  it took effect (s.16(3) CSA 1991), where the case gives that date (``CaseContext.default_decision_from``);
* anything else counts from the date it was reported, or the later date it is expected to
  happen (reg 18(2), 18(6)).

A caseworker reviews a change first when its evidence is disputed, when safeguarding applies to
a change that can reveal where someone lives or works, or when the rules cannot decide.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import Enum
from fractions import Fraction
from typing import Any

from domain.calculation import calculate, parse_request
from domain.calculation.income import current_replaces_historic, historic_weekly_income
from domain.date_window import date_window
from domain.lifecycle import add_years
from domain.money import format_pence, round_half_up
from domain.payments.schedule import Frequency, Rate, adjustments, period_containing, rates_after_change
from domain.rulesets import RuleSet, packaged_rule_sets, rules_for
from domain.service_type import return_to_direct_pay_review

INCOME_TOLERANCE = Fraction(25, 100)
# How far ahead a change may be reported (reg 18(2): a change expected to happen).
FUTURE_WINDOW = timedelta(days=92)
SLA_DAYS = 28
ESCALATION_DAY = 21
MAX_NIGHTS = 366
ROC_COUNTED_UP_TO = 3

REPORTERS = ("paying_parent", "receiving_parent", "hmrc", "caseworker")
PARTIES = ("paying_parent", "receiving_parent")
SERVICE_TYPES = ("direct_pay", "collect_and_pay")
SERVICE_TYPE_LABELS = {"direct_pay": "Direct Pay", "collect_and_pay": "Collect & Pay"}


class ChangeKind(str, Enum):
    PAYING_PARENT_INCOME = "paying_parent_income"
    SHARED_CARE_NIGHTS = "shared_care_nights"
    CHILD_ADDED = "child_added"
    CHILD_LEFT = "child_left"
    CHILD_LEFT_EDUCATION = "child_left_education"
    CHILD_CONTINUING_EDUCATION = "child_continuing_education"
    RELEVANT_OTHER_CHILDREN = "relevant_other_children"
    FLAT_RATE_BENEFIT_STARTED = "flat_rate_benefit_started"
    FLAT_RATE_BENEFIT_STOPPED = "flat_rate_benefit_stopped"
    ADDRESS = "address"
    EMPLOYMENT = "employment"
    SERVICE_TYPE = "service_type"
    CLOSE_REQUEST = "close_request"
    SPECIAL_EXPENSES_VARIATION = "special_expenses_variation"


CHANGE_KINDS = tuple(kind.value for kind in ChangeKind)

# Kinds that can reveal where a parent lives or works, or be used to pressure the other
# parent: in a safeguarded case a caseworker checks them before anything is sent (docs/design.md, Security and safeguarding).
SAFEGUARDING_SENSITIVE = frozenset({
    ChangeKind.ADDRESS, ChangeKind.EMPLOYMENT, ChangeKind.SERVICE_TYPE, ChangeKind.CLOSE_REQUEST,
})

# Review reasons -> the caseworker queue (AssignedTeam) that takes them.
REVIEW_TEAMS = {
    "variation": "changes-review",
    "evidence_disputed": "changes-disputes",
    "safeguarding": "changes-safeguarding",
    "rules_cannot_decide": "changes-review",
    "earlier_notification": "changes-review",
}
AUTOMATIC_TEAM = "changes"
SENIOR_TEAM = "changes-senior"


class ChangeValidationError(ValueError):
    """Bad change input. ``field`` is the path of the offending field (e.g. ``details.nights``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Change:
    kind: ChangeKind
    reported_date: date
    effective_date: date  # when it happened, or is expected to happen
    reported_by: str = "paying_parent"
    details: Mapping[str, Any] = field(default_factory=dict)
    evidence_disputed: bool = False
    # Why a caseworker recorded a day of notification earlier than the day the report arrived.
    notification_reason: str = ""


@dataclass(frozen=True)
class CaseContext:
    safeguarded: bool = False
    closed: bool = False
    initial_effective_date: date | None = None
    # Set while an annual review is in progress: its review date (docs/rules.md).
    annual_review_date: date | None = None
    # A new relevant other child counts from the day the service was told; only one who stops
    # counting goes back to the date of the change (reg 18(3)(a)). False only for a case whose
    # recorded history decided it the earlier way.
    new_roc_from_day_told: bool = True
    # A child's education is a fact of the case, whose own calendar stops the child qualifying at
    # the terminal date after leaving (docs/rules.md, Qualifying children): a report of leaving or
    # of continuing in education is recorded, not a recalculation from the leaving date. False
    # only for a case whose recorded history decided it the earlier way.
    education_is_a_fact: bool = True
    # In an annual review, income reported meets the 25% test against the HMRC figure the review
    # takes (reg 34(2)(a)); False: any income change flows into the review (cases decided before).
    review_income_test: bool = False
    # While the case is on a default decision: the date it took effect. Income that arrives then
    # revises the default from that date (s.16(3) CSA 1991). None: not on a default, or not said.
    default_decision_from: date | None = None
    # Why the case is on Collect & Pay, where leaving it needs a caseworker
    # (domain.service_type.collect_and_pay_grounds); "" otherwise.
    collect_and_pay_grounds: str = ""
    # Children whose qualifying dates have passed on the case's calendar (not those who left the
    # case), by child id: a report that one continues in education makes them qualify again.
    # Empty for a case whose recorded history decided such a report the earlier way.
    stopped_children: Mapping[str, StoppedChild] = field(default_factory=dict)
    # An income figure HMRC reports is historic income, taken at the next annual review (reg 20,
    # reg 34); only what a parent reports, once accepted, is current income. False only for a
    # case whose recorded history decided HMRC's report as current income.
    hmrc_income_is_historic: bool = False


@dataclass(frozen=True)
class StoppedChild:
    """A child who stopped qualifying when their qualifying dates passed (reg 76)."""

    receiving_parent_id: str
    date_of_birth: date
    shared_care_nights: int = 0


@dataclass(frozen=True)
class ChangeDecision:
    counts: bool                 # the calculation changes
    new_inputs: dict[str, Any]   # the calculation request after the change (unchanged if not counts)
    effective_date: date
    reason: str                  # plain words for the letter to both parents
    outcome: str                 # recalculated | no_change | recorded | case_closure
    review_reason: str | None = None  # evidence_disputed | safeguarding | rules_cannot_decide

    @property
    def needs_review(self) -> bool:
        return self.review_reason is not None

    @property
    def team(self) -> str:
        return REVIEW_TEAMS[self.review_reason] if self.review_reason else AUTOMATIC_TEAM

    @property
    def closes_case(self) -> bool:
        return self.outcome == "case_closure"


def stopped_children_from_json(stopped: Mapping[str, Mapping[str, Any]]) -> dict[str, StoppedChild]:
    """A case's stopped children as the workflows carry them (JSON: receiving_parent_id,
    date_of_birth, shared_care_nights), by child id."""
    return {child_id: StoppedChild(child["receiving_parent_id"], date.fromisoformat(child["date_of_birth"]),
                                   child.get("shared_care_nights", 0))
            for child_id, child in stopped.items()}


# --- parsing and validation ---------------------------------------------------------------

_DETAIL_FIELDS: dict[ChangeKind, tuple[frozenset[str], frozenset[str]]] = {
    # kind: (required, optional)
    ChangeKind.PAYING_PARENT_INCOME: (frozenset({"weekly_income_pence"}), frozenset({"duty_to_report"})),
    ChangeKind.SHARED_CARE_NIGHTS: (frozenset({"child_id", "nights"}), frozenset()),
    ChangeKind.CHILD_ADDED: (frozenset({"receiving_parent_id", "child_id"}),
                             frozenset({"shared_care_nights", "date_of_birth"})),
    ChangeKind.CHILD_LEFT: (frozenset({"child_id"}), frozenset()),
    ChangeKind.CHILD_LEFT_EDUCATION: (frozenset({"child_id"}), frozenset()),
    ChangeKind.CHILD_CONTINUING_EDUCATION: (frozenset({"child_id"}), frozenset()),
    ChangeKind.RELEVANT_OTHER_CHILDREN: (frozenset({"count"}), frozenset()),
    ChangeKind.FLAT_RATE_BENEFIT_STARTED: (frozenset(), frozenset()),
    ChangeKind.FLAT_RATE_BENEFIT_STOPPED: (frozenset(), frozenset()),
    # The new address itself goes to the case read model, never into a workflow.
    ChangeKind.ADDRESS: (frozenset({"party"}), frozenset()),
    ChangeKind.EMPLOYMENT: (frozenset({"party", "status"}), frozenset({"weekly_income_pence", "duty_to_report"})),
    ChangeKind.SERVICE_TYPE: (frozenset({"service_type"}), frozenset()),
    ChangeKind.CLOSE_REQUEST: (frozenset(), frozenset()),
    ChangeKind.SPECIAL_EXPENSES_VARIATION: (frozenset({"ground", "weekly_pence"}), frozenset()),
}
# Special expenses a paying parent may ask to have taken off their income (regs 63-67); the
# weekly threshold of each is in the rule set (`variations`).
SPECIAL_EXPENSE_GROUNDS = {
    "contact_costs": "the costs of keeping in contact with a qualifying child",
    "relevant_other_child_disability": "the costs of a relevant other child's illness or disability",
    "prior_debts": "repaying debts taken on while the parents were a couple",
    "boarding_school_fees": "the boarding part of a qualifying child's school fees",
    "former_home_mortgage": "the mortgage, loan or insurance on the former family home",
}
VARIATION_APPLICANTS = ("paying_parent", "caseworker")


def detail_fields(kind: str) -> tuple[frozenset[str], frozenset[str]]:
    """The details a change of `kind` carries: (required, optional) field names."""
    return _DETAIL_FIELDS[ChangeKind(kind)]


def _iso_date(value: Any, path: str) -> date:
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        raise ChangeValidationError(path, "must be an ISO date (YYYY-MM-DD)")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ChangeValidationError(path, f"must be an ISO date (YYYY-MM-DD), got {value!r}") from None


def _count(value: Any, path: str, upper: int | None = None) -> int:
    if type(value) is not int or value < 0:
        raise ChangeValidationError(path, f"must be a whole number, 0 or more, got {value!r}")
    if upper is not None and value > upper:
        raise ChangeValidationError(path, f"must be at most {upper}, got {value}")
    return value


def _text(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ChangeValidationError(path, "must be a non-empty string")
    return value


def _one_of(value: Any, allowed: Sequence[str], path: str) -> str:
    if value not in allowed:
        raise ChangeValidationError(path, f"must be one of {', '.join(allowed)}; got {value!r}")
    return value


def check_details(kind: ChangeKind, details: Any) -> dict[str, Any]:
    if details is None:
        details = {}
    if not isinstance(details, Mapping):
        raise ChangeValidationError("details", "must be a JSON object")
    required, optional = _DETAIL_FIELDS[kind]
    for key in details:
        if key not in required | optional:
            allowed = ", ".join(sorted(required | optional)) or "none"
            raise ChangeValidationError(f"details.{key}", f"unknown field for {kind.value} (allowed: {allowed})")
    for key in sorted(required):
        if key not in details:
            raise ChangeValidationError(f"details.{key}", f"is required for {kind.value}")
    checked = dict(details)
    for key, value in details.items():
        path = f"details.{key}"
        if key in ("weekly_income_pence", "count", "weekly_pence"):
            _count(value, path)
        elif key == "ground":
            _one_of(value, tuple(SPECIAL_EXPENSE_GROUNDS), path)
        elif key in ("nights", "shared_care_nights"):
            _count(value, path, MAX_NIGHTS)
        elif key in ("child_id", "receiving_parent_id"):
            _text(value, path)
        elif key == "party":
            _one_of(value, PARTIES, path)
        elif key == "status":
            _one_of(value, ("started", "stopped"), path)
        elif key == "service_type":
            _one_of(value, SERVICE_TYPES, path)
        elif key == "date_of_birth":
            born = _iso_date(value, path)
            # A birth may precede the scheme; one beyond the window would overflow the child's
            # 20th-birthday arithmetic in the workflow.
            if born > date_window().latest:
                raise ChangeValidationError(path, f"{born.isoformat()} is implausibly far ahead")
        elif key == "duty_to_report" and type(value) is not bool:
            raise ChangeValidationError(path, "must be true or false")
    return checked


def parse_change(raw: Mapping[str, Any], today: date) -> Change:
    """Validates a reported change against the calendar's today; raises ChangeValidationError."""
    kind_value = raw.get("kind")
    if kind_value not in CHANGE_KINDS:
        raise ChangeValidationError("kind", f"unknown change kind {kind_value!r}; known: {', '.join(CHANGE_KINDS)}")
    kind = ChangeKind(kind_value)
    reported = _iso_date(raw.get("reported_date"), "reported_date")
    effective = _iso_date(raw.get("effective_date"), "effective_date")
    if reported > today:
        raise ChangeValidationError("reported_date", f"{reported} is in the future (today is {today})")
    if effective > today + FUTURE_WINDOW:
        latest = today + FUTURE_WINDOW
        raise ChangeValidationError(
            "effective_date", f"{effective} is more than 3 months ahead (latest allowed {latest})"
        )
    earliest = packaged_rule_sets()[0].effective_from
    if effective < earliest:
        raise ChangeValidationError("effective_date", f"{effective} is before the 2012 scheme rules ({earliest})")
    disputed = raw.get("evidence_disputed", False)
    if type(disputed) is not bool:
        raise ChangeValidationError("evidence_disputed", "must be true or false")
    reporter = _one_of(raw.get("reported_by", "paying_parent"), REPORTERS, "reported_by")
    notification_reason = raw.get("notification_reason", "")
    if not isinstance(notification_reason, str):
        raise ChangeValidationError("notification_reason", "must be a string")
    if kind == ChangeKind.SPECIAL_EXPENSES_VARIATION and reporter not in VARIATION_APPLICANTS:
        raise ChangeValidationError("reported_by", "a special expenses variation is the paying parent's application "
                                                   "(or a caseworker's on their behalf)")
    if notification_reason.strip() and reporter != "caseworker":
        raise ChangeValidationError("notification_reason", "only a caseworker records an earlier day of notification")
    return Change(
        kind=kind,
        reported_date=reported,
        effective_date=effective,
        reported_by=reporter,
        details=check_details(kind, raw.get("details")),
        evidence_disputed=disputed,
        notification_reason=notification_reason.strip(),
    )


def day_told(reported_by: str, claimed: str, today: date, notification_reason: str = "") -> date:
    """The day the service was told of a change, which a change counts from unless the law says
    otherwise (s.17(4) CSA 1991, reg 18(6)): the case-calendar day the report arrives, `today`.

    A date that comes with a parent's or HMRC's report (`claimed`) is not taken: nobody sets the
    day told from outside. A caseworker may record an earlier day (a report that reached the
    service earlier and was not taken in then), only with `notification_reason`; such a change
    goes to a caseworker's review (:func:`review_reason`). Raises ChangeValidationError."""
    if reported_by != "caseworker" or not claimed:
        return today
    told = _iso_date(claimed, "reported_date")
    if told > today:
        raise ChangeValidationError("reported_date", f"{told} is in the future (today is {today})")
    if told < today and not notification_reason.strip():
        raise ChangeValidationError("notification_reason", f"is required to record {told} as the day the service "
                                                           f"was told: the report arrived on {today}")
    return told


def duty_to_report_increase(notice_sent_on: date | None, happened_on: date) -> bool:
    """Whether the paying parent had a duty to report an income increase that happened on
    `happened_on` (reg 9A Information Regs): the duty holds from the day the case sent them
    notice of it (the initial decision letter includes it), whatever a report says."""
    return notice_sent_on is not None and happened_on >= notice_sent_on


def check_against_case(change: Change, inputs: Mapping[str, Any], context: CaseContext) -> None:
    """Checks that need the case: it is open and the change names children it has."""
    if context.closed:
        raise ChangeValidationError("case_id", "the case is closed; a change cannot be reported on it")
    child_ids = {c["id"] for rp in inputs.get("receiving_parents", []) for c in rp.get("children", [])}
    if change.kind == ChangeKind.CHILD_CONTINUING_EDUCATION:
        child_ids |= set(context.stopped_children)   # they may qualify again
    child = change.details.get("child_id")
    if change.kind == ChangeKind.CHILD_ADDED:
        if child in child_ids:
            raise ChangeValidationError("details.child_id", f"child {child!r} is already on the case")
    elif child is not None and child not in child_ids:
        raise ChangeValidationError("details.child_id", f"child {child!r} is not on the case")


# --- decisions ------------------------------------------------------------------------------

def _current_gross_weekly_income(inputs: Mapping[str, Any], on: date) -> int:
    stated = inputs["paying_parent"].get("gross_weekly_income_pence")
    if stated is not None:
        return stated
    return calculate(parse_request(inputs), effective_date=on).gross_weekly_income_pence


def income_change_counts(old_pence: int, new_pence: int, in_annual_review: bool = False) -> bool:
    """Reg 23: outside an annual review only a change of at least 25% of the income used counts."""
    if new_pence == old_pence:
        return False
    if in_annual_review or old_pence == 0:
        return True
    return abs(new_pence - old_pence) >= INCOME_TOLERANCE * old_pence


def shared_care_band(nights: int, rules: RuleSet) -> int:
    """Index of the band the nights fall in: -1 below the first band (0-51), then 0, 1, 2, 3."""
    return sum(1 for band in rules.shared_care_bands if nights >= band.from_nights) - 1


def _band_label(nights: int, rules: RuleSet) -> str:
    starts = [band.from_nights for band in rules.shared_care_bands]
    index = shared_care_band(nights, rules)
    low = 0 if index < 0 else starts[index]
    high = starts[index + 1] - 1 if index + 1 < len(starts) else None
    return f"{low}+" if high is None else f"{low}–{high}"


def _default_effective(change: Change) -> date:
    # reg 18(6): from the date it was reported; reg 18(2): or the later date it is expected.
    return max(change.reported_date, change.effective_date)


def _children_of(inputs: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [child for rp in inputs["receiving_parents"] for child in rp["children"]]


def _decision(counts: bool, inputs: dict, effective: date, reason: str, outcome: str | None = None) -> ChangeDecision:
    return ChangeDecision(counts, inputs, effective, reason, outcome or ("recalculated" if counts else "no_change"))


def _decide_income(change: Change, inputs: dict, context: CaseContext, new_pence: int) -> ChangeDecision:
    if context.default_decision_from is not None and change.reported_by != "receiving_parent":
        return _revise_default(change, inputs, context.default_decision_from, new_pence)
    if change.reported_by == "hmrc" and context.hmrc_income_is_historic:
        return _decision(False, inputs, _default_effective(change),
                         f"HMRC reported the paying parent's income as {format_pence(new_pence)} a week. A figure from "
                         "HMRC is historic income: it does not change the calculation now, and the figure HMRC holds "
                         "is taken at the next annual review (reg 20). Current income is what a parent reports and "
                         "the service accepts; it replaces historic income only when the two differ by 25% or more "
                         "(reg 34(2)(a)).", "recorded")
    in_review = context.annual_review_date is not None
    old = _current_gross_weekly_income(inputs, _default_effective(change))
    # In a review with the test, `old` is the HMRC figure the review takes (the case's facts).
    counts = income_change_counts(old, new_pence, in_review and not context.review_income_test)
    increase = new_pence > old
    if change.details.get("duty_to_report") and increase:
        effective = change.effective_date  # reg 18(4): from when it happened; late reporting -> arrears
    else:
        effective = _default_effective(change)
    if context.annual_review_date is not None:   # in review: never before the review date
        effective = max(effective, context.annual_review_date)
    moved = f"from {format_pence(old)} to {format_pence(new_pence)} a week"
    if not counts:
        if new_pence == old:
            return _decision(False, inputs, effective, f"The paying parent's income is unchanged ({format_pence(old)} a week).")
        percent = _percent(abs(new_pence - old), old)
        if in_review:
            return _decision(False, inputs, effective,
                             f"The paying parent's income changed by {percent} ({moved}), less than 25% of the HMRC "
                             "figure the annual review takes, so the review uses the HMRC figure.")
        return _decision(False, inputs, effective,
                         f"The paying parent's income changed by {percent} ({moved}), less than 25% of the income "
                         "used in the calculation, so the calculation stays the same until the annual review.")
    updated = copy.deepcopy(inputs)
    updated["paying_parent"].pop("income", None)
    updated["paying_parent"]["gross_weekly_income_pence"] = new_pence
    if in_review:
        why = f"The paying parent's income changed {moved}; this is taken into the annual review."
    elif old == 0:
        why = f"The paying parent's income changed {moved}."
    else:
        why = f"The paying parent's income changed by {_percent(abs(new_pence - old), old)} ({moved}), 25% or more."
    return _decision(True, updated, effective, f"{why} The calculation is redone from {effective.isoformat()}.")


def _revise_default(change: Change, inputs: dict, default_from: date, new_pence: int) -> ChangeDecision:
    """Income for a case on a default decision: the decision is revised, not superseded, so the
    calculation on the income counts from the date the default took effect (s.16(3) CSA 1991)
    and what that changes for payments already due is arrears (or a credit)."""
    updated = copy.deepcopy(inputs)
    updated["paying_parent"].pop("income", None)
    updated["paying_parent"]["gross_weekly_income_pence"] = new_pence
    return _decision(True, updated, default_from,
                     f"The paying parent's income is now known ({format_pence(new_pence)} a week). The default "
                     f"decision is revised: the calculation on this income applies from {default_from.isoformat()}, "
                     "the date the default decision took effect.")


def _percent(part: int, whole: int) -> str:
    # Whole percent, rounded down, so 24.9% never reads as "25%".
    return f"{(part * 100) // whole}%"


def _decide_shared_care(change: Change, inputs: dict) -> ChangeDecision:
    effective = _default_effective(change)
    rules = rules_for(effective)
    child_id, nights = change.details["child_id"], change.details["nights"]
    child = next((c for c in _children_of(inputs) if c["id"] == child_id), None)
    if child is None:
        # Only in a replay in date order: a change dated earlier took the child off the case.
        return _decision(False, inputs, effective, f"Child {child_id} is no longer on the case on "
                                                   f"{effective.isoformat()}, so their shared care does not count.")
    before = child.get("shared_care_nights", 0) or 0
    if shared_care_band(before, rules) == shared_care_band(nights, rules):
        return _decision(False, inputs, effective,
                         f"Shared care for child {child_id} changed from {before} to {nights} nights a year, still in the "
                         f"{_band_label(nights, rules)} nights band, so the calculation stays the same.")
    updated = copy.deepcopy(inputs)
    next(c for c in _children_of(updated) if c["id"] == child_id)["shared_care_nights"] = nights
    return _decision(True, updated, effective,
                     f"Shared care for child {child_id} changed from {before} to {nights} nights a year, moving from the "
                     f"{_band_label(before, rules)} to the {_band_label(nights, rules)} nights band. The calculation is "
                     f"redone from {effective.isoformat()}.")


def _decide_child_removed(change: Change, inputs: dict, why: str) -> ChangeDecision:
    child_id = change.details["child_id"]
    effective = change.effective_date  # reg 18(3)(a): from the date of the change
    updated = copy.deepcopy(inputs)
    for rp in updated["receiving_parents"]:
        rp["children"] = [c for c in rp["children"] if c["id"] != child_id]
    updated["receiving_parents"] = [rp for rp in updated["receiving_parents"] if rp["children"]]
    if not updated["receiving_parents"]:
        return _decision(True, inputs, effective,
                         f"Child {child_id} {why} on {effective.isoformat()}. No qualifying child is left, so the "
                         "calculation ends from that date; any arrears stay payable.", "case_closure")
    return _decision(True, updated, effective,
                     f"Child {child_id} {why} on {effective.isoformat()} and is no longer a qualifying child. The "
                     f"calculation is redone from that date.")


def _decide_child_restored(change: Change, inputs: dict, child: StoppedChild) -> ChangeDecision:
    """A young person reported as continuing in full-time non-advanced education after they
    stopped qualifying qualifies again while under 20 (reg 76): from the day the service was told
    (reg 18(6)), or the later day it is expected; only a child who stops counting is backdated."""
    child_id = change.details["child_id"]
    effective = _default_effective(change)
    twentieth = add_years(child.date_of_birth, 20)
    if effective >= twentieth:
        return _decision(False, inputs, effective,
                         f"Child {child_id} turned 20 on {twentieth.isoformat()}, so they no longer qualify, "
                         "whatever their education.")
    updated = copy.deepcopy(inputs)
    restored = {"id": child_id, "shared_care_nights": child.shared_care_nights}
    parent = next((rp for rp in updated["receiving_parents"] if rp["id"] == child.receiving_parent_id), None)
    if parent is None:
        updated["receiving_parents"].append({"id": child.receiving_parent_id, "children": [restored]})
    else:
        parent["children"].append(restored)
    last = (twentieth - timedelta(days=1)).isoformat()
    return _decision(True, updated, effective,
                     f"Child {child_id} continues in full-time non-advanced education, so they qualify again from "
                     f"{effective.isoformat()}, the day the service was told, while they do and at most until {last}, "
                     f"the day before their 20th birthday. The calculation is redone from {effective.isoformat()}.")


def _variation_refused(change: Change, inputs: Mapping[str, Any], context: CaseContext) -> str | None:
    """Why a special expenses variation is refused at the first look (reg 57, reg 68), or None."""
    effective = _default_effective(change)
    if context.default_decision_from is not None:
        return "A variation cannot be considered while a default decision is in force (reg 57)."
    if inputs["paying_parent"].get("flat_rate_benefit"):
        return ("A variation cannot be considered while the paying parent pays the flat rate because of a benefit "
                "(reg 57).")
    ground, weekly = change.details["ground"], change.details["weekly_pence"]
    threshold = rules_for(effective).special_expense_thresholds_pence.get(ground, 0)
    if weekly < threshold:
        return (f"The special expenses of {format_pence(weekly)} a week for {SPECIAL_EXPENSE_GROUNDS[ground]} are "
                f"below the threshold of {format_pence(threshold)} a week, so they are not taken off the paying "
                "parent's income.")
    return None


def _decide_variation(change: Change, inputs: dict, context: CaseContext) -> ChangeDecision:
    """A special expenses variation (regs 63-67): the weekly amount agreed is taken off the paying
    parent's income (reg 72) from the day the application was made (reg 56), on top of any agreed
    before. It never takes liability below the flat rate (reg 74(1A), in the calculation)."""
    effective = _default_effective(change)
    refused = _variation_refused(change, inputs, context)
    if refused:
        return _decision(False, inputs, effective, refused)
    ground, weekly = change.details["ground"], change.details["weekly_pence"]
    updated = copy.deepcopy(inputs)
    before = updated["paying_parent"].get("special_expenses_weekly_pence", 0) or 0
    updated["paying_parent"]["special_expenses_weekly_pence"] = before + weekly
    return _decision(True, updated, effective,
                     f"A variation for {SPECIAL_EXPENSE_GROUNDS[ground]} is agreed: {format_pence(weekly)} a week is "
                     f"taken off the paying parent's income from {effective.isoformat()}, the day the application "
                     "was made. A variation never takes the amount below the flat rate. The calculation is redone "
                     f"from {effective.isoformat()}.")


def _decide_child_added(change: Change, inputs: dict) -> ChangeDecision:
    rp_id, child_id = change.details["receiving_parent_id"], change.details["child_id"]
    effective = _default_effective(change)  # reg 18(5): as a new application's effective date
    updated = copy.deepcopy(inputs)
    child = {"id": child_id, "shared_care_nights": change.details.get("shared_care_nights", 0)}
    parent = next((rp for rp in updated["receiving_parents"] if rp["id"] == rp_id), None)
    if parent is None:
        updated["receiving_parents"].append({"id": rp_id, "children": [child]})
    else:
        parent["children"].append(child)
    return _decision(True, updated, effective,
                     f"Child {child_id} is now a qualifying child. The calculation is redone from {effective.isoformat()}.")


def _decide_roc(change: Change, inputs: dict, context: CaseContext) -> ChangeDecision:
    before = inputs["paying_parent"].get("relevant_other_children", 0) or 0
    after = change.details["count"]
    # reg 18(3)(a): a child who stops counting, from the date of the change; a new one counts
    # from the day the service was told (reg 18(6)), or the later day it is expected.
    effective = change.effective_date
    if after > before and context.new_roc_from_day_told:
        effective = _default_effective(change)
    if min(before, ROC_COUNTED_UP_TO) == min(after, ROC_COUNTED_UP_TO):
        return _decision(False, inputs, effective,
                         f"Relevant other children changed from {before} to {after}; the calculation counts them only up "
                         f"to {ROC_COUNTED_UP_TO}, so it stays the same.")
    updated = copy.deepcopy(inputs)
    updated["paying_parent"]["relevant_other_children"] = after
    return _decision(True, updated, effective,
                     f"Relevant other children changed from {before} to {after}. The calculation is redone from "
                     f"{effective.isoformat()}.")


def _decide_benefit(change: Change, inputs: dict, receiving: bool) -> ChangeDecision:
    effective = change.effective_date  # reg 18(3)(d): from the date of the change
    word = "started" if receiving else "stopped"
    if bool(inputs["paying_parent"].get("flat_rate_benefit")) == receiving:
        return _decision(False, inputs, effective,
                         f"The paying parent's flat-rate benefit was reported as {word}, which the calculation already uses.")
    updated = copy.deepcopy(inputs)
    updated["paying_parent"]["flat_rate_benefit"] = receiving
    return _decision(True, updated, effective,
                     f"The paying parent's flat-rate benefit {word} on {effective.isoformat()}. The calculation is redone "
                     "from that date.")


def _decide_service_type(change: Change, inputs: dict) -> ChangeDecision:
    effective = _default_effective(change)
    wanted = change.details["service_type"]
    label = SERVICE_TYPE_LABELS[wanted]
    if inputs.get("service_type", "direct_pay") == wanted:
        return _decision(False, inputs, effective, f"The case already uses {label}.")
    updated = copy.deepcopy(inputs)
    updated["service_type"] = wanted
    return _decision(True, updated, effective,
                     f"The service type changes to {label} from {effective.isoformat()}"
                     + (", with collection fees." if wanted == "collect_and_pay" else ", without collection fees."))


def _rules_cannot_decide(change: Change, inputs: Mapping[str, Any], context: CaseContext) -> str | None:
    """Why the rules alone cannot decide this change, or None."""
    if context.initial_effective_date and change.effective_date < context.initial_effective_date:
        return "the change is dated before the case's initial effective date"
    if change.kind == ChangeKind.PAYING_PARENT_INCOME and change.reported_by == "receiving_parent":
        return "the paying parent's income was reported by the receiving parent and needs evidence"
    if change.kind == ChangeKind.CHILD_ADDED:
        known = {rp["id"] for rp in inputs["receiving_parents"]}
        if change.details["receiving_parent_id"] not in known:
            return "the child belongs to a receiving parent who is not on the case"
    return None


def review_reason(change: Change, inputs: Mapping[str, Any], context: CaseContext) -> str | None:
    if change.evidence_disputed:
        return "evidence_disputed"
    if context.safeguarded and change.kind in SAFEGUARDING_SENSITIVE:
        return "safeguarding"
    if change.notification_reason:
        return "earlier_notification"   # a caseworker recorded an earlier day told (day_told)
    if change.kind == ChangeKind.SPECIAL_EXPENSES_VARIATION and _variation_refused(change, inputs, context) is None:
        return "variation"   # the grounds and the amount need evidence a caseworker weighs
    if change.kind == ChangeKind.SERVICE_TYPE:
        leaving = return_to_direct_pay_review(context.collect_and_pay_grounds, change.reported_by,
                                              change.details["service_type"])
        if leaving:
            return leaving
    if _rules_cannot_decide(change, inputs, context):
        return "rules_cannot_decide"
    return None


def apply_rules(change: Change, inputs: Mapping[str, Any], context: CaseContext) -> ChangeDecision:
    """What the change does to the calculation, ignoring whether a caseworker must look first."""
    current = copy.deepcopy(dict(inputs))
    kind = change.kind
    if kind == ChangeKind.PAYING_PARENT_INCOME:
        return _decide_income(change, current, context, change.details["weekly_income_pence"])
    if kind == ChangeKind.EMPLOYMENT:
        if "weekly_income_pence" in change.details:
            return _decide_income(change, current, context, change.details["weekly_income_pence"])
        return _decision(False, current, _default_effective(change),
                         f"Employment {change.details['status']} recorded; no new income was given, so the calculation "
                         "stays the same.", "recorded")
    if kind == ChangeKind.SHARED_CARE_NIGHTS:
        return _decide_shared_care(change, current)
    if kind == ChangeKind.CHILD_ADDED:
        return _decide_child_added(change, current)
    if kind == ChangeKind.CHILD_LEFT:
        return _decide_child_removed(change, current, "left the case")
    if kind == ChangeKind.CHILD_LEFT_EDUCATION and context.education_is_a_fact:
        return _decision(False, current, change.effective_date,
                         f"Child {change.details['child_id']} left full-time non-advanced education on "
                         f"{change.effective_date.isoformat()}. They still qualify until the terminal date after "
                         "leaving (the last day of February, May, August or November), never before the 31 August "
                         "after their 16th birthday and never after the day before their 20th birthday.", "recorded")
    if kind == ChangeKind.CHILD_LEFT_EDUCATION:
        return _decide_child_removed(change, current, "left full-time education")
    if kind == ChangeKind.CHILD_CONTINUING_EDUCATION and change.details["child_id"] in context.stopped_children:
        return _decide_child_restored(change, current, context.stopped_children[change.details["child_id"]])
    if kind == ChangeKind.CHILD_CONTINUING_EDUCATION:
        return _decision(False, current, _default_effective(change),
                         f"Child {change.details['child_id']} continues in full-time non-advanced education, so they "
                         "keep qualifying after the 31 August after their 16th birthday while they do, up to the day "
                         "before their 20th birthday.", "recorded")
    if kind == ChangeKind.RELEVANT_OTHER_CHILDREN:
        return _decide_roc(change, current, context)
    if kind in (ChangeKind.FLAT_RATE_BENEFIT_STARTED, ChangeKind.FLAT_RATE_BENEFIT_STOPPED):
        return _decide_benefit(change, current, kind == ChangeKind.FLAT_RATE_BENEFIT_STARTED)
    if kind == ChangeKind.SERVICE_TYPE:
        return _decide_service_type(change, current)
    if kind == ChangeKind.ADDRESS:
        return _decision(False, current, _default_effective(change),
                         "The new address is recorded; it does not change the calculation.", "recorded")
    if kind == ChangeKind.SPECIAL_EXPENSES_VARIATION:
        return _decide_variation(change, current, context)
    if kind == ChangeKind.CLOSE_REQUEST:
        effective = _default_effective(change)
        return _decision(True, current, effective,
                         f"The receiving parent asked the service to stop; the calculation ends on {effective.isoformat()}. "
                         "Any arrears stay payable.", "case_closure")
    raise AssertionError(f"no rule for {kind}")  # parse_change admits only known kinds


def decide(change: Change, inputs: Mapping[str, Any], context: CaseContext, reviewed: bool = False) -> ChangeDecision:
    """The decision on one change. ``reviewed``: a caseworker has accepted it, so no review is asked."""
    decision = apply_rules(change, inputs, context)
    reason = None if reviewed else review_reason(change, inputs, context)
    if reason is None:
        return decision
    return ChangeDecision(decision.counts, decision.new_inputs, decision.effective_date, decision.reason,
                          decision.outcome, review_reason=reason)


# --- several changes, annual review, money ----------------------------------------------------

def in_effective_order(changes: Iterable[tuple[int, Change]]) -> list[tuple[int, Change]]:
    """Several changes to one case apply in effective-date order; same date -> order received."""
    return sorted(changes, key=lambda numbered: (numbered[1].effective_date, numbered[0]))


def apply_in_order(inputs: Mapping[str, Any], changes: Iterable[tuple[int, Change]],
                   context: CaseContext, contexts: Mapping[int, CaseContext] | None = None,
                   ) -> tuple[dict[str, Any], list[tuple[int, ChangeDecision]]]:
    """Applies changes one after another in effective-date order; returns the final inputs.
    `contexts` gives a change the case context it was reported in (e.g. during an annual review,
    where no income tolerance applies), when that differs from `context`."""
    current = copy.deepcopy(dict(inputs))
    decisions = []
    for number, change in in_effective_order(changes):
        decision = apply_rules(change, current, (contexts or {}).get(number, context))
        decisions.append((number, decision))
        if decision.counts and not decision.closes_case:
            current = decision.new_inputs
    return current, decisions


def fold_into_review(review_inputs: Mapping[str, Any], changes: Iterable[tuple[int, Change]],
                     review_date: date) -> tuple[dict[str, Any], list[tuple[int, ChangeDecision]]]:
    """Changes reported during an annual review are taken into it: no 25% tolerance, and none
    takes effect before the review date (the review supersedes from that date)."""
    return apply_in_order(review_inputs, changes, CaseContext(annual_review_date=review_date))


def review_keeps_current_income(hmrc_annual_pence: int, current_weekly_pence: int, review_date: date) -> bool:
    """At an annual review the new HMRC figure is used (reg 20), with no 25% test against the old
    one; but current income the case is on (reported and accepted) stays when it differs from
    that figure by at least 25% of it, either way, or the figure is nil and current income is not
    (reg 34(2)(a), (2A)). Compared on weekly figures, as the calculation does."""
    rules = rules_for(review_date)
    return current_replaces_historic(historic_weekly_income(hmrc_annual_pence, rules), current_weekly_pence, rules)


def liability_adjustment_pence(old_weekly_pence: int, new_weekly_pence: int, effective_date: date,
                               applied_from: date) -> int:
    """The change's own measure of a backdated liability: the weekly difference for each day from
    the effective date to the day the change cleared (+ more owed, − overpaid), liability only.
    Not what falls due: payments charges by period, with the collection fee, so the amount owed
    is :func:`backdated_arrears_pence` (change_records.arrears_pence)."""
    days = (applied_from - effective_date).days
    if days <= 0:
        return 0
    return round_half_up(Fraction((new_weekly_pence - old_weekly_pence) * days, 7))


@dataclass(frozen=True)
class WeeklyAmounts:
    """A weekly liability and the paying parent's weekly collection fee on it (0 on Direct Pay)."""

    liability_pence: int
    fee_pence: int = 0


def backdated_arrears_pence(frequency: str, schedule_start: date, old: WeeklyAmounts, new: WeeklyAmounts,
                            effective_date: date, today: date, first_collection: date | None = None) -> int:
    """What a recalculation dated back to `effective_date` adds (+) or takes off (−) for the
    payments already due by `today`, period by period as payments charges them
    (domain.payments.schedule, payment due on the first day of each period): each such period's
    instalment with the new amounts from `effective_date`, less its instalment at the old ones,
    collection fee included. On Collect & Pay it is what the ledger posts as adjustments once the
    periods due have been charged; on Direct Pay, what the paying parent owes the receiving
    parent for payments already made. Assumes the old amounts were in force from the start of
    the first period it touches (an earlier recalculation dated after `effective_date` is not
    seen; :func:`arrears_between_rates` takes the whole history instead). `first_collection`:
    Collect & Pay's first collection, the initial arrears spread (domain.payments.schedule)."""

    if effective_date >= today or today < schedule_start:
        return 0
    before = (Rate(schedule_start, old.liability_pence, old.fee_pence),)
    after = rates_after_change(before, Rate(max(effective_date, schedule_start), new.liability_pence, new.fee_pence))
    return arrears_between_rates(frequency, schedule_start, before, after, today, first_collection)


def arrears_between_rates(frequency: str, schedule_start: date, before: Sequence[Rate], after: Sequence[Rate],
                          today: date, first_collection: date | None = None) -> int:
    """What moving from the liability history `before` to `after` (each a list of amounts in force
    from a date until the next one) adds (+) or takes off (−) for the payments already due by
    `today`, period by period as payments charges them, collection fee included. A change applied
    after changes dated later than it recalculates several dates at once (workflows.case_changes,
    patch "change-out-of-order-arrears"): only the whole histories give what it changed."""

    if today < schedule_start:
        return 0

    def rates(history: Sequence[Rate]) -> tuple[Rate, ...]:
        return tuple(Rate(max(rate.effective_from, schedule_start), rate.weekly_pence, rate.weekly_fee_pence)
                     for rate in sorted(history, key=lambda rate: rate.effective_from))

    cadence = Frequency(frequency)
    due = list(range(period_containing(cadence, schedule_start, today) + 1))
    return sum(a.amount_delta_pence + a.fee_delta_pence
               for a in adjustments(cadence, schedule_start, rates(before), rates(after), due,
                                    first_collection=first_collection))


def liability_json(inputs: Mapping[str, Any], effective_date: date) -> dict[str, Any]:
    """The calculation result of docs/design.md, Contracts on the effective date's rules."""
    return calculate(parse_request(inputs), effective_date=effective_date).to_json()


def sla_due(received: date) -> date:
    return received + timedelta(days=SLA_DAYS)


__all__ = [
    "CHANGE_KINDS", "CaseContext", "Change", "ChangeDecision", "ChangeKind",
    "ChangeValidationError", "ESCALATION_DAY", "SENIOR_TEAM", "SLA_DAYS", "StoppedChild", "WeeklyAmounts", "apply_in_order",
    "apply_rules", "arrears_between_rates", "backdated_arrears_pence",
    "check_against_case", "day_told", "decide", "duty_to_report_increase", "fold_into_review", "in_effective_order",
    "income_change_counts", "liability_adjustment_pence", "liability_json", "parse_change",
    "review_keeps_current_income", "review_reason", "shared_care_band",
]


def backdated_arrears_words(arrears_pence: int, effective: date, service_type: str) -> str:
    """What a letter tells both parents when a change dated in the past also changes payments
    already due: by how much, and how that is settled on the case's service type."""
    amount = format_pence(abs(arrears_pence))
    since = f"The new amount applies from {effective.isoformat()}, so it also changes the payments already due"
    if service_type == "collect_and_pay":
        if arrears_pence > 0:
            return (f"{since}: {amount} more is owed for them, collection fee included. It is added to the paying "
                    "parent's account as arrears and shows on the statement.")
        return (f"{since}: {amount} less was owed for them, collection fee included. It is credited to the paying "
                "parent's account and shows on the statement.")
    if arrears_pence > 0:
        return (f"{since}: {amount} more is owed for them. On Direct Pay the paying parent pays this to the "
                "receiving parent directly, on top of the new regular amount.")
    return (f"{since}: {amount} less was owed for them. On Direct Pay the parents settle this between them, "
            "for example by reducing the next payments.")
