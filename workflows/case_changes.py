"""Changes of circumstances on a case workflow: the `report_change` update, the `change_cleared`
signal and the `open_changes` query, as a mixin the case workflow inherits (Temporal collects
handlers from base classes). The host implements a few hooks: the ledger it carries, the case's
facts as the rules need them, and taking a cleared change into the case
(workflows/case_change_applier.py for the CaseWorkflow).

Each change runs as a child `case-<case_id>/change-<n>` with parent-close policy ABANDON (a
case that continues-as-new at its annual review must not cancel open changes) and reports back
with the `change_cleared` signal, which reaches the case's latest run by workflow ID.

The ledger keeps the case's facts before the changes in flight (its base) and the changes that
counted; replaying them in effective-date order gives the case's facts whatever order the changes
cleared in (patch "change-out-of-order-dates"; see workflows/case_change_applier.py).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from domain import changes as rules
    from workflows.change import ChangeInput, ChangeOutcome, ChangeWorkflow, ReportedChange, change_workflow_id
    from workflows.change_messages import (
        HMRC_INCOME_HISTORIC_PATCH,
        NEW_ROC_FROM_DAY_TOLD_PATCH,
        QUALIFYING_DATES_PATCH,
        ChangeLedger,
        ChangeReceipt,
        ReportedAgainst,
    )

# Re-exported: callers import the change types of a case from here.
__all__ = ["CaseChanges", "ChangeCaseFacts", "ChangeLedger", "ChangeReceipt", "FactsFrom", "ReportedAgainst",
           "inputs_from_each_date", "replay_applied"]

# Patch: changes fold into an annual review (workflows/case_change_applier.py).
FOLD_INTO_REVIEW_PATCH = "change-folds-into-review"
# Patch: a change that clears after changes dated later than it recalculates from its own date on
# the facts as they stood then, and again from each later change's date.
OUT_OF_ORDER_PATCH = "change-out-of-order-dates"
# Patch: a paying parent's request to return to Direct Pay from a case on Collect & Pay because
# payment was unlikely or on domestic-abuse grounds goes to a caseworker (s.4(2A) CSA 1991).
RETURN_TO_DIRECT_PAY_PATCH = "return-to-direct-pay-reviewed"
INCOME_KINDS = ("paying_parent_income", "employment")
# Patch: a change is dated from the day the service was told (the case-calendar day the report
# arrives); a parent's or HMRC's own reported date is not taken (domain.changes.day_told).
DAY_TOLD_PATCH = "change-dated-from-day-told"
# Patch: whether the paying parent had a duty to report an income increase is the case's fact
# (notice sent with the initial decision), not the report's (reg 18(4)).
INCOME_DUTY_PATCH = "income-duty-from-notice"
# Patch: income reported in the 30 days before an annual review meets the 25% test against the
# HMRC figure that review takes (reg 34(2)(a)).
REVIEW_WINDOW_TEST_PATCH = "review-window-income-test"
# Patch: income reported while the case is on a default decision revises it from the date the
# default took effect (s.16(3) CSA 1991).
DEFAULT_REVISION_PATCH = "default-revised-from-its-date"


@dataclass
class ChangeCaseFacts:
    case_id: str
    inputs: dict[str, Any]
    today: date
    closed: bool = False
    safeguarded: bool = False
    initial_effective_date: date | None = None
    annual_review_date: date | None = None
    seconds_per_day: float = 86400.0
    publish_search_attributes: bool = True
    # Whether the paying parent's income is known (False: the case is on a default decision and
    # `inputs` show £0 for it); None when the host does not say.
    income_known: bool | None = None
    # The statutory date rules the case has taken up (CaseState.date_rules).
    date_rules: tuple[str, ...] = ()
    # The day the paying parent was sent notice of the duty to report an income increase (with
    # the initial decision); None: not yet, or the host does not say.
    income_duty_notice_on: date | None = None
    # While the case is on a default decision: the date it took effect; else None.
    default_decision_from: date | None = None
    # Why the case is on Collect & Pay where leaving it needs a caseworker; "" otherwise.
    collect_and_pay_grounds: str = ""
    # Children whose qualifying dates passed, who may qualify again (ChangeInput.stopped_children).
    stopped_children: dict[str, dict[str, Any]] = field(default_factory=dict)

    def context(self) -> rules.CaseContext:
        return rules.CaseContext(safeguarded=self.safeguarded, closed=self.closed,
                                 initial_effective_date=self.initial_effective_date,
                                 annual_review_date=self.annual_review_date,
                                 new_roc_from_day_told=NEW_ROC_FROM_DAY_TOLD_PATCH in self.date_rules,
                                 education_is_a_fact=QUALIFYING_DATES_PATCH in self.date_rules,
                                 collect_and_pay_grounds=self.collect_and_pay_grounds,
                                 hmrc_income_is_historic=HMRC_INCOME_HISTORIC_PATCH in self.date_rules,
                                 stopped_children=rules.stopped_children_from_json(self.stopped_children))



def _invalid(error: rules.ChangeValidationError) -> ApplicationError:
    if error.field == "case_id":
        return ApplicationError(error.message, type="FailedPrecondition")
    return ApplicationError(f"{error.field}: {error.message}", error.field, type="InvalidArgument")


def _with_reported_date(request: ReportedChange, today: date) -> ReportedChange:
    """No reported date means today on the case calendar (what a channel reporting now means)."""
    if request.reported_date:
        return request
    return dataclasses.replace(request, reported_date=today.isoformat())


def _as_told(request: ReportedChange, today: date) -> ReportedChange:
    """The change dated from the day the service was told (domain.changes.day_told): today on the
    case calendar, or the earlier day a caseworker recorded with a reason."""
    told = rules.day_told(request.reported_by, request.reported_date, today, request.notification_reason)
    return dataclasses.replace(request, reported_date=told.isoformat())


def _with_case_duty(request: ReportedChange, notice_on: date | None) -> ReportedChange:
    """An income change carries the case's answer to whether its increase had to be reported, in
    place of whatever the report said (domain.changes.duty_to_report_increase)."""
    if "weekly_income_pence" not in request.details:
        return request
    happened = date.fromisoformat(request.effective_date)
    duty = rules.duty_to_report_increase(notice_on, happened)
    return dataclasses.replace(request, details={**request.details, "duty_to_report": duty})


class CaseChanges:
    """Mixin: changes of circumstances for a case workflow (see the module docstring)."""

    def _change_ledger(self) -> ChangeLedger:
        raise NotImplementedError

    def _change_case_facts(self) -> ChangeCaseFacts:
        raise NotImplementedError

    async def _change_applied(self, outcome: ChangeOutcome, inputs: dict[str, Any]) -> None:
        raise NotImplementedError

    # Optional hooks: a host without annual reviews keeps these defaults.
    def _change_reviews_done(self) -> int:
        return 0

    def _change_reported(self, n: int) -> None:
        """Note what the case was when change `n` was reported."""

    async def _change_ready(self, outcome: ChangeOutcome) -> None:
        """Wait, if the case must first finish something the change depends on."""

    @workflow.update
    async def report_change(self, request: ReportedChange) -> ChangeReceipt:
        ledger = self._change_ledger()
        if request.idempotency_key in ledger.receipts:
            first = ledger.receipts[request.idempotency_key]
            return ChangeReceipt(**{**first.__dict__, "already_existed": True})
        facts = self._change_case_facts()
        if facts.collect_and_pay_grounds and not workflow.patched(RETURN_TO_DIRECT_PAY_PATCH):
            facts = dataclasses.replace(facts, collect_and_pay_grounds="")
        request = self._as_reported(request, facts)
        change = rules.parse_change(request.as_raw(), facts.today)
        context = self._decision_context(facts)
        decision = rules.decide(change, facts.inputs, context)
        ledger.last_no += 1
        n = ledger.last_no
        decided_with = _decided_with(context)
        if decided_with:
            ledger.decided_with[str(n)] = decided_with
        if ledger.base_inputs is None or (not ledger.open and not self._ledger_still_gives(facts)):
            # Nothing else in flight: the case's facts already hold every cleared change.
            ledger.rebase(facts.inputs, self._change_reviews_done(), facts.income_known)
        self._change_reported(n)
        child_id = change_workflow_id(facts.case_id, n)
        await workflow.start_child_workflow(
            ChangeWorkflow.run,
            ChangeInput(case_id=facts.case_id, n=n, change=request, current_inputs=facts.inputs,
                        safeguarded=facts.safeguarded, seconds_per_day=facts.seconds_per_day,
                        publish_search_attributes=facts.publish_search_attributes, today=facts.today.isoformat(),
                        initial_effective_date=facts.initial_effective_date.isoformat()
                        if facts.initial_effective_date else "",
                        annual_review_date=facts.annual_review_date.isoformat() if facts.annual_review_date else "",
                        review_income_test=context.review_income_test,
                        default_decision_from=context.default_decision_from.isoformat()
                        if context.default_decision_from else "",
                        collect_and_pay_grounds=facts.collect_and_pay_grounds,
                        parent_workflow_id=workflow.info().workflow_id, date_rules=list(facts.date_rules),
                        stopped_children=facts.stopped_children),
            id=child_id,
            parent_close_policy=ParentClosePolicy.ABANDON,
        )
        due = workflow.now() + timedelta(seconds=rules.SLA_DAYS * facts.seconds_per_day)
        receipt = ChangeReceipt(n, child_id, False, decision.needs_review, decision.team, due.isoformat())
        if request.idempotency_key:
            ledger.receipts[request.idempotency_key] = receipt
        ledger.open.append(n)
        return receipt

    def _as_reported(self, request: ReportedChange, facts: ChangeCaseFacts) -> ReportedChange:
        """The change as the case takes it: dated from the day told, and an income change with the
        case's duty to report (each behind its patch)."""
        if not workflow.patched(DAY_TOLD_PATCH):
            return _with_reported_date(request, facts.today)
        told = _as_told(request, facts.today)
        if request.reported_date and request.reported_date != told.reported_date:
            workflow.logger.info("reported date not taken", extra={"case_id": facts.case_id})
        if told.kind in INCOME_KINDS and workflow.patched(INCOME_DUTY_PATCH):
            told = _with_case_duty(told, facts.income_duty_notice_on)
        return told

    def _decision_context(self, facts: ChangeCaseFacts) -> rules.CaseContext:
        """The case context a change is decided in: its facts, and (behind their patches) the 25%
        test in an annual review and the date of a default decision the case is on."""
        context = facts.context()
        if facts.annual_review_date is not None and workflow.patched(REVIEW_WINDOW_TEST_PATCH):
            context = dataclasses.replace(context, review_income_test=True)
        if facts.default_decision_from is not None and workflow.patched(DEFAULT_REVISION_PATCH):
            context = dataclasses.replace(context, default_decision_from=facts.default_decision_from)
        return context

    def _ledger_still_gives(self, facts: ChangeCaseFacts) -> bool:
        """Whether the ledger is kept with no change open (patch "change-out-of-order-dates"): its
        base and applied changes still give the case's facts exactly (nothing else changed them,
        no annual review since), so a change reported now and dated before those changes can be
        recalculated on the facts of its own date. Otherwise it starts again from the case's facts."""
        ledger = self._change_ledger()
        if not ledger.applied or self._change_reviews_done() != ledger.base_reviews:
            return False
        if replay_applied(ledger, facts) != facts.inputs:
            return False
        return workflow.patched(OUT_OF_ORDER_PATCH)

    @report_change.validator
    def _validate_report_change(self, request: ReportedChange) -> None:
        if request.idempotency_key in self._change_ledger().receipts:
            return  # a resubmission: answered with the first result
        facts = self._change_case_facts()
        try:
            # A validator runs only for a new request, never in a replay: it checks the change as
            # the case now takes it, dated from the day told.
            change = rules.parse_change(_as_told(request, facts.today).as_raw(), facts.today)
            rules.check_against_case(change, facts.inputs, facts.context())
        except rules.ChangeValidationError as error:
            raise _invalid(error) from None

    @workflow.signal
    async def change_cleared(self, outcome: ChangeOutcome) -> None:
        ledger = self._change_ledger()
        if outcome.n in ledger.cleared:
            return  # a duplicate signal is harmless
        ledger.cleared.append(outcome.n)
        await self._change_ready(outcome)
        if outcome.n in ledger.open:
            ledger.open.remove(outcome.n)
        facts = self._change_case_facts()
        if self._change_reviews_done() > ledger.base_reviews and workflow.patched(FOLD_INTO_REVIEW_PATCH):
            # An annual review since: its inputs hold every change applied before it.
            ledger.rebase(facts.inputs, self._change_reviews_done(), facts.income_known)
        if outcome.outcome in ("recalculated", "case_closure") and outcome.applied_change:
            reported = ledger.reported_before.get(str(outcome.n))
            in_review = reported.review_date if reported and reported.in_review else ""
            entry = {"n": outcome.n, "change": outcome.applied_change, "in_review": in_review}
            entry.update(ledger.decided_with.get(str(outcome.n), {}))
            ledger.applied.append(entry)
        inputs = replay_applied(ledger, facts)
        await self._change_applied(outcome, inputs)
        ledger.reported_before.pop(str(outcome.n), None)
        ledger.decided_with.pop(str(outcome.n), None)

    @workflow.query
    def open_changes(self) -> list[int]:
        return list(self._change_ledger().open)


