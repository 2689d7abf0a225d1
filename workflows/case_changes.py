"""Changes of circumstances on the case workflow: the `report_change` update and the
`change_cleared` signal, as a mixin the CaseWorkflow inherits (Temporal collects handlers from
base classes), so the case file only gains a base class, one state field and two hooks.

The host workflow provides:

* ``self._change_ledger() -> ChangeLedger``: the ledger, kept in the state carried across
  continue-as-new;
* ``self._change_case_facts() -> ChangeCaseFacts``: the case as the rules need it (its current
  calculation request as SPEC.md section 3 JSON, closed, safeguarded, dates, calendar);
* ``async self._change_applied(outcome, inputs)``: take a cleared change into the case (new
  calculation inputs after every applied change in effective-date order, the liability, the
  timeline; closure when the change ends the case).

Each change runs as a child `case-<case_id>/change-<n>` with parent-close policy ABANDON (a
case that continues-as-new at its annual review must not cancel open changes) and reports back
with the `change_cleared` signal, which reaches the case's latest run by workflow ID.

Changes and the annual review (cms-rules.md 3.3; patch "change-folds-into-review"): a change that
clears while a review is in progress waits for the review's recalculation, then applies from its
own effective date, so the review never takes in a change dated after it and never undoes one.
A change dated before the review date that applies after the review (it waited, or a caseworker
answered after it) recalculates from its own date on the income in force before the review, and
the review's recalculation is then issued again from the review date with the change in it. The
case's handlers finish before it continues as new after a review, so a waiting change is applied
in that run; a change still open carries its facts in the ledger into the next run.

Changes clearing out of date order (patch "change-out-of-order-dates"): the case's facts hold every
applied change, so a change dated D that clears after an open-at-the-same-time change dated E > D
is recalculated from D on the facts of D (the ledger's base and the changes dated on or before D,
in effective-date order), then again from E on the facts of E, and so on; payments gets each
schedule version in that order and each supersedes from its own date. The same holds for a
change reported after the later-dated one cleared, as long as the ledger still gives the case's
facts (nothing else changed them, no annual review since); otherwise it starts again from them.
A date before the paying parent's income was known (the case on a default decision, the income
coming with a later-dated change) is recalculated as a default decision (patch
"change-out-of-order-default-rate"), and what the change adds for payments already due is stated
from the whole liability history before and after it (patch "change-out-of-order-arrears").
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities.changes import ChangeArrears, record_change_arrears
    from domain import changes as rules
    from domain.calculation import CalculationResult, ReceivingParent, default_decision
    from domain.calculation import Child as CalcChild
    from domain.money import format_pence
    from domain.payments.schedule import Rate
    from workflows.change import ChangeInput, ChangeOutcome, ChangeWorkflow, ReportedChange, change_workflow_id


# Patch: changes fold into an annual review (see the module docstring).
FOLD_INTO_REVIEW_PATCH = "change-folds-into-review"
# Patch: a backdated change records what it adds for payments already due and tells both parents.
BACKDATED_ARREARS_PATCH = "change-backdated-arrears"
# Patch: a change that clears after changes dated later than it recalculates from its own date on
# the facts as they stood then, and again from each later change's date (see _change_applied).
OUT_OF_ORDER_PATCH = "change-out-of-order-dates"
# Patch: in such a recalculation, a date before the paying parent's income was known (the case was
# on a default decision) is recalculated as a default decision, not on an income of £0.
OUT_OF_ORDER_DEFAULT_PATCH = "change-out-of-order-default-rate"
# Patch: such a change states what it adds for payments already due, from the whole liability
# history before and after it (the plain backdated figure assumes one rate before it).
OUT_OF_ORDER_ARREARS_PATCH = "change-out-of-order-arrears"


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

    def rebase(self, inputs: dict[str, Any], reviews: int = 0, income_known: bool | None = None) -> None:
        """Start again from `inputs`: nothing in flight, or an annual review took the applied changes in."""
        self.base_inputs = copy.deepcopy(inputs)
        self.base_reviews = reviews
        self.base_income_known = income_known
        self.applied = []


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

    def context(self) -> rules.CaseContext:
        return rules.CaseContext(safeguarded=self.safeguarded, closed=self.closed,
                                 initial_effective_date=self.initial_effective_date,
                                 annual_review_date=self.annual_review_date)


def _invalid(error: rules.ChangeValidationError) -> ApplicationError:
    if error.field == "case_id":
        return ApplicationError(error.message, type="FailedPrecondition")
    return ApplicationError(f"{error.field}: {error.message}", error.field, type="InvalidArgument")


def _with_reported_date(request: ReportedChange, today: date) -> ReportedChange:
    """No reported date means today on the case calendar (what a channel reporting now means)."""
    if request.reported_date:
        return request
    return dataclasses.replace(request, reported_date=today.isoformat())


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
        request = _with_reported_date(request, facts.today)
        change = rules.parse_change(request.as_raw(), facts.today)
        decision = rules.decide(change, facts.inputs, facts.context())
        ledger.last_no += 1
        n = ledger.last_no
        if ledger.base_inputs is None or (not ledger.open and not self._ledger_still_gives(facts.inputs)):
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
                        parent_workflow_id=workflow.info().workflow_id),
            id=child_id,
            parent_close_policy=ParentClosePolicy.ABANDON,
        )
        due = workflow.now() + timedelta(seconds=rules.SLA_DAYS * facts.seconds_per_day)
        receipt = ChangeReceipt(n, child_id, False, decision.needs_review, decision.team, due.isoformat())
        if request.idempotency_key:
            ledger.receipts[request.idempotency_key] = receipt
        ledger.open.append(n)
        return receipt

    def _ledger_still_gives(self, inputs: dict[str, Any]) -> bool:
        """Whether the ledger is kept with no change open (patch "change-out-of-order-dates"): its
        base and applied changes still give the case's facts exactly (nothing else changed them,
        no annual review since), so a change reported now and dated before those changes can be
        recalculated on the facts of its own date. Otherwise it starts again from the case's facts."""
        ledger = self._change_ledger()
        if not ledger.applied or self._change_reviews_done() != ledger.base_reviews:
            return False
        if self._replay_applied(ledger) != inputs:
            return False
        return workflow.patched(OUT_OF_ORDER_PATCH)

    @report_change.validator
    def _validate_report_change(self, request: ReportedChange) -> None:
        if request.idempotency_key in self._change_ledger().receipts:
            return  # a resubmission: answered with the first result
        facts = self._change_case_facts()
        try:
            change = rules.parse_change(_with_reported_date(request, facts.today).as_raw(), facts.today)
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
        if self._change_reviews_done() > ledger.base_reviews and workflow.patched(FOLD_INTO_REVIEW_PATCH):
            # An annual review since: its inputs hold every change applied before it.
            facts = self._change_case_facts()
            ledger.rebase(facts.inputs, self._change_reviews_done(), facts.income_known)
        if outcome.outcome in ("recalculated", "case_closure") and outcome.applied_change:
            reported = ledger.reported_before.get(str(outcome.n))
            in_review = reported.review_date if reported and reported.in_review else ""
            ledger.applied.append({"n": outcome.n, "change": outcome.applied_change, "in_review": in_review})
        inputs = self._replay_applied(ledger)
        await self._change_applied(outcome, inputs)
        ledger.reported_before.pop(str(outcome.n), None)

    def _replay_applied(self, ledger: ChangeLedger) -> dict[str, Any]:
        final, _ = self._replay(ledger)
        return final

    def _replay(self, ledger: ChangeLedger, only: set[int] | None = None,
                ) -> tuple[dict[str, Any], list[tuple[int, rules.ChangeDecision]]]:
        """The base inputs with the applied changes (those numbered in `only`, or all) replayed in
        effective-date order, and each change's decision on the way."""
        facts = self._change_case_facts()
        base = ledger.base_inputs if ledger.base_inputs is not None else facts.inputs
        # Already validated when reported; parse with a far "today" so a date check cannot refuse it now.
        numbered = [(a["n"], rules.parse_change(a["change"], date.max - timedelta(days=366)))
                    for a in ledger.applied if only is None or a["n"] in only]
        # A change reported during an annual review is replayed as it was decided: in that review.
        context = facts.context()
        in_review = {a["n"]: dataclasses.replace(context, annual_review_date=date.fromisoformat(a["in_review"]))
                     for a in ledger.applied if a.get("in_review")}
        return rules.apply_in_order(base, numbered, context, in_review)

    def _inputs_from_each_date(self, n: int, effective: date) -> list[FactsFrom]:
        """When change `n` (from `effective`) clears after applied changes dated later than it: its
        date and each of those later dates, with the inputs as they stood from that date (the base
        and the applied changes dated on or before it, in effective-date order). Else []."""
        ledger = self._change_ledger()
        _, decisions = self._replay(ledger)
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
            dated.append(FactsFrom(on, self._replay(ledger, included)[0], known))
        return dated

    @workflow.query
    def open_changes(self) -> list[int]:
        return list(self._change_ledger().open)


