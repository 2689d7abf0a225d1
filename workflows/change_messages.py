"""The messages of ChangeWorkflow (workflows/change.py): its input, the caseworker's review
decision and answer, its status and outcome, and the change as reported.

In a module of their own, imported through the workflow sandbox (passed through), so they are
defined once per worker process instead of once per change workflow the worker runs: the
dataclass definitions were most of what re-importing the workflow module cost each change.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

# The statutory date rules a case takes up at the start of a run (CaseState.date_rules); the case
# passes them to its changes, whose rules (domain.changes.CaseContext) follow them.
# Patch: a new relevant other child counts from the day the service was told (reg 18(3)(a) backdates
# only a child who stops counting).
NEW_ROC_FROM_DAY_TOLD_PATCH = "new-relevant-other-child-from-day-told"
# Patch: a child qualifies until the 31 August after their 16th birthday, and after it only while
# reported as continuing in education, to the terminal date after leaving (domain.lifecycle.
# last_qualifying_day); leaving or continuing in education is a recorded fact of the case.
QUALIFYING_DATES_PATCH = "qualifying-child-terminal-dates"
# Patch: a young person reported as continuing in full-time non-advanced education after their
# qualifying dates passed qualifies again, while under 20, from the day the service was told.
CONTINUING_EDUCATION_RESTORES_PATCH = "continuing-education-restores-child"
# Patch: an income figure HMRC reports is historic income, recorded and taken at the next annual
# review (reg 20); only a parent's report, once accepted, is current income (reg 34).
HMRC_INCOME_HISTORIC_PATCH = "hmrc-income-is-historic"
DATE_RULE_PATCHES = (NEW_ROC_FROM_DAY_TOLD_PATCH, QUALIFYING_DATES_PATCH, CONTINUING_EDUCATION_RESTORES_PATCH,
                     HMRC_INCOME_HISTORIC_PATCH)

@dataclass
class ReportedChange:
    """A change as a parent, HMRC or a caseworker reports it (plain JSON from any channel)."""

    __strict_json__ = True  # unknown keys refused by the strict data converter (not a field)

    kind: str = ""
    reported_date: str = ""      # ISO date it was reported
    effective_date: str = ""     # ISO date it happened, or is expected to happen
    reported_by: str = "paying_parent"
    details: dict[str, Any] = field(default_factory=dict)
    evidence_disputed: bool = False
    idempotency_key: str = ""
    # A caseworker recording a day of notification earlier than the day the report arrives says
    # why here (domain.changes.day_told); the change then goes to a caseworker's review.
    notification_reason: str = ""

    def as_raw(self) -> dict[str, Any]:
        raw = {"kind": self.kind, "reported_date": self.reported_date, "effective_date": self.effective_date,
               "reported_by": self.reported_by, "details": self.details,
               "evidence_disputed": self.evidence_disputed}
        if self.notification_reason:
            raw["notification_reason"] = self.notification_reason
        return raw


@dataclass
class ChangeInput:
    case_id: str
    n: int
    change: ReportedChange
    current_inputs: dict[str, Any]   # the case's calculation request (the `cms calculate` request, docs/design.md)
    safeguarded: bool = False
    seconds_per_day: float = 86400.0
    # False only on the time-skipping test server, which cannot register custom search attributes.
    publish_search_attributes: bool = True
    today: str = ""                  # case-calendar date on receipt; defaults to the reported date
    initial_effective_date: str = ""
    annual_review_date: str = ""     # set while an annual review is in progress
    # In that review, income reported meets the 25% test against the HMRC figure it takes.
    review_income_test: bool = False
    # ISO date the default decision the case is on took effect: income revises it from then.
    default_decision_from: str = ""
    # Why the case is on Collect & Pay where leaving it needs a caseworker (s.4(2A)); "" otherwise.
    collect_and_pay_grounds: str = ""
    # The case workflow to tell when the change clears (signal `change_cleared`); empty: nobody.
    # A signal by workflow ID reaches the case's latest run even after it continued-as-new.
    parent_workflow_id: str = ""
    # The statutory date rules the case had taken up (workflows.case_changes.DATE_RULE_PATCHES).
    date_rules: list[str] = field(default_factory=list)
    # Children whose qualifying dates passed, by id: {"receiving_parent_id", "date_of_birth",
    # "shared_care_nights"} (domain.changes.StoppedChild); a report of continuing education restores one.
    stopped_children: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class ReviewDecision:
    """A caseworker's answer. Defaults let the validator name a missing field in plain words."""

    __strict_json__ = True  # unknown keys refused by the strict data converter (not a field)

    outcome: str = ""        # apply | reject
    reason: str = ""
    reviewer: str = ""
    corrected_details: dict[str, Any] | None = None  # apply with corrected details (e.g. verified nights)


