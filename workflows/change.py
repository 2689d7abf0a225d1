"""ChangeWorkflow: one change of circumstances, a child of its case (`case-<case_id>/change-<n>`).

validate -> apply the rules (domain.changes) -> caseworker review when needed -> recalculate on
the effective date -> schedule the change to payments -> notify both parents -> record whether
it cleared within 28 days. Time runs on the case calendar (`seconds_per_day`): 86,400 in
production, a few seconds on a demo or benchmark calendar.

A change that needs review waits for the `review_decision` update (validated: outcome, reason
and reviewer are required; a rejected request leaves nothing in history). At day 21 it moves to
the senior queue; at day 28 it is recorded as a breach and keeps waiting: nothing is dropped.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import date, datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.change_messages import (
        ChangeCleared,
        ChangeDecisionWrite,
        ChangeNotice,
        ChangeOpened,
        ChangeStatusUpdate,
        PaymentScheduleChange,
    )
    from activities.changes import ChangeActivities
    from cms.search_attributes import ASSIGNED_TEAM, CASE_STAGE, NEEDS_CASEWORKER, SLA_DUE_AT
    from domain import changes as rules
    from domain.calculation import calculate, parse_request
    from workflows.change_messages import (  # noqa: F401  re-exported: callers import them from here
        HMRC_INCOME_HISTORIC_PATCH,
        NEW_ROC_FROM_DAY_TOLD_PATCH,
        QUALIFYING_DATES_PATCH,
        ChangeInput,
        ChangeOutcome,
        ChangeStatus,
        ReportedChange,
        ReviewAnswer,
        ReviewDecision,
        change_workflow_id,
    )

STAGE_OPEN = "ChangeReview"
STAGE_CLEARED = "ChangeCleared"
REVIEW_OUTCOMES = ("apply", "reject")
_RECORD_TIMEOUT = timedelta(seconds=30)
# Patch: the notice, the payment instruction and the clearance are written by one local activity
# (activities.changes.record_change_decision) instead of two activities and a local one, so an automatic change
# completes in one workflow task. Changes opened before it replay the old path (v1 histories).
ONE_WRITE_PATCH = "change-one-decision-write"
_SERVICE_TIMEOUT = timedelta(minutes=2)


@workflow.defn(name="ChangeWorkflow")
class ChangeWorkflow:
    @workflow.init
    def __init__(self, data: ChangeInput) -> None:
        self._input = data
        self._received = workflow.now()
        self._day = timedelta(seconds=data.seconds_per_day)
        self._status = ChangeStatus("deciding", False, rules.AUTOMATIC_TEAM, None, False, False, 0)
        self._review: ReviewDecision | None = None
        self._outcome: ChangeOutcome | None = None

    # --- main flow ------------------------------------------------------------------------

    @workflow.run
    async def run(self, data: ChangeInput) -> ChangeOutcome:
        change = self._parse(data)
        context = self._context()
        self._publish(STAGE_OPEN, needs_caseworker=False, team=rules.AUTOMATIC_TEAM)
        await self._record_opened(data)
        decision = rules.decide(change, data.current_inputs, context)
        reviewer, note = "", ""
        if decision.needs_review:
            review = await self._wait_for_review(decision)
            reviewer, note = review.reviewer, review.reason
            if review.outcome == "reject":
                self._outcome = await self._finish_rejected(data, change, review)
                return await self._done()
            if review.corrected_details is not None:
                change = dataclasses.replace(change, details=rules.check_details(change.kind, review.corrected_details),
                                             evidence_disputed=False)
            decision = rules.decide(change, data.current_inputs, context, reviewed=True)
        self._status.stage = "applying"
        self._outcome = await self._apply(data, decision, reviewer, note)
        self._outcome.applied_change = {**data.change.as_raw(), "details": dict(change.details),
                                        "evidence_disputed": False}
        return await self._done()

    async def _done(self) -> ChangeOutcome:
        assert self._outcome is not None
        self._outcome.reported_date = self._input.change.reported_date
        self._status.stage = "cleared"
        self._publish(STAGE_CLEARED, needs_caseworker=False, team=self._status.assigned_team)
        if self._input.parent_workflow_id:
            await workflow.get_external_workflow_handle(self._input.parent_workflow_id).signal(
                "change_cleared", self._outcome)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._outcome

    def _parse(self, data: ChangeInput) -> rules.Change:
        today = date.fromisoformat(data.today or data.change.reported_date)
        try:
            change = rules.parse_change(data.change.as_raw(), today)
            rules.check_against_case(change, data.current_inputs, self._context())
        except rules.ChangeValidationError as error:
            # Checked before the child starts; reaching here is a caller bug, not a retryable fault.
            raise ApplicationError(str(error), type="InvalidChange", non_retryable=True) from None
        return change

    def _context(self) -> rules.CaseContext:
        data = self._input
        return rules.CaseContext(
            safeguarded=data.safeguarded,
            initial_effective_date=date.fromisoformat(data.initial_effective_date) if data.initial_effective_date else None,
            annual_review_date=date.fromisoformat(data.annual_review_date) if data.annual_review_date else None,
            new_roc_from_day_told=NEW_ROC_FROM_DAY_TOLD_PATCH in data.date_rules,
            education_is_a_fact=QUALIFYING_DATES_PATCH in data.date_rules,
            review_income_test=data.review_income_test,
            default_decision_from=date.fromisoformat(data.default_decision_from) if data.default_decision_from else None,
            collect_and_pay_grounds=data.collect_and_pay_grounds,
            stopped_children=rules.stopped_children_from_json(data.stopped_children),
            hmrc_income_is_historic=HMRC_INCOME_HISTORIC_PATCH in data.date_rules,
        )

    # --- review loop ----------------------------------------------------------------------

    async def _wait_for_review(self, decision: rules.ChangeDecision) -> ReviewDecision:
        self._status.stage = "awaiting_review"
        self._status.review_reason = decision.review_reason
        await self._queue(decision.team, status="awaiting_review")
        if not await self._review_by(self._received + rules.ESCALATION_DAY * self._day):
            self._status.escalated = True
            await self._queue(rules.SENIOR_TEAM, status="escalated", escalated_at=workflow.now().isoformat())
            if not await self._review_by(self._received + rules.SLA_DAYS * self._day):
                # A breach is recorded, never a reason to drop the change: keep waiting.
                self._status.breached = True
                await self._queue(rules.SENIOR_TEAM, status="escalated", breached_at=workflow.now().isoformat())
                await workflow.wait_condition(lambda: self._review is not None)
        assert self._review is not None
        return self._review

    async def _review_by(self, deadline: datetime) -> bool:
        remaining = (deadline - workflow.now()).total_seconds()
        try:
            await workflow.wait_condition(lambda: self._review is not None, timeout=max(remaining, 0.001))
            return True
        except TimeoutError:
            return self._review is not None

    async def _queue(self, team: str, status: str, escalated_at: str | None = None,
                     breached_at: str | None = None) -> None:
        self._status.needs_caseworker = True
        self._status.assigned_team = team
        self._publish(STAGE_OPEN, needs_caseworker=True, team=team)
        await workflow.execute_local_activity_method(
            ChangeActivities.record_change_status,
            ChangeStatusUpdate(self._input.case_id, self._input.n, status, team, True,
                               self._status.review_reason, escalated_at, breached_at),
            start_to_close_timeout=_RECORD_TIMEOUT,
        )

    @workflow.update
    async def review_decision(self, decision: ReviewDecision) -> ReviewAnswer:
        self._review = decision
        self._status.needs_caseworker = False
        await workflow.wait_condition(lambda: self._outcome is not None)
        assert self._outcome is not None
        return ReviewAnswer(self._outcome.outcome, self._outcome.reason)

    @review_decision.validator
    def _validate_review(self, decision: ReviewDecision) -> None:
        if self._status.stage != "awaiting_review" or self._review is not None:
            raise ApplicationError("this change is not waiting for a caseworker's review", type="FailedPrecondition")
        problem = self._review_problem(decision)
        if problem:
            raise ApplicationError(f"{problem[0]}: {problem[1]}", problem[0], type="InvalidArgument")

    def _review_problem(self, decision: ReviewDecision) -> tuple[str, str] | None:
        """(field, message) of the first thing wrong with a caseworker's answer, or None."""
        if decision.outcome not in REVIEW_OUTCOMES:
            return "outcome", f"must be one of {', '.join(REVIEW_OUTCOMES)}; got {decision.outcome!r}"
        if not decision.reason.strip():
            return "reason", "is required: say why, in words the parents can read"
        if not decision.reviewer.strip():
            return "reviewer", "is required: the caseworker's id"
        if decision.corrected_details is None:
            return None
        if decision.outcome != "apply":
            return "corrected_details", "only go with outcome 'apply'"
        try:
            kind = rules.ChangeKind(self._input.change.kind)
            details = rules.check_details(kind, decision.corrected_details)
            corrected = dataclasses.replace(self._parse(self._input), details=details)
            rules.check_against_case(corrected, self._input.current_inputs, self._context())
        except rules.ChangeValidationError as error:
            return f"corrected_{error.field}", error.message
        return None

    @workflow.query
    def status(self) -> ChangeStatus:
        return dataclasses.replace(self._status, case_day=self._case_day_number())

    # --- applying -------------------------------------------------------------------------

    async def _apply(self, data: ChangeInput, decision: rules.ChangeDecision, reviewer: str,
                     note: str) -> ChangeOutcome:
        cleared_day = self._case_day()
        liability, weekly, adjustment, pays = None, None, 0, None
        if decision.counts and not decision.closes_case:
            result = calculate(parse_request(decision.new_inputs), effective_date=decision.effective_date)
            before = calculate(parse_request(data.current_inputs), effective_date=decision.effective_date)
            liability, weekly, pays = result.to_json(), result.weekly_liability_pence, result.paying_parent_pays_pence
            adjustment = rules.liability_adjustment_pence(before.weekly_liability_pence, weekly,
                                                          decision.effective_date, cleared_day)
        explanation = liability["explanation"] if liability else []
        notice = self._notice(decision.outcome, decision.reason, explanation)
        payment = PaymentScheduleChange(f"{workflow.info().workflow_id}/schedule", data.case_id, data.n,
                                        decision.effective_date.isoformat(), weekly, pays, adjustment
                                        ) if decision.counts else None
        one_write = workflow.patched(ONE_WRITE_PATCH)
        if not one_write:
            # The schedule change and the notice are independent: send both at once.
            effects = [self._send_notice(notice)]
            if payment is not None:
                effects.append(workflow.execute_activity_method(ChangeActivities.schedule_payment_change, payment,
                                                                start_to_close_timeout=_SERVICE_TIMEOUT))
            await asyncio.gather(*effects)
        return await self._clear(ChangeOutcome(
            data.case_id, data.n, data.change.kind, decision.outcome, decision.reason,
            decision.effective_date.isoformat(), decision.new_inputs if decision.counts else data.current_inputs,
            liability, weekly, adjustment, on_time=False, escalated=self._status.escalated,
            breached=self._status.breached, cleared_day=cleared_day.isoformat(), reviewed_by=reviewer,
        ), note, (notice, payment) if one_write else None)

    async def _finish_rejected(self, data: ChangeInput, change: rules.Change, review: ReviewDecision) -> ChangeOutcome:
        reason = f"A caseworker reviewed the change and did not apply it: {review.reason}"
        notice = self._notice("rejected", reason, [])
        one_write = workflow.patched(ONE_WRITE_PATCH)
        if not one_write:
            await self._send_notice(notice)
        return await self._clear(ChangeOutcome(
            data.case_id, data.n, data.change.kind, "rejected", reason, change.effective_date.isoformat(),
            data.current_inputs, None, None, 0, on_time=False, escalated=self._status.escalated,
            breached=self._status.breached, cleared_day=self._case_day().isoformat(), reviewed_by=review.reviewer,
        ), review.reason, (notice, None) if one_write else None)

    def _notice(self, outcome: str, reason: str, explanation: list[dict[str, str]]) -> ChangeNotice:
        return ChangeNotice(f"{workflow.info().workflow_id}/notice", self._input.case_id, self._input.n,
                            outcome, reason, explanation)

    async def _send_notice(self, notice: ChangeNotice) -> None:
        """Before the one-write patch: the notice as an activity of its own."""
        await workflow.execute_activity_method(ChangeActivities.notify_parents_of_change, notice,
                                               start_to_close_timeout=_SERVICE_TIMEOUT)

    async def _clear(self, outcome: ChangeOutcome, note: str,
                     writes: tuple[ChangeNotice, PaymentScheduleChange | None] | None = None) -> ChangeOutcome:
        """Records the clearance; with `writes` (the one-write patch) the notice and payment
        instruction go in the same local activity."""
        now = workflow.now()
        outcome.on_time = now <= self._received + rules.SLA_DAYS * self._day
        cleared = ChangeCleared(outcome.case_id, outcome.n, outcome.outcome, outcome.reason, outcome.effective_date,
                                now.isoformat(), outcome.cleared_day, outcome.on_time, outcome.weekly_liability_pence,
                                outcome.adjustment_pence, outcome.reviewed_by or None, note or None)
        if writes is None:
            await workflow.execute_local_activity_method(ChangeActivities.record_change_cleared, cleared,
                                                         start_to_close_timeout=_RECORD_TIMEOUT)
        else:
            await workflow.execute_local_activity_method(ChangeActivities.record_change_decision,
                                                         ChangeDecisionWrite(writes[0], cleared, writes[1]),
                                                         start_to_close_timeout=_RECORD_TIMEOUT)
        return outcome

    # --- calendar, search attributes, records ----------------------------------------------

    def _case_day_number(self) -> int:
        return int((workflow.now() - self._received).total_seconds() // self._day.total_seconds())

    def _case_day(self) -> date:
        start = date.fromisoformat(self._input.today or self._input.change.reported_date)
        return start + timedelta(days=self._case_day_number())

    def _publish(self, stage: str, needs_caseworker: bool, team: str) -> None:
        if not self._input.publish_search_attributes:
            return
        workflow.upsert_search_attributes([
            CASE_STAGE.value_set(stage),
            SLA_DUE_AT.value_set(self._received + rules.SLA_DAYS * self._day),
            NEEDS_CASEWORKER.value_set(needs_caseworker),
            ASSIGNED_TEAM.value_set(team),
        ])

    async def _record_opened(self, data: ChangeInput) -> None:
        await workflow.execute_local_activity_method(
            ChangeActivities.record_change_opened,
            ChangeOpened(data.case_id, data.n, workflow.info().workflow_id, data.change.kind,
                         data.change.reported_date, self._received.isoformat(),
                         (self._received + rules.SLA_DAYS * self._day).isoformat(), data.seconds_per_day,
                         data.change.idempotency_key),
            start_to_close_timeout=_RECORD_TIMEOUT,
        )