INCOME_KINDS = ("paying_parent_income", "employment")


@dataclass(frozen=True)
class FactsFrom:
    """The case's calculation request as it stood from a date, and whether the paying parent's
    income was known by then (None: not recorded, the case's current facts decide)."""

    on: date
    inputs: dict[str, Any]
    income_known: bool | None


class CaseWorkflowChanges(CaseChanges):
    """The hooks for `workflows.case.CaseWorkflow`, against its `CaseState` (`self._s`):
    children facts, HMRC figure, relevant other children, service type, plus the two facts only
    changes set (`flat_rate_benefit`, `stated_weekly_income_pence`). A counted change goes
    through the case's own `recalculate_from`, so notices and the new schedule take the same
    path as every other recalculation; a change that ends the case starts its closure."""

    _s: Any
    _publish: bool
    # Set only around a recalculation dated before an annual review that is already done: the
    # weekly income that was in force then (workflows.case calls _calculation_request from it).
    _income_before_review: int | None = None
    # Set only around a recalculation from a date before changes already applied (patch
    # "change-out-of-order-dates"): the calculation request as it stood from that date.
    _inputs_as_of: dict[str, Any] | None = None
    # Set with it: whether the paying parent's income was known from that date (None: not recorded).
    _income_known_as_of: bool | None = None

    def _change_ledger(self) -> ChangeLedger:
        return self._s.changes

    def _change_reviews_done(self) -> int:
        return self._s.reviews_done

    def _change_reported(self, n: int) -> None:
        s = self._s
        liability = s.liability
        income = liability.gross_weekly_income_pence if liability and liability.rate != "default" else None
        s.changes.reported_before[str(n)] = ReportedAgainst(s.reviews_done, s.next_review_date or "", income,
                                                            in_review=s.stage == "AnnualReview")

    async def _change_ready(self, outcome: ChangeOutcome) -> None:
        """A change that alters the calculation while an annual review is in progress waits for
        the review's recalculation (or the case closing), then applies (see _change_applied)."""
        s = self._s
        if outcome.outcome != "recalculated" or s.stage != "AnnualReview":
            return
        if not workflow.patched(FOLD_INTO_REVIEW_PATCH):
            return
        reviews = s.reviews_done
        self._log("change_waits_for_review", f"Change {outcome.n} waits for the annual review's "  # type: ignore[attr-defined]
                                             "recalculation, then applies from its own date")
        await workflow.wait_condition(lambda: s.reviews_done > reviews or s.phase != "active")

    def _calculation_inputs(self) -> dict[str, Any]:
        """What the case calculates on: its request, or the one as it stood from an earlier date
        while a change dated before changes already applied is recalculated (the case's facts and
        what handlers see meanwhile stay the current ones)."""
        if self._inputs_as_of is not None:
            return copy.deepcopy(self._inputs_as_of)
        return self._calculation_request()

    def _schedule_service_type(self) -> str:
        """The service type of the schedule version being handed to payments (see _calculation_inputs)."""
        if self._inputs_as_of is not None:
            return self._inputs_as_of.get("service_type", self._s.service_type)
        return self._s.service_type

    def _calculation_request(self) -> dict[str, Any]:
        """The case's calculation request (SPEC.md section 3) from its state."""
        s = self._s
        paying_parent: dict[str, Any] = {"relevant_other_children": s.relevant_other_children,
                                         "flat_rate_benefit": s.flat_rate_benefit}
        if s.stated_weekly_income_pence is not None:
            paying_parent["gross_weekly_income_pence"] = s.stated_weekly_income_pence
        elif self._income_before_review is not None:
            paying_parent["gross_weekly_income_pence"] = self._income_before_review
        elif s.hmrc_annual_pence is not None:
            paying_parent["income"] = {"hmrc_annual_pence": s.hmrc_annual_pence}
        else:
            paying_parent["gross_weekly_income_pence"] = 0  # not known yet: a default decision applies
        children = [{"id": c.child_id, "shared_care_nights": c.shared_care_nights}
                    for c in s.children if c.stopped_qualifying_on is None]
        return {"paying_parent": paying_parent,
                "receiving_parents": [{"id": s.receiving_parent_id, "children": children}] if children else [],
                "service_type": s.service_type}

    def _change_case_facts(self) -> ChangeCaseFacts:
        s = self._s
        in_review = s.stage == "AnnualReview" and s.next_review_date
        inputs = self._calculation_request()
        if in_review and s.review_hmrc_annual_pence is not None:
            # A change reported in the review is decided as part of it: on the figure the review
            # takes (held until the review date, patch "review-income-on-review-date").
            inputs["paying_parent"].pop("gross_weekly_income_pence", None)
            inputs["paying_parent"]["income"] = {"hmrc_annual_pence": s.review_hmrc_annual_pence}
        return ChangeCaseFacts(
            case_id=s.case_id, inputs=inputs, today=self._today(),  # type: ignore[attr-defined]
            closed=s.phase in ("closing", "closed") or s.close_requested is not None,
            safeguarded=s.safeguarded,
            initial_effective_date=date.fromisoformat(s.initial_effective_date) if s.initial_effective_date else None,
            annual_review_date=date.fromisoformat(s.next_review_date) if in_review else None,
            seconds_per_day=s.seconds_per_day, publish_search_attributes=self._publish,
            income_known=s.hmrc_annual_pence is not None or s.stated_weekly_income_pence is not None
            or inputs["paying_parent"].get("income") is not None,
        )

    async def _change_applied(self, outcome: ChangeOutcome, inputs: dict[str, Any]) -> None:
        s = self._s
        self._log("change_cleared", f"Change {outcome.n} ({outcome.kind.replace('_', ' ')}): "  # type: ignore[attr-defined]
                                    f"{outcome.outcome.replace('_', ' ')}; effective {outcome.effective_date}")
        if outcome.outcome == "case_closure":
            from workflows.case_messages import ClosureRecord

            s.close_requested = ClosureRecord(f"change_{outcome.kind}", outcome.effective_date, "change")
            return
        if outcome.outcome != "recalculated":
            await self._tell_parents_nothing_changed(outcome)
            return
        self._take_inputs(inputs, outcome)
        if s.liability is None or s.phase != "active":
            return  # before the first calculation the assessment uses the new facts; a closing case stops
        effective = date.fromisoformat(outcome.effective_date)
        reason = f"Change of circumstances {outcome.n} ({outcome.kind.replace('_', ' ')})"
        review = self._review_since_reported(outcome.n, effective)
        if review is None:
            previous = s.liability
            rates_before = list(s.rates) if s.rates is not None else None
            dated = self._inputs_from_each_date(outcome.n, effective)
            if dated and workflow.patched(OUT_OF_ORDER_PATCH):
                await self._recalculate_from_each_date(dated, reason)
                if await self._state_out_of_order_arrears(outcome, rates_before, effective):
                    return
            else:
                await self.recalculate_from(effective, reason)  # type: ignore[attr-defined]
            await self._state_backdated_arrears(outcome, previous, effective)
            return
        review_date, income_then = review
        self._income_before_review = income_then
        try:
            await self.recalculate_from(effective, reason)  # type: ignore[attr-defined]
        finally:
            self._income_before_review = None
        await self.recalculate_from(review_date, f"Annual review of {review_date.isoformat()}, with change "  # type: ignore[attr-defined]
                                                 f"{outcome.n} taken in", template="annual_review")

    async def _recalculate_from_each_date(self, dated: list[FactsFrom], reason: str) -> None:
        """A change dated before changes already applied: the case's facts hold them all, so the
        period from its date to the next change's is recalculated on the facts as they stood then,
        and again from each later change's date; each version goes to payments in date order
        (payments adjusts the periods already charged; a later version supersedes from its date)."""
        first = dated[0].on
        for index, facts in enumerate(dated):
            on = facts.on
            last = index == len(dated) - 1
            why = reason if index == 0 else (f"{reason}, dated {first.isoformat()}: the changes in force from "
                                              f"{on.isoformat()} again")
            if last:  # the case's own facts: every applied change
                await self.recalculate_from(on, why)  # type: ignore[attr-defined]
                continue
            self._inputs_as_of, self._income_known_as_of = facts.inputs, facts.income_known
            try:
                await self.recalculate_from(on, why)  # type: ignore[attr-defined]
            finally:
                self._inputs_as_of, self._income_known_as_of = None, None

    def _default_decision_as_of(self, effective_on: date) -> CalculationResult | None:
        """In a recalculation from a date before changes already applied (see _calculation_inputs):
        the default decision, when the paying parent's income was not yet known from that date
        (the case was on a default decision and the income came with a later-dated change), on
        the children as they stood then. None otherwise: the inputs are calculated."""
        if self._inputs_as_of is None or self._income_known_as_of is not False:
            return None
        parents = tuple(ReceivingParent(rp["id"], tuple(CalcChild(c["id"], c.get("shared_care_nights", 0) or 0)
                                                        for c in rp["children"]))
                        for rp in self._inputs_as_of["receiving_parents"] if rp["children"])
        if not parents or not workflow.patched(OUT_OF_ORDER_DEFAULT_PATCH):
            return None
        children = sum(len(parent.children) for parent in parents)
        return default_decision(children, parents, self._schedule_service_type(),  # type: ignore[arg-type]
                                effective_date=effective_on)

    async def _state_out_of_order_arrears(self, outcome: ChangeOutcome, rates_before: list[Any] | None,
                                          effective: date) -> bool:
        """A change applied after changes dated later than it was recalculated from several dates
        (_recalculate_from_each_date): what that adds for payments already due is the difference
        between the liability history before and after it, period by period (patch
        "change-out-of-order-arrears"). False when this run cannot say (it did not keep the
        history, or began before the patch): the older single-rate figure is tried instead."""
        s = self._s
        today = self._today()  # type: ignore[attr-defined]
        if rates_before is None or s.rates is None or not s.initial_effective_date:
            return False
        if not workflow.patched(OUT_OF_ORDER_ARREARS_PATCH):
            return False
        if effective < today:
            arrears = rules.arrears_between_rates(s.payment_frequency, date.fromisoformat(s.initial_effective_date),
                                                  as_rates(rates_before), as_rates(s.rates), today)
            await self._tell_backdated_arrears(outcome, arrears, effective)
        return True

    async def _state_backdated_arrears(self, outcome: ChangeOutcome, previous: Any, effective: date) -> None:
        """A change dated before today also changes payments already due: records by how much
        (change_records.arrears_pence) and says so in a letter to both parents. On Collect & Pay
        the ledger posts the same amount as adjustments to the periods it has charged; on Direct
        Pay there is no ledger, so the letter is where the parents learn what is owed."""
        s = self._s
        today = self._today()  # type: ignore[attr-defined]
        if previous is None or effective >= today or not s.initial_effective_date:
            return
        if date.fromisoformat(previous.effective_date) > effective:
            # A recalculation dated after this change came first: the amounts in force between
            # the two are not kept here, so no figure is stated rather than a wrong one.
            return
        if not workflow.patched(BACKDATED_ARREARS_PATCH):
            return
        arrears = rules.backdated_arrears_pence(
            s.payment_frequency, date.fromisoformat(s.initial_effective_date), _weekly_amounts(previous),
            _weekly_amounts(s.liability), effective, today)
        await self._tell_backdated_arrears(outcome, arrears, effective)

    async def _tell_backdated_arrears(self, outcome: ChangeOutcome, arrears: int, effective: date) -> None:
        """Records what a backdated change adds for payments already due (change_records.arrears_pence)
        and tells both parents in a letter; nothing when it adds nothing."""
        s = self._s
        if arrears == 0:
            return
        await workflow.execute_local_activity(record_change_arrears, ChangeArrears(s.case_id, outcome.n, arrears),
                                              start_to_close_timeout=timedelta(seconds=30))
        self._log("change_arrears", f"Change {outcome.n} counts from {effective.isoformat()}: "  # type: ignore[attr-defined]
                                    f"{format_pence(abs(arrears))} {'owed' if arrears > 0 else 'overpaid'} "
                                    "for payments already due")
        facts = {"change_kind": outcome.kind.replace("_", " "), "reported_on": outcome.reported_date,
                 "outcome": outcome.outcome.replace("_", " "),
                 "outcome_reason": f"{outcome.reason} {_arrears_words(arrears, effective, s.service_type)}"}
        key = f"change-{outcome.n}-arrears"
        await self._send([self._notice(s.paying_parent_id, "change_outcome", key, facts),  # type: ignore[attr-defined]
                          self._notice(s.receiving_parent_id, "change_outcome", key, facts)])  # type: ignore[attr-defined]

    def _review_since_reported(self, n: int, effective: date) -> tuple[date, int | None] | None:
        """(review date, weekly income before it) when an annual review recalculated the case after
        change `n` was reported and the change is dated before that review; else None."""
        s = self._s
        before = s.changes.reported_before.get(str(n))
        if before is None or not before.review_date or s.reviews_done <= before.reviews_done:
            return None
        review_date = date.fromisoformat(before.review_date)
        if effective >= review_date or not workflow.patched(FOLD_INTO_REVIEW_PATCH):
            return None
        return review_date, before.weekly_income_pence

    async def _tell_parents_nothing_changed(self, outcome: ChangeOutcome) -> None:
        """A change that did not alter the calculation still gets an answer, with the reason."""
        s = self._s
        facts = {"change_kind": outcome.kind.replace("_", " "), "reported_on": outcome.reported_date,
                 "outcome": outcome.outcome.replace("_", " "), "outcome_reason": outcome.reason}
        key = f"change-{outcome.n}"
        await self._send([self._notice(s.paying_parent_id, "change_outcome", key, facts),  # type: ignore[attr-defined]
                          self._notice(s.receiving_parent_id, "change_outcome", key, facts)])  # type: ignore[attr-defined]

    def _take_inputs(self, inputs: dict[str, Any], outcome: ChangeOutcome) -> None:
        """Writes the replayed calculation request back into the case's facts."""
        from workflows.case_messages import ChildFacts

        s = self._s
        paying_parent = inputs["paying_parent"]
        s.relevant_other_children = paying_parent.get("relevant_other_children", 0) or 0
        s.flat_rate_benefit = bool(paying_parent.get("flat_rate_benefit"))
        s.service_type = inputs.get("service_type", s.service_type)
        if any(a["change"]["kind"] in INCOME_KINDS for a in s.changes.applied) and "income" not in paying_parent:
            s.stated_weekly_income_pence = paying_parent.get("gross_weekly_income_pence")
        nights = {c["id"]: c.get("shared_care_nights", 0) for rp in inputs["receiving_parents"] for c in rp["children"]}
        for child in s.children:
            if child.child_id in nights:
                child.shared_care_nights = nights.pop(child.child_id)
            elif child.stopped_qualifying_on is None:
                child.stopped_qualifying_on = outcome.effective_date
        added = {a["change"]["details"]["child_id"]: a["change"] for a in s.changes.applied
                 if a["change"]["kind"] == "child_added"}
        for child_id, child_nights in nights.items():
            details = added.get(child_id, {}).get("details", {})
            s.children.append(ChildFacts(child_id=child_id,
                                         date_of_birth=details.get("date_of_birth", outcome.effective_date),
                                         shared_care_nights=child_nights))


