"""CaseWorkflow: one long-lived workflow per case (`case-<case_id>`), docs/rules.md section 8.

The life of a case: application → paying parent located and HMRC income requested (side by side)
→ notice to the paying parent (the initial effective date is 2 days later) → calculation (or a
default decision after 28 days of missing information) → both parents notified with the
explanation → service type → payment schedule handed to payments → Active. Then annual reviews
(HMRC figure asked 30 days before each anniversary and counted from it, recalculation, notices,
new schedule) with continue-as-new after each review and whenever the history grows past a bound,
carrying one `CaseState`. Closure when the last child stops qualifying, on a caseworker's
`close_case`, or when a change of circumstances ends the case; arrears stay with payments.

This module holds that life and the handler declarations. The rest sits beside it:
workflows/case_record.py (timeline, read model, search attributes, letters and schedule writes),
workflows/case_recalculation.py (the one recalculation path), workflows/case_changes.py and
case_change_applier.py (changes of circumstances), workflows/case_validation.py (what a
caseworker's request must satisfy) and the pure rules in domain/.

One recalculation at a time: the main line and the `change_cleared` signal both recalculate, and
each does so under one workflow lock (patch "one-recalculation-at-a-time"), so a change never
interleaves with the move to Collect & Pay, a child ceasing to qualify or the annual review.
Handlers that only record a fact (a payment event, a caseworker's decision) leave the acting to
the main line.

Time: every date is a *case date* from `domain.lifecycle.CaseClock` (calendar input: seconds
per day), so the same code runs a year in production or in minutes in demo mode.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import date, datetime, timedelta
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.case_messages import StopScheduleRequest
    from activities.case_payments import CasePaymentActivities
    from domain import changes, lifecycle
    from domain.money import format_pence
    from domain.service_type import COLLECT_AND_PAY_REASONS, service_type_reason
    from workflows import case_validation as check
    from workflows.case_change_applier import CaseChangeApplier
    from workflows.case_changes import DEFAULT_REVISION_PATCH, CaseChanges, ChangeCaseFacts, ChangeLedger
    from workflows.case_evidence import CaseEvidence
    from workflows.case_messages import (
        ActionResult,
        CaseInput,
        CaseOutcome,
        CaseQuery,
        CaseState,
        CaseView,
        ChildFacts,
        ChildQualifying,
        CloseRequest,
        CloseResult,
        ClosureRecord,
        CollectAndPayRequest,
        EducationEnded,
        HoldRequest,
        IncomeReport,
        LiabilityHistory,
        ManualReviewRequest,
        NoteRequest,
        NoteResult,
        ReleaseRequest,
        SafeguardingFlag,
        ServiceSwitch,
        TimelineEvent,
    )
    from workflows.case_payment_events import COLLECT_AND_PAY_SWITCH_PATCH, CasePaymentEvents
    from workflows.case_recalculation import COLLECT_AND_PAY_TEMPLATE, ONE_RECALCULATION_PATCH, CaseRecalculation
    from workflows.case_record import CASEWORKER_SLA_DAYS, CaseRecorder
    from workflows.change_messages import (
        CONTINUING_EDUCATION_RESTORES_PATCH,
        HMRC_INCOME_HISTORIC_PATCH,
        NEW_ROC_FROM_DAY_TOLD_PATCH,
        QUALIFYING_DATES_PATCH,
        ChangeOutcome,
    )
    from workflows.enforcement_messages import ENFORCEMENT_ENDED_SIGNAL
    from workflows.payments import PAYMENT_EVENT_SIGNAL, PaymentEvent

# Re-exported so callers import the workflow and its messages from one place.
__all__ = ["CaseInput", "CaseQuery", "CaseState", "CaseWorkflow", "NoteRequest", "NoteResult"]

ASSESSMENT_SLA_DAYS = 28
# Patch: the address check and the HMRC request run side by side.
PARALLEL_CHECKS_PATCH = "parallel-address-and-hmrc"
# Patch: the letters, schedule hand-over and record of the move to Active go in one local
# activity (activities.case_decision) instead of three: one round trip, one marker.
ONE_DECISION_WRITE_PATCH = "one-decision-write"
# Patch: payment events from payments (missed / part payments) are recorded in the case.
PAYMENT_EVENTS_PATCH = "payment-events"
# Patch: the HMRC figure asked for 30 days before an annual review is held until the review date
# (CaseState.review_hmrc_annual_pence), and a child who stops qualifying inside that window is
# recalculated then, on the figure in force, before the review's recalculation on the new one.
REVIEW_INCOME_PATCH = "review-income-on-review-date"
# Patch: at an annual review, current income the case is on (reported and accepted) stays when it
# differs from the HMRC figure the review takes by at least 25% (reg 34(2)(a)).
REVIEW_KEEPS_CURRENT_INCOME_PATCH = "review-keeps-current-income"
# Patch: an HMRC figure that arrives between reviews, while one is in force, is used from the next
# review date (reg 20); a recalculation for another reason keeps the figure in force.
HMRC_FROM_NEXT_REVIEW_PATCH = "hmrc-figure-from-next-review"
# Patch: a caseworker's closure takes effect from the date of the event it records (a death, a
# party leaving the UK, the receiving parent no longer caring), or from the day the receiving
# parent asked for; liability after it is reversed through payments.
CLOSURE_EVENT_DATE_PATCH = "closure-from-event-date"


def new_state(case: CaseInput, now: datetime) -> CaseState:
    application = case.application_date or now.date().isoformat()
    return CaseState(
        case_id=case.case_id,
        service_type=lifecycle.choose_service_type(case.requested_service_type, case.domestic_abuse),
        requested_service_type=case.requested_service_type,
        receiving_parent_id=case.receiving_parent_id,
        paying_parent_id=case.paying_parent_id,
        children=list(case.children),
        relevant_other_children=case.relevant_other_children,
        safeguarded=case.domestic_abuse,
        payment_frequency=case.payment_frequency,
        payment_method=case.payment_method or "direct_debit",
        anchor_date=application,
        anchor_instant=now.isoformat(),
        seconds_per_day=case.calendar.seconds_per_day,
        application_date=application,
        max_events_per_run=case.max_events_per_run,
    )


@workflow.defn(name="CaseWorkflow")
class CaseWorkflow(CaseChanges):
    @workflow.init
    def __init__(self, case: CaseInput) -> None:
        if case.carried_state is not None:
            self._s = case.carried_state
            self._s.runs += 1
        else:
            self._s = new_state(case, workflow.now())
        self._publish = case.publish_search_attributes
        self._record = CaseRecorder(self._s, self._publish)
        self._recalculation = CaseRecalculation(self._s, self._record)
        self._changes = CaseChangeApplier(self._s, self._record, self._recalculation, self._publish)
        self._payment_events = CasePaymentEvents(self._s, self._record)
        self._evidence = CaseEvidence(self._s, self._record)
        self._recalculating = asyncio.Lock()

    # --- main line ------------------------------------------------------------------------
    @workflow.run
    async def run(self, case: CaseInput) -> CaseOutcome:
        s = self._s
        self._take_up_date_rules()
        if s.phase == "assessment":
            await self._assess()
        while s.phase == "active":
            outcome = await self._active_step()
            if outcome == "review":
                await self._annual_review()
                if s.phase == "active":
                    await self._continue_as_new()
            elif outcome == "history":
                await self._continue_as_new()
        if s.phase == "closing":
            await self._close()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return CaseOutcome(s.case_id, s.stage, s.closure)

    def _take_up_date_rules(self) -> None:
        """The statutory date rules (workflows.change_messages.DATE_RULE_PATCHES) a run starts
        with: a new case takes them all; a running case takes them up at its next run."""
        taken = self._s.date_rules
        # One call per patch, each with its own name, so the replay kit sees every patch.
        if NEW_ROC_FROM_DAY_TOLD_PATCH not in taken and workflow.patched(NEW_ROC_FROM_DAY_TOLD_PATCH):
            taken.append(NEW_ROC_FROM_DAY_TOLD_PATCH)
        if QUALIFYING_DATES_PATCH not in taken and workflow.patched(QUALIFYING_DATES_PATCH):
            taken.append(QUALIFYING_DATES_PATCH)
        if (CONTINUING_EDUCATION_RESTORES_PATCH not in taken and QUALIFYING_DATES_PATCH in taken
                and workflow.patched(CONTINUING_EDUCATION_RESTORES_PATCH)):
            taken.append(CONTINUING_EDUCATION_RESTORES_PATCH)
        if HMRC_INCOME_HISTORIC_PATCH not in taken and workflow.patched(HMRC_INCOME_HISTORIC_PATCH):
            taken.append(HMRC_INCOME_HISTORIC_PATCH)

    @asynccontextmanager
    async def _one_recalculation(self) -> AsyncIterator[None]:
        """Held by every path that recalculates, so two never interleave across their awaits."""
        if not workflow.patched(ONE_RECALCULATION_PATCH):
            yield
            return
        async with self._recalculating:
            yield

    async def _assess(self) -> None:
        s = self._s
        record = self._record
        record.log("application", "Application received")
        await record.enter("Assessment", sla=record.today() + timedelta(days=ASSESSMENT_SLA_DAYS), first_record=True)
        if workflow.patched(PARALLEL_CHECKS_PATCH):
            # Locating the paying parent and asking HMRC do not depend on each other.
            if not await self._step(self._locate_and_request_income):
                return
        else:
            if not await self._step(self._evidence.locate_paying_parent):
                return
            if not await self._step(self._evidence.request_income):
                return
        if not await self._step(self._send_notice_of_application):
            return
        ied = date.fromisoformat(s.initial_effective_date or "")
        if s.hmrc_annual_pence is None:
            deadline = lifecycle.default_decision_date(date.fromisoformat(s.hmrc_requested_on or s.application_date))
            await self._wait_until(deadline, lambda: s.hmrc_annual_pence is not None or self._closing())
        if await self._wait_until(ied, self._closing):
            return self._to_closing()
        await self._hold_gate()
        if self._closing():
            return self._to_closing()
        record.log("service_type", f"Service type: {s.service_type.replace('_', ' ')} "
                                   f"({service_type_reason(s.safeguarded, s.requested_service_type)})")
        async with self._one_recalculation():
            # Nothing awaits between the calculation and the record under the patch: the letters
            # and the schedule wait for the record write of the move to Active and go with it.
            record.defer_writes = workflow.patched(ONE_DECISION_WRITE_PATCH)
            await self._recalculation.recalculate_from(ied, "Initial calculation", template="calculation")
            # The initial decision tells the paying parent of the duty to report an income increase.
            s.income_duty_notice_on = record.today().isoformat()
            await record.enter("Active", sla=date.fromisoformat(s.next_review_date or ""))
            record.defer_writes = False
            s.phase = "active"

    async def _step(self, action: Callable[[], Awaitable[None]]) -> bool:
        """Runs one assessment step unless the case is closing; waits out a hold first."""
        await self._hold_gate()
        if self._closing():
            self._to_closing()
            return False
        await action()
        if self._closing():
            self._to_closing()
            return False
        return True

    async def _locate_and_request_income(self) -> None:
        await asyncio.gather(self._evidence.locate_paying_parent(), self._evidence.request_income())

    async def _send_notice_of_application(self) -> None:
        s = self._s
        record = self._record
        ied = lifecycle.initial_effective_date(record.today())
        s.initial_effective_date = ied.isoformat()
        s.next_review_date = lifecycle.first_review_date(ied).isoformat()
        await record.send([record.notice(s.paying_parent_id, "notice_of_application", "initial",
                                         {"initial_effective_date": ied.isoformat()})])
        record.log("notice_sent", f"Notice to the paying parent: initial effective date {ied.isoformat()}")

    # --- active life ----------------------------------------------------------------------
    async def _active_step(self) -> str | None:
        """Waits for the next thing that happens to an active case and handles it. Returns
        "review" when the annual review is due, "history" when the run should continue as new."""
        s = self._s
        review_prep = lifecycle.hmrc_request_date(date.fromisoformat(s.next_review_date or ""))
        child_stop = self._next_child_stop()
        target = min(review_prep, child_stop[1]) if child_stop else review_prep
        if s.enforcement_due_on:   # only ever set under the enforcement patch
            target = min(target, date.fromisoformat(s.enforcement_due_on))
        if self._closing():
            s.phase = "closing"
            return None
        if self._history_too_long():
            return "history"
        await self._wait_until(target, lambda: self._closing() or self._record.dirty or self._income_pending()
                               or self._history_too_long() or s.pending_switch is not None
                               or s.direct_pay_warning_due)
        # A hold stops the case taking its next step (review, recalculation, closure at a
        # birthday) until a caseworker releases it; a caseworker's close_case still goes ahead.
        await self._hold_gate()
        if self._closing():
            s.phase = "closing"
            return None
        if s.direct_pay_warning_due:   # only ever set under the enforcement patch
            await self._payment_events.send_direct_pay_warning()
            return None
        if s.pending_switch is not None:   # only ever set under COLLECT_AND_PAY_SWITCH_PATCH
            await self._switch_to_collect_and_pay(s.pending_switch)
            return None
        if self._income_pending():
            async with self._one_recalculation():
                revised_from = self._changes.default_decision_from()
                if revised_from is not None and workflow.patched(DEFAULT_REVISION_PATCH):
                    await self._changes.revise_default_decision(revised_from, "Income information received")
                else:
                    await self._recalculation.recalculate_from(
                        self._record.today(), "Income information received; default decision replaced")
            return None
        today = self._record.today()
        if await self._payment_events.start_enforcement_if_due(today, self._publish):
            return None
        if child_stop and today >= child_stop[1]:
            await self._child_stops_qualifying(child_stop[0], child_stop[1])
            return None
        if today >= review_prep:
            return "review"
        if self._record.dirty:
            await self._record.sync()
        return None

    def _next_child_stop(self) -> tuple[ChildFacts, date] | None:
        stops = [(child, self._qualifies_until(child)) for child in self._s.children
                 if child.stopped_qualifying_on is None]
        return min(stops, key=lambda pair: pair[1]) if stops else None

    def _qualifies_until(self, child: ChildFacts) -> date:
        """The first day the child no longer qualifies."""
        ended = date.fromisoformat(child.education_ended_on) if child.education_ended_on else None
        born = date.fromisoformat(child.date_of_birth)
        if QUALIFYING_DATES_PATCH in self._s.date_rules:
            return lifecycle.last_qualifying_day(born, child.in_full_time_education, ended) + timedelta(days=1)
        return lifecycle.qualifies_until(born, child.in_full_time_education, ended)

    async def _child_stops_qualifying(self, child: ChildFacts, on: date) -> None:
        s = self._s
        child.stopped_qualifying_on = on.isoformat()
        child.stopped_by_calendar = CONTINUING_EDUCATION_RESTORES_PATCH in s.date_rules
        self._record.log("child_stopped_qualifying", f"Child {child.child_id} stopped qualifying on {on.isoformat()}")
        if any(c.stopped_qualifying_on is None for c in s.children):
            async with self._one_recalculation():
                await self._recalculation.recalculate_from(on, f"Child {child.child_id} no longer qualifies")
        else:
            s.close_requested = ClosureRecord("no_qualifying_child", on.isoformat(), "system")
            s.phase = "closing"

    async def _annual_review(self) -> None:
        s = self._s
        review = date.fromisoformat(s.next_review_date or "")
        await self._record.enter("AnnualReview", sla=review)
        held = workflow.patched(REVIEW_INCOME_PATCH)
        await self._evidence.request_income(for_review=held)
        closing = await self._wait_for_review_date(review) if held else await self._wait_until(review, self._closing)
        if closing:
            s.phase = "closing"
            return
        async with self._one_recalculation():
            if s.review_hmrc_annual_pence is not None:
                # The new figure counts from the review date, not from when HMRC answered.
                s.hmrc_annual_pence, s.review_hmrc_annual_pence = s.review_hmrc_annual_pence, None
            if s.hmrc_annual_pence is not None and not self._current_income_stays(review):
                s.stated_weekly_income_pence = None  # the review takes the HMRC figure over a reported one
            await self._recalculation.recalculate_from(review, "Annual review", template="annual_review")
            s.reviews_done += 1
            s.next_review_date = lifecycle.next_review_date(review).isoformat()
            await self._record.enter("Active", sla=date.fromisoformat(s.next_review_date))

    def _current_income_stays(self, review: date) -> bool:
        """Whether the income the case is on (reported and accepted) stays at this review: it
        differs from the HMRC figure the review takes by at least 25% (reg 34(2)(a))."""
        s = self._s
        if s.stated_weekly_income_pence is None or s.hmrc_annual_pence is None:
            return False
        if not workflow.patched(REVIEW_KEEPS_CURRENT_INCOME_PATCH):
            return False
        if not changes.review_keeps_current_income(s.hmrc_annual_pence, s.stated_weekly_income_pence, review):
            self._record.log("review_income", "The HMRC figure is used from the review: the current income "
                                              "differs from it by less than 25%")
            return False
        self._record.log("review_income", f"Current income of {format_pence(s.stated_weekly_income_pence)} a week "
                                          "stays: it differs from the HMRC figure by 25% or more (reg 34(2)(a))")
        return True

    async def _wait_for_review_date(self, review: date) -> bool:
        """Waits for the review date (True: the case is closing first). A child who stops
        qualifying before it is recalculated on that day, on the income in force before the
        review, so the review's own recalculation starts from the children who still qualify."""
        while True:
            target = self._review_window_target(review)
            child, day = target
            # Woken early by closure, or by an education report that moves the next stop.
            if await self._wait_until(day, functools.partial(self._review_window_moved, review, target)):
                if self._closing():
                    return True
                continue
            if child is None:
                return False
            await self._child_stops_qualifying(child, day)
            if self._closing():
                return True

    def _review_window_moved(self, review: date, target: tuple[ChildFacts | None, date]) -> bool:
        return self._closing() or self._review_window_target(review) != target

    def _review_window_target(self, review: date) -> tuple[ChildFacts | None, date]:
        """The next child to stop qualifying before the review date, and when; else (None, review)."""
        child_stop = self._next_child_stop()
        if child_stop and child_stop[1] < review:
            return child_stop
        return None, review

    async def _continue_as_new(self) -> None:
        """Only from run(), after every handler finished, with the state carried whole. A
        close_case update waits for the closure, so a closing case closes instead."""
        await workflow.wait_condition(lambda: workflow.all_handlers_finished() or self._closing())
        if self._closing():
            self._s.phase = "closing"
            return
        if self._record.dirty or self._record.unsynced():
            await self._record.sync()
        workflow.continue_as_new(CaseInput(
            case_id=self._s.case_id, publish_search_attributes=self._publish,
            max_events_per_run=self._s.max_events_per_run, carried_state=self._s,
        ))

    def _history_too_long(self) -> bool:
        info = workflow.info()
        return info.is_continue_as_new_suggested() or info.get_current_history_length() >= self._s.max_events_per_run

    # --- move to Collect & Pay (patch "collect-and-pay-switch") ------------------------------
    async def _switch_to_collect_and_pay(self, switch: ServiceSwitch) -> None:
        """Takes a decided move into the schedule: the service type and the recalculation with the
        fees in one step, so no change of circumstances sees the one without the other."""
        s = self._s
        record = self._record
        async with self._one_recalculation():
            s.pending_switch = None
            if s.service_type == "collect_and_pay":   # a change of circumstances got there first
                record.log("collect_and_pay_decided", "Already on Collect & Pay; nothing to move")
                return
            today = record.today()
            if date.fromisoformat(switch.effective_from) < today:   # decided before a review or a hold
                switch.effective_from = self._payment_events.collect_and_pay_start(today).isoformat()
            effective = date.fromisoformat(switch.effective_from)
            s.service_type = "collect_and_pay"
            s.collect_and_pay_switch = switch
            why = COLLECT_AND_PAY_REASONS[switch.reason]
            record.log("service_type", f"Service type: Collect & Pay from {effective.isoformat()} ({why}); "
                                       "collection fees apply: paying parent +20%, receiving parent -4%")
            await self._recalculation.recalculate_from(effective, "Moved to Collect & Pay",
                                                       template=COLLECT_AND_PAY_TEMPLATE,
                                                       extra_facts={"switch_reason": why})
            await record.sync()

    # --- closure ----------------------------------------------------------------------------
    async def _close(self) -> None:
        s = self._s
        record = self._record
        request = s.close_requested or ClosureRecord("unknown", record.today().isoformat(), "system")
        closes_on = date.fromisoformat(request.closed_on)
        today = record.today()
        if closes_on != today and request.reason != "no_qualifying_child" and workflow.patched(CLOSURE_EVENT_DATE_PATCH):
            if closes_on > today:
                # The receiving parent asked for a later day: liability runs until then.
                record.log("closure_waits", f"The case closes on {request.closed_on}, the day the receiving parent "
                                            "asked for")
                await self._wait_until(closes_on, lambda: False)
            elif s.schedule_version:
                # Liability from the date of the event on is reversed: payments stops the schedule
                # from that date and adjusts back what it charged for later periods.
                record.log("closure_backdated", f"Liability ends on {(closes_on - timedelta(days=1)).isoformat()}, "
                                                f"the day before the event; what fell due from {request.closed_on} "
                                                "is reversed")
        if s.schedule_version:
            await record.short_activity(CasePaymentActivities.stop_payment_schedule, StopScheduleRequest(
                f"{workflow.info().workflow_id}/stop", s.case_id, request.closed_on, request.reason))
        facts = {"closed_on": request.closed_on, "reason": request.reason}
        await record.send(record.to_both_parents("closure", "closure", facts))
        s.closure = request
        s.needs_caseworker = False
        s.pending_switch = None   # a move to Collect & Pay not yet made ends with the case
        record.log("closed", f"Case closed ({request.reason.replace('_', ' ')}); any arrears stay collectable")
        await record.enter("Closed", sla=None)
        s.phase = "closed"

    def _closing(self) -> bool:
        return self._s.close_requested is not None

    def _to_closing(self) -> None:
        self._s.phase = "closing"

    # --- waiting ----------------------------------------------------------------------------
    async def _wait_until(self, day: date, stop: Callable[[], bool]) -> bool:
        """Waits until case date `day` or until stop() holds (True then). Syncs the read model
        when a handler changed the case meanwhile, so notes show up without polling."""
        record = self._record
        while True:
            if stop():
                return True
            remaining = record.clock().seconds_until(day, workflow.now())
            if remaining <= 0:
                return False
            try:
                await workflow.wait_condition(lambda: stop() or record.dirty, timeout=remaining)
            except TimeoutError:
                return stop()
            if record.dirty and not stop():
                await record.sync()

    async def _hold_gate(self) -> None:
        s = self._s
        while s.on_hold and not self._closing():
            await workflow.wait_condition(lambda: not s.on_hold or self._closing() or self._record.dirty)
            if self._record.dirty:
                await self._record.sync()

    def _income_pending(self) -> bool:
        return self._s.awaiting_income and self._s.hmrc_annual_pence is not None

    # --- changes of circumstances (hooks of workflows.case_changes.CaseChanges) ----------------
    def _change_ledger(self) -> ChangeLedger:
        return self._s.changes

    def _change_case_facts(self) -> ChangeCaseFacts:
        return self._changes.case_facts()

    def _change_reviews_done(self) -> int:
        return self._s.reviews_done

    def _change_reported(self, n: int) -> None:
        self._changes.reported(n)

    async def _change_ready(self, outcome: ChangeOutcome) -> None:
        await self._changes.ready(outcome)

    async def _change_applied(self, outcome: ChangeOutcome, inputs: dict[str, Any]) -> None:
        async with self._one_recalculation():
            await self._changes.applied(outcome, inputs)

    # --- queries ----------------------------------------------------------------------------
    @workflow.query
    def state(self, query: CaseQuery = CaseQuery()) -> CaseView:
        s = self._s
        return CaseView(
            case_id=s.case_id, stage=s.stage, service_type=s.service_type, safeguarded=s.safeguarded,
            needs_caseworker=s.needs_caseworker, caseworker_reason=s.caseworker_reason, on_hold=s.on_hold,
            application_date=s.application_date, initial_effective_date=s.initial_effective_date,
            next_review_date=s.next_review_date, liability=s.liability, closure=s.closure,
            today=self._record.today().isoformat(), reviews_done=s.reviews_done, runs=s.runs,
            arrears_pence=s.arrears_pence or 0, missed_payments=s.missed_payments,
            collect_and_pay_switch=s.pending_switch or s.collect_and_pay_switch,
        )

    @workflow.query
    def liability_history(self, query: CaseQuery = CaseQuery()) -> LiabilityHistory:
        s = self._s
        children = [ChildQualifying(c.child_id, (self._stops_on(c) - timedelta(days=1)).isoformat())
                    for c in s.children]
        return LiabilityHistory(list(s.rates or []), children, s.closure.closed_on if s.closure else None)

    def _stops_on(self, child: ChildFacts) -> date:
        """The first day the child no longer qualifies."""
        if child.stopped_qualifying_on:
            return date.fromisoformat(child.stopped_qualifying_on)
        return self._qualifies_until(child)

    @workflow.query
    def timeline(self, query: CaseQuery = CaseQuery()) -> list[TimelineEvent]:
        return self._s.timeline[-query.recent:] if query.recent > 0 else []

    # --- caseworker updates (validated in workflows/case_validation.py: a bad request leaves
    # nothing in history) ------------------------------------------------------------------------
    @workflow.update
    def add_note(self, note: NoteRequest) -> NoteResult:
        self._record.log("note", f"Note by {note.author}: {note.text}")
        return NoteResult(entries=self._s.timeline_seq)

    @add_note.validator
    def _validate_note(self, note: NoteRequest) -> None:
        check.check_note(note)

    @workflow.update
    def request_manual_review(self, request: ManualReviewRequest) -> ActionResult:
        self._record.open_task(f"Manual review: {request.reason}", CASEWORKER_SLA_DAYS)
        self._record.log("manual_review_requested", f"Manual review requested by {request.actor}: {request.reason}")
        return ActionResult("manual review requested", self._s.stage)

    @request_manual_review.validator
    def _validate_manual_review(self, request: ManualReviewRequest) -> None:
        check.check_manual_review(self._s, request)

    @workflow.update
    def complete_manual_review(self, request: ReleaseRequest) -> ActionResult:
        s = self._s
        s.needs_caseworker = False
        s.caseworker_reason = ""
        self._record.log("manual_review_completed", f"Caseworker task completed by {request.actor}"
                                                    + (f": {request.note}" if request.note else ""))
        return ActionResult("caseworker task completed", s.stage)

    @complete_manual_review.validator
    def _validate_complete_review(self, request: ReleaseRequest) -> None:
        check.check_complete_review(self._s, request)

    @workflow.update
    def put_on_hold(self, request: HoldRequest) -> ActionResult:
        s = self._s
        s.on_hold, s.hold_reason = True, request.reason
        self._record.log("hold", f"Put on hold by {request.actor}: {request.reason}")
        return ActionResult("on hold", s.stage)

    @put_on_hold.validator
    def _validate_hold(self, request: HoldRequest) -> None:
        check.check_hold(self._s, request)

    @workflow.update
    def flag_safeguarding(self, request: SafeguardingFlag) -> ActionResult:
        self._s.safeguarded = True
        # The timeline is shown to both parents: it says that, not why (the reason stays with staff).
        self._record.log("safeguarding", f"Safeguarding profile set by {request.actor}")
        return ActionResult("safeguarded", self._s.stage)

    @flag_safeguarding.validator
    def _validate_safeguarding(self, request: SafeguardingFlag) -> None:
        check.check_safeguarding(self._s, request)

    @workflow.update
    def switch_to_collect_and_pay(self, request: CollectAndPayRequest) -> ActionResult:
        """Direct Pay to Collect & Pay from the next collection period (docs/rules.md section 10): the
        decision is recorded here; the main line recalculates with the fees and hands it over."""
        workflow.patched(COLLECT_AND_PAY_SWITCH_PATCH)
        switch = self._payment_events.decide_collect_and_pay(request.reason, request.actor.strip(), request.note)
        return ActionResult(f"moving to Collect & Pay from {switch.effective_from}", self._s.stage)

    @switch_to_collect_and_pay.validator
    def _validate_switch_to_collect_and_pay(self, request: CollectAndPayRequest) -> None:
        check.check_collect_and_pay(self._s, request)

    @workflow.update
    def release_hold(self, request: ReleaseRequest) -> ActionResult:
        s = self._s
        s.on_hold, s.hold_reason = False, ""
        self._record.log("hold_released", f"Hold released by {request.actor}"
                                          + (f": {request.note}" if request.note else ""))
        return ActionResult("released", s.stage)

    @release_hold.validator
    def _validate_release(self, request: ReleaseRequest) -> None:
        check.check_release(self._s, request)

    @workflow.update
    async def close_case(self, request: CloseRequest) -> CloseResult:
        """Closes the case from the first day without liability: the day recorded, or (patch
        "closure-from-event-date") the date of the event or the day the receiving parent asked for.
        A closure from a later day returns at once; the case closes on that day."""
        s = self._s
        today = self._record.today()
        closes_on = today
        if request.event_date and workflow.patched(CLOSURE_EVENT_DATE_PATCH):
            closes_on = check.closure_date(s, request, today)
        s.close_requested = ClosureRecord(request.reason, closes_on.isoformat(), request.actor)
        dated = f", from {closes_on.isoformat()}" if closes_on != today else ""
        self._record.log("close_requested", f"Closure requested by {request.actor}: "
                                            f"{request.reason.replace('_', ' ')}{dated}"
                                            + (f" ({request.note})" if request.note else ""))
        arrears = "any arrears stay with payments and remain collectable"
        if closes_on > today:
            return CloseResult("closing", closes_on.isoformat(), arrears)
        await workflow.wait_condition(lambda: s.phase == "closed")
        closure = s.closure or s.close_requested
        return CloseResult("closed", closure.closed_on, arrears)

    @close_case.validator
    def _validate_close(self, request: CloseRequest) -> None:
        check.check_close(self._s, request, self._record.today())

    # --- machine feeds (signals: facts, recorded; the main line acts on them) ------------------
    @workflow.signal
    def income_received(self, report: IncomeReport) -> None:
        if report.annual_pence < 0 or self._s.phase in ("closing", "closed"):
            workflow.logger.warning("income report ignored", extra={"case_id": self._s.case_id})
            return
        s = self._s
        if s.phase == "active" and s.hmrc_annual_pence is not None and workflow.patched(HMRC_FROM_NEXT_REVIEW_PATCH):
            # Reg 20: a figure in force stays until the next review, which takes this one unless
            # HMRC answers with a newer one when asked for the review.
            s.review_hmrc_annual_pence = report.annual_pence
            self._record.log("income_received", f"Income information received ({report.source}); it applies "
                                                f"from the next review date, {s.next_review_date}")
            return
        s.hmrc_annual_pence = report.annual_pence
        self._record.log("income_received", f"Income information received ({report.source})")

    @workflow.signal
    def education_ended(self, report: EducationEnded) -> None:
        child = next((c for c in self._s.children if c.child_id == report.child_id), None)
        try:
            ended: date | None = date.fromisoformat(report.on_date)
        except ValueError:
            ended = None
        if child is None or ended is None:
            workflow.logger.warning("education report ignored", extra={"case_id": self._s.case_id})
            return
        child.education_ended_on = ended.isoformat()
        self._record.log("education_ended", f"Child {child.child_id} left full-time education on {ended.isoformat()}")

    @workflow.signal(name=ENFORCEMENT_ENDED_SIGNAL)
    def enforcement_ended(self, n: int) -> None:
        """From the case's EnforcementWorkflow: it closed, so a later miss may start another."""
        self._payment_events.enforcement_ended(n)

    @workflow.signal(name=PAYMENT_EVENT_SIGNAL)
    def payment_event(self, event: PaymentEvent) -> None:
        """From payments (CollectionCycleWorkflow, DirectPayReportWorkflow): a missed or part
        payment. Recorded in the timeline and the arrears; a missed payment opens a collections
        caseworker task due in 7 case days. A repeated delivery (same event_id) is dropped."""
        if not workflow.patched(PAYMENT_EVENTS_PATCH):
            return
        self._payment_events.record(event)