@dataclass(frozen=True)
class FactsFrom:
    """The case's calculation request as it stood from a date, and whether the paying parent's
    income was known by then (None: not recorded, the case's current facts decide)."""

    on: date
    inputs: dict[str, Any]
    income_known: bool | None



def replay(ledger: ChangeLedger, facts: ChangeCaseFacts, only: set[int] | None = None,
           ) -> tuple[dict[str, Any], list[tuple[int, rules.ChangeDecision]]]:
    """The ledger's base inputs with the applied changes (those numbered in `only`, or all)
    replayed in effective-date order, and each change's decision on the way."""
    base = ledger.base_inputs if ledger.base_inputs is not None else facts.inputs
    # Already validated when reported; parse with a far "today" so a date check cannot refuse it now.
    numbered = [(a["n"], rules.parse_change(a["change"], date.max - timedelta(days=366)))
                for a in ledger.applied if only is None or a["n"] in only]
    # Each change is replayed as it was decided: one reported during an annual review in that
    # review, one decided with the review's 25% test or on a default decision with them.
    context = facts.context()
    decided_in = {a["n"]: _context_of(a, context) for a in ledger.applied}
    return rules.apply_in_order(base, numbered, context, decided_in)


def _decided_with(context: rules.CaseContext) -> dict[str, Any]:
    """What a change's decision context adds to the case's facts, kept with the change (JSON)."""
    kept: dict[str, Any] = {}
    if context.review_income_test:
        kept["review_income_test"] = True
    if context.default_decision_from is not None:
        kept["default_decision_from"] = context.default_decision_from.isoformat()
    return kept