def as_rates(history: list[Any]) -> tuple[Rate, ...]:
    """The case's liability history (workflows.case_messages.RateInForce, kept as JSON-friendly
    strings in the state) as the schedule arithmetic takes it."""
    return tuple(Rate(date.fromisoformat(rate.effective_from), rate.weekly_liability_pence, rate.weekly_fee_pence)
                 for rate in history)


def _weekly_amounts(liability: Any) -> rules.WeeklyAmounts:
    """The liability and the paying parent's collection fee on it (what they pay on top; 0 on Direct Pay)."""
    return rules.WeeklyAmounts(liability.weekly_liability_pence,
                               liability.paying_parent_pays_pence - liability.weekly_liability_pence)


def _arrears_words(arrears: int, effective: date, service_type: str) -> str:
    amount = format_pence(abs(arrears))
    since = f"The new amount applies from {effective.isoformat()}, so it also changes the payments already due"
    if service_type == "collect_and_pay":
        if arrears > 0:
            return (f"{since}: {amount} more is owed for them, collection fee included. It is added to the paying "
                    "parent's account as arrears and shows on the statement.")
        return (f"{since}: {amount} less was owed for them, collection fee included. It is credited to the paying "
                "parent's account and shows on the statement.")
    if arrears > 0:
        return (f"{since}: {amount} more is owed for them. On Direct Pay the paying parent pays this to the "
                "receiving parent directly, on top of the new regular amount.")
    return (f"{since}: {amount} less was owed for them. On Direct Pay the parents settle this between them, "
            "for example by reducing the next payments.")