@dataclass
class ReviewAnswer:
    outcome: str
    reason: str


@dataclass
class ChangeStatus:
    stage: str               # deciding | awaiting_review | applying | cleared
    needs_caseworker: bool
    assigned_team: str
    review_reason: str | None
    escalated: bool
    breached: bool
    case_day: int


@dataclass
class ChangeOutcome:
    case_id: str
    n: int
    kind: str
    outcome: str             # recalculated | no_change | recorded | case_closure | rejected
    reason: str
    effective_date: str
    new_inputs: dict[str, Any]
    liability: dict[str, Any] | None
    weekly_liability_pence: int | None
    adjustment_pence: int
    on_time: bool
    escalated: bool
    breached: bool
    cleared_day: str
    reviewed_by: str = ""
    # The change as applied (details as corrected by a caseworker), for the case to replay in
    # effective-date order alongside other changes.
    applied_change: dict[str, Any] = field(default_factory=dict)
    reported_date: str = ""


def change_workflow_id(case_id: str, n: int) -> str:
    return f"case-{case_id}/change-{n}"


# --- what the case workflow keeps about its changes -------------------------------------------
@dataclass
class ChangeReceipt:
    change_no: int
    workflow_id: str
    already_existed: bool
    needs_caseworker: bool
    assigned_team: str
    sla_due_at: str          # ISO instant


@dataclass
class ReportedAgainst:
    """The case a change was reported against: which annual review came next, and the paying
    parent's weekly income in the liability then in force (None: no liability yet, or a default)."""

    reviews_done: int
    review_date: str
    weekly_income_pence: int | None
    in_review: bool = False   # reported while that review was in progress


@dataclass
class ChangeLedger:
    """What the case knows about its changes; carried whole across continue-as-new."""

    last_no: int = 0
    receipts: dict[str, ChangeReceipt] = field(default_factory=dict)   # idempotency key -> first answer
    open: list[int] = field(default_factory=list)
    # Inputs before the changes below, and the changes that counted: replaying them in
    # effective-date order gives the case's inputs whatever order they cleared in.
    base_inputs: dict[str, Any] | None = None
    applied: list[dict[str, Any]] = field(default_factory=list)        # {"n": int, "change": raw change}
    cleared: list[int] = field(default_factory=list)
    # Annual reviews done when base_inputs was taken: a later review took the applied changes in.
    base_reviews: int = 0
    # Per open change (str(n)): the case as it was reported, for folding it into a review.
    reported_before: dict[str, ReportedAgainst] = field(default_factory=dict)
    # Whether the paying parent's income was known when base_inputs was taken (False: a default
    # decision, the income shown as £0 in them); None in ledgers kept before this was recorded.
    base_income_known: bool | None = None
    # Per open change (str(n)): what of the case it was decided on beyond its facts, kept with it
    # when it applies so a replay decides it the same way ({"review_income_test": true,
    # "default_decision_from": "<ISO date>"}); absent for changes reported before these rules.
    decided_with: dict[str, dict[str, Any]] = field(default_factory=dict)

    def rebase(self, inputs: dict[str, Any], reviews: int = 0, income_known: bool | None = None) -> None:
        """Start again from `inputs`: nothing in flight, or an annual review took the applied changes in."""
        self.base_inputs = copy.deepcopy(inputs)
        self.base_reviews = reviews
        self.base_income_known = income_known
        self.applied = []