def _context_of(applied: dict[str, Any], context: rules.CaseContext) -> rules.CaseContext:
    """The context an applied change was decided in (its ledger entry), over the case's now."""
    if applied.get("in_review"):
        context = dataclasses.replace(context, annual_review_date=date.fromisoformat(applied["in_review"]),
                                      review_income_test=bool(applied.get("review_income_test")))
    if applied.get("default_decision_from"):
        context = dataclasses.replace(context,
                                      default_decision_from=date.fromisoformat(applied["default_decision_from"]))
    return context


def replay_applied(ledger: ChangeLedger, facts: ChangeCaseFacts) -> dict[str, Any]:
    """The case's facts with every applied change, in effective-date order."""
    final, _ = replay(ledger, facts)
    return final


def inputs_from_each_date(ledger: ChangeLedger, facts: ChangeCaseFacts, n: int, effective: date) -> list[FactsFrom]:
    """When change `n` (from `effective`) clears after applied changes dated later than it: its
    date and each of those later dates, with the inputs as they stood from that date (the base
    and the applied changes dated on or before it, in effective-date order). Else []."""
    _, decisions = replay(ledger, facts)
    later = sorted({d.effective_date for number, d in decisions
                    if number != n and d.counts and not d.closes_case and d.effective_date > effective})
    if not later:
        return []
    kinds = {a["n"]: a["change"]["kind"] for a in ledger.applied}
    dated = []
    for on in [effective, *later]:
        included = {n} | {number for number, d in decisions if d.effective_date <= on}
        income_counted = any(kinds.get(number) in INCOME_KINDS and d.counts
                             for number, d in decisions if number in included)
        known = None if ledger.base_income_known is None else ledger.base_income_known or income_counted
        dated.append(FactsFrom(on, replay(ledger, facts, included)[0], known))
    return dated
