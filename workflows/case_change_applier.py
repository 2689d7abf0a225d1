"""Taking a cleared change of circumstances into a case: the case's side of the hooks of
workflows/case_changes.py, over the case's state, recorder and recalculation path.

A counted change writes the replayed facts back into the case (children, shared care, relevant
other children, benefit, stated income, service type) and goes through the case's one
recalculation path, so letters and the new schedule take the same way as every other
recalculation; a change that ends the case starts its closure.

Changes and the annual review (docs/rules.md; patch "change-folds-into-review"): a change that
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

from datetime import date, timedelta
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.change_messages import ChangeArrears
    from activities.changes import ChangeActivities
    from domain import changes as rules
    from domain.money import format_pence
    from domain.service_type import collect_and_pay_grounds
    from workflows.case_changes import (
        FOLD_INTO_REVIEW_PATCH,
        INCOME_KINDS,
        OUT_OF_ORDER_PATCH,
        ChangeCaseFacts,
        FactsFrom,
        inputs_from_each_date,
    )
    from workflows.case_messages import CaseState, ChildFacts, ClosureRecord, LiabilityRecord, RateInForce
    from workflows.case_recalculation import ONE_RECALCULATION_PATCH, CalculationBasis, CaseRecalculation, as_rates
    from workflows.case_record import CaseRecorder
    from workflows.change_messages import (
        CONTINUING_EDUCATION_RESTORES_PATCH,
        QUALIFYING_DATES_PATCH,
        ChangeOutcome,
        ReportedAgainst,
    )

# Patch: a backdated change records what it adds for payments already due and tells both parents.
BACKDATED_ARREARS_PATCH = "change-backdated-arrears"
# Patch: a change applied out of date order states what it adds for payments already due, from the
# whole liability history before and after it (the plain backdated figure assumes one rate before it).
OUT_OF_ORDER_ARREARS_PATCH = "change-out-of-order-arrears"


class CaseChangeApplier:
    """The CaseWorkflow's side of changes of circumstances (see the module docstring)."""

    def __init__(self, state: CaseState, recorder: CaseRecorder, recalculation: CaseRecalculation,
                 publish_search_attributes: bool) -> None:
        self._s = state
        self._record = recorder
        self._recalculation = recalculation
        self._publish = publish_search_attributes

    # --- what the rules see of the case -------------------------------------------------------
    def case_facts(self) -> ChangeCaseFacts:
        s = self._s
        in_review = s.stage == "AnnualReview" and s.next_review_date
        inputs = self._recalculation.calculation_request()
        if in_review and s.review_hmrc_annual_pence is not None:
            # A change reported in the review is decided as part of it: on the figure the review
            # takes (held until the review date, patch "review-income-on-review-date").
            inputs["paying_parent"].pop("gross_weekly_income_pence", None)
            inputs["paying_parent"]["income"] = {"hmrc_annual_pence": s.review_hmrc_annual_pence}
        return ChangeCaseFacts(
            case_id=s.case_id, inputs=inputs, today=self._record.today(),
            closed=s.phase in ("closing", "closed") or s.close_requested is not None,
            safeguarded=s.safeguarded,
            initial_effective_date=date.fromisoformat(s.initial_effective_date) if s.initial_effective_date else None,
            annual_review_date=date.fromisoformat(s.next_review_date) if in_review and s.next_review_date else None,
            seconds_per_day=s.seconds_per_day, publish_search_attributes=self._publish,
            income_known=s.hmrc_annual_pence is not None or s.stated_weekly_income_pence is not None
            or inputs["paying_parent"].get("income") is not None,
            date_rules=tuple(s.date_rules),
            income_duty_notice_on=self._income_duty_notice_on(),
            default_decision_from=self.default_decision_from(),
            collect_and_pay_grounds=collect_and_pay_grounds(
                s.service_type, s.collect_and_pay_switch.reason if s.collect_and_pay_switch else None, s.safeguarded),
            stopped_children=self._stopped_children(),
        )

    def _stopped_children(self) -> dict[str, dict[str, Any]]:
        """Children whose qualifying dates passed on the case's calendar (patch
        "continuing-education-restores-child"): a report that one continues in education makes
        them qualify again while under 20."""
        s = self._s
        if CONTINUING_EDUCATION_RESTORES_PATCH not in s.date_rules:
            return {}
        return {c.child_id: {"receiving_parent_id": s.receiving_parent_id, "date_of_birth": c.date_of_birth,
                             "shared_care_nights": c.shared_care_nights}
                for c in s.children if c.stopped_qualifying_on is not None and c.stopped_by_calendar}

    def _income_duty_notice_on(self) -> date | None:
        """When the paying parent was sent notice of the duty to report an income increase: with
        the initial decision (kept since; before, that letter went on the initial effective date)."""
        s = self._s
        if s.income_duty_notice_on:
            return date.fromisoformat(s.income_duty_notice_on)
        if s.liability is not None and s.initial_effective_date:
            return date.fromisoformat(s.initial_effective_date)
        return None

    def default_decision_from(self) -> date | None:
        """The date the default decision the case is on took effect; None when it is not on one."""
        s = self._s
        if s.liability is None or s.liability.rate != "default":
            return None
        return date.fromisoformat(s.default_decision_from or s.liability.effective_date)

    def reported(self, n: int) -> None:
        """Notes what the case was when change `n` was reported (for folding it into a review)."""
        s = self._s
        liability = s.liability
        income = liability.gross_weekly_income_pence if liability and liability.rate != "default" else None
        s.changes.reported_before[str(n)] = ReportedAgainst(s.reviews_done, s.next_review_date or "", income,
                                                            in_review=s.stage == "AnnualReview")

    async def ready(self, outcome: ChangeOutcome) -> None:
        """A change that alters the calculation while an annual review is in progress waits for
        the review's recalculation (or the case closing), then applies."""
        s = self._s
        if outcome.outcome != "recalculated" or s.stage != "AnnualReview":
            return
        if not workflow.patched(FOLD_INTO_REVIEW_PATCH):
            return
        reviews = s.reviews_done
        self._record.log("change_waits_for_review", f"Change {outcome.n} waits for the annual review's "
                                                    "recalculation, then applies from its own date")
        await workflow.wait_condition(lambda: s.reviews_done > reviews or s.phase != "active")

    # --- taking a cleared change in -----------------------------------------------------------
    async def applied(self, outcome: ChangeOutcome, inputs: dict[str, Any]) -> None:
        s = self._s
        self._record.log("change_cleared", f"Change {outcome.n} ({outcome.kind.replace('_', ' ')}): "
                                           f"{outcome.outcome.replace('_', ' ')}; effective {outcome.effective_date}")
        if outcome.outcome == "case_closure":
            s.close_requested = ClosureRecord(f"change_{outcome.kind}", outcome.effective_date, "change")
            return
        self._take_education_fact(outcome)
        if outcome.outcome != "recalculated":
            await self._tell_parents_nothing_changed(outcome)
            return
        self._take_inputs(inputs, outcome)
        if s.liability is None or s.phase != "active":
            return  # before the first calculation the assessment uses the new facts; a closing case stops
        effective = date.fromisoformat(outcome.effective_date)
        reason = f"Change of circumstances {outcome.n} ({outcome.kind.replace('_', ' ')})"
        review = self._review_since_reported(outcome.n, effective)
        if review is not None:
            review_date, income_then = review
            await self._recalculation.recalculate_from(
                effective, reason, basis=CalculationBasis(income_before_review=income_then))
            await self._recalculation.recalculate_from(
                review_date, f"Annual review of {review_date.isoformat()}, with change {outcome.n} taken in",
                template="annual_review")
            return
        previous = s.liability
        rates_before = list(s.rates) if s.rates is not None else None
        dated = inputs_from_each_date(s.changes, self.case_facts(), outcome.n, effective)
        if dated and workflow.patched(OUT_OF_ORDER_PATCH):
            await self._recalculate_from_each_date(dated, reason)
            if await self._state_out_of_order_arrears(outcome, rates_before, effective):
                return
        else:
            await self._recalculation.recalculate_from(effective, reason)
        await self._state_backdated_arrears(outcome, previous, effective)

    async def _recalculate_from_each_date(self, dated: list[FactsFrom], reason: str) -> None:
        """A change dated before changes already applied: the case's facts hold them all, so the
        period from its date to the next change's is recalculated on the facts as they stood then,
        and again from each later change's date; each version goes to payments in date order
        (payments adjusts the periods already charged; a later version supersedes from its date)."""
        first = dated[0].on
        for index, facts in enumerate(dated):
            why = reason if index == 0 else (f"{reason}, dated {first.isoformat()}: the changes in force from "
                                              f"{facts.on.isoformat()} again")
            last = index == len(dated) - 1
            # The last date is calculated on the case's own facts: every applied change.
            basis = CalculationBasis() if last else CalculationBasis(facts.inputs, facts.income_known)
            await self._recalculation.recalculate_from(facts.on, why, basis=basis)

    def _take_inputs(self, inputs: dict[str, Any], outcome: ChangeOutcome) -> None:
        """Writes the replayed calculation request back into the case's facts."""
        s = self._s
        paying_parent = inputs["paying_parent"]
        s.relevant_other_children = paying_parent.get("relevant_other_children", 0) or 0
        s.flat_rate_benefit = bool(paying_parent.get("flat_rate_benefit"))
        s.special_expenses_weekly_pence = paying_parent.get("special_expenses_weekly_pence", 0) or 0
        if self._service_type_changed() or not workflow.patched(ONE_RECALCULATION_PATCH):
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

    def _service_type_changed(self) -> bool:
        """Whether a change of service type is among the applied changes. Only then does the
        replay set the service type: otherwise the ledger's base may predate a move to Collect &
        Pay the case made since (patch "one-recalculation-at-a-time")."""
        return any(a["change"]["kind"] == "service_type" for a in self._s.changes.applied)

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

    async def revise_default_decision(self, revised_from: date, reason: str) -> None:
        """Income for a case on a default decision (from HMRC here; from the paying parent it comes
        as a change): the default is revised, not superseded, so the calculation on the income
        applies from the date the default took effect (s.16(3) CSA 1991). Payments gets the new
        schedule from that date and adjusts the periods already charged; what that adds (or takes
        off) for payments already due is recorded in the timeline and told to both parents."""
        s = self._s
        record = self._record
        rates_before = list(s.rates) if s.rates is not None else None
        previous = s.liability
        await self._recalculation.recalculate_from(
            revised_from, f"{reason}; default decision revised from {revised_from.isoformat()}")
        today = record.today()
        if previous is None or s.liability is None or not s.initial_effective_date or revised_from >= today:
            return
        start = date.fromisoformat(s.initial_effective_date)
        if rates_before is not None and s.rates is not None:
            arrears = rules.arrears_between_rates(s.payment_frequency, start, as_rates(rates_before),
                                                  as_rates(s.rates), today)
        else:
            arrears = rules.backdated_arrears_pence(s.payment_frequency, start, _weekly_amounts(previous),
                                                    _weekly_amounts(s.liability), revised_from, today)
        if arrears == 0:
            return
        record.log("default_revised", f"Default decision revised from {revised_from.isoformat()}: "
                                      f"{format_pence(abs(arrears))} {'owed' if arrears > 0 else 'overpaid'} "
                                      "for payments already due, as an arrears adjustment")
        words = rules.backdated_arrears_words(arrears, revised_from, s.service_type)
        facts = {"change_kind": "paying parent income", "reported_on": today.isoformat(),
                 "outcome": "default decision revised",
                 "outcome_reason": f"The paying parent's income is now known, so the default decision is revised "
                                   f"from {revised_from.isoformat()}, the date it took effect. {words}"}
        await record.send(record.to_both_parents("change_outcome", f"default-revised-{revised_from.isoformat()}",
                                                 facts))

    # --- what the parents are told --------------------------------------------------------------
    async def _state_out_of_order_arrears(self, outcome: ChangeOutcome, rates_before: list[RateInForce] | None,
                                          effective: date) -> bool:
        """A change applied after changes dated later than it was recalculated from several dates:
        what that adds for payments already due is the difference between the liability history
        before and after it, period by period. False when this run cannot say (it did not keep the
        history, or began before the patch): the older single-rate figure is tried instead."""
        s = self._s
        today = self._record.today()
        if rates_before is None or s.rates is None or not s.initial_effective_date:
            return False
        if not workflow.patched(OUT_OF_ORDER_ARREARS_PATCH):
            return False
        if effective < today:
            arrears = rules.arrears_between_rates(s.payment_frequency, date.fromisoformat(s.initial_effective_date),
                                                  as_rates(rates_before), as_rates(s.rates), today,
                                                  self._first_collection())
            await self._tell_backdated_arrears(outcome, arrears, effective)
        return True

    def _first_collection(self) -> date | None:
        """Collect & Pay's first collection: what fell due before it is spread, as payments charges it."""
        return date.fromisoformat(self._s.first_collection_date) if self._s.first_collection_date else None

    async def _state_backdated_arrears(self, outcome: ChangeOutcome, previous: LiabilityRecord | None,
                                       effective: date) -> None:
        """A change dated before today also changes payments already due: records by how much
        (change_records.arrears_pence) and says so in a letter to both parents. On Collect & Pay
        the ledger posts the same amount as adjustments to the periods it has charged; on Direct
        Pay there is no ledger, so the letter is where the parents learn what is owed."""
        s = self._s
        today = self._record.today()
        if previous is None or s.liability is None or effective >= today or not s.initial_effective_date:
            return
        if date.fromisoformat(previous.effective_date) > effective:
            # A recalculation dated after this change came first: the amounts in force between
            # the two are not kept here, so no figure is stated rather than a wrong one.
            return
        if not workflow.patched(BACKDATED_ARREARS_PATCH):
            return
        arrears = rules.backdated_arrears_pence(
            s.payment_frequency, date.fromisoformat(s.initial_effective_date), _weekly_amounts(previous),
            _weekly_amounts(s.liability), effective, today, self._first_collection())
        await self._tell_backdated_arrears(outcome, arrears, effective)

    async def _tell_backdated_arrears(self, outcome: ChangeOutcome, arrears: int, effective: date) -> None:
        """Records what a backdated change adds for payments already due and tells both parents in
        a letter; nothing when it adds nothing."""
        s = self._s
        if arrears == 0:
            return
        await workflow.execute_local_activity_method(ChangeActivities.record_change_arrears,
                                                     ChangeArrears(s.case_id, outcome.n, arrears),
                                                     start_to_close_timeout=timedelta(seconds=30))
        self._record.log("change_arrears", f"Change {outcome.n} counts from {effective.isoformat()}: "
                                           f"{format_pence(abs(arrears))} {'owed' if arrears > 0 else 'overpaid'} "
                                           "for payments already due")
        words = rules.backdated_arrears_words(arrears, effective, s.service_type)
        facts = {"change_kind": outcome.kind.replace("_", " "), "reported_on": outcome.reported_date,
                 "outcome": outcome.outcome.replace("_", " "), "outcome_reason": f"{outcome.reason} {words}"}
        await self._record.send(self._record.to_both_parents("change_outcome", f"change-{outcome.n}-arrears", facts))

    def _take_education_fact(self, outcome: ChangeOutcome) -> None:
        """Under the terminal-date rules a report of leaving or continuing in education is a fact
        of the child: the case's own calendar then stops them qualifying on the right day."""
        s = self._s
        if QUALIFYING_DATES_PATCH not in s.date_rules:
            return
        child_id = (outcome.applied_change.get("details") or {}).get("child_id")
        child = next((c for c in s.children if c.child_id == child_id), None)
        if child is None:
            return
        if outcome.outcome == "recalculated" and outcome.kind == "child_continuing_education":
            # Their qualifying dates had passed: they qualify again from the change's date.
            child.in_full_time_education, child.education_ended_on = True, None
            child.stopped_qualifying_on, child.stopped_by_calendar = None, False
            self._record.log("education_continuing", f"Child {child.child_id} continues in full-time education "
                                                     f"and qualifies again from {outcome.effective_date}")
            return
        if outcome.outcome != "recorded":
            return
        if outcome.kind == "child_left_education":
            child.education_ended_on = outcome.effective_date
            self._record.log("education_ended", f"Child {child.child_id} left full-time education on "
                                                f"{outcome.effective_date}")
        elif outcome.kind == "child_continuing_education":
            child.in_full_time_education, child.education_ended_on = True, None
            self._record.log("education_continuing", f"Child {child.child_id} continues in full-time education")

    async def _tell_parents_nothing_changed(self, outcome: ChangeOutcome) -> None:
        """A change that did not alter the calculation still gets an answer, with the reason."""
        facts = {"change_kind": outcome.kind.replace("_", " "), "reported_on": outcome.reported_date,
                 "outcome": outcome.outcome.replace("_", " "), "outcome_reason": outcome.reason}
        await self._record.send(self._record.to_both_parents("change_outcome", f"change-{outcome.n}", facts))


def _weekly_amounts(liability: LiabilityRecord) -> rules.WeeklyAmounts:
    """The liability and the paying parent's collection fee on it (what they pay on top; 0 on Direct Pay)."""
    return rules.WeeklyAmounts(liability.weekly_liability_pence,
                               liability.paying_parent_pays_pence - liability.weekly_liability_pence)
