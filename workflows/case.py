"""CaseWorkflow: one long-lived workflow per case (`case-<case_id>`), SPEC.md 4.5.

Application → paying parent located → HMRC income requested → notice to the paying parent (the
initial effective date is 2 days later) → calculation (or a default decision after 28 days of
missing information) → both parents notified with the explanation → service type → payment
schedule handed to payments → Active. Then annual reviews (HMRC figure asked 30 days before each
anniversary and counted from it, recalculation, notices, new schedule) with continue-as-new after
each review and whenever the history grows past a bound, carrying one `CaseState`. Closure when the last child
stops qualifying, or on a caseworker's `close_case`; arrears stay with payments.

Time: every date is a *case date* from `domain.lifecycle.CaseClock` (calendar input: seconds
per day), so the same code runs a year in production or in minutes in demo mode.

Service type after assessment (SPEC 4.5 step 3): a Direct Pay case moves to Collect & Pay from its
next collection period, by a caseworker's `switch_to_collect_and_pay` or by itself when a second
missed Direct Pay payment falls due within 3 months of another; recalculated with the fees, both
parents written to, the new schedule version handed to payments (which starts collections).

Seam for changes of circumstances: `recalculate_from(effective_on, reason)` recalculates from
the liability inputs kept in the state and hands the new schedule to payments.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import date, datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.case_decision import DecisionWrites, write_decision
    from activities.case_notifications import CaseNotice, send_case_notices
    from activities.case_payments import (
        ScheduleRequest,
        StopScheduleRequest,
        create_payment_schedule,
        stop_payment_schedule,
    )
    from activities.case_records import CaseSnapshot, ChildRow, TimelineRow, sync_case_record
    from activities.hmrc import (
        PERMANENT_FAILURE_TYPE,
        AddressCheck,
        IncomeAnswer,
        IncomeRequest,
        request_hmrc_income,
        verify_paying_parent_address,
    )
    from cms.search_attributes import (
        ARREARS_PENCE,
        ASSIGNED_TEAM,
        CASE_STAGE,
        NEEDS_CASEWORKER,
        SERVICE_TYPE,
        SLA_DUE_AT,
    )
    from domain import lifecycle
    from domain.calculation import CalculationResult, ReceivingParent, calculate, default_decision, parse_request
    from domain.calculation import Child as CalcChild
    from domain.money import format_pence
    from domain.payments.letters import schedule_letter_facts
    from domain.payments.schedule import Frequency, next_instalments, period_containing, period_start
    from workflows.case_changes import CaseWorkflowChanges, as_rates
    from workflows.case_messages import (
        COLLECT_AND_PAY_REASONS,
        PAYMENT_EVENTS_REMEMBERED,
        TIMELINE_KEPT_IN_STATE,
        ActionResult,
        CaseInput,
        CaseOutcome,
        CaseQuery,
        CaseState,
        CaseView,
        ChildFacts,
        CloseRequest,
        CloseResult,
        ClosureRecord,
        CollectAndPayRequest,
        EducationEnded,
        HoldRequest,
        IncomeReport,
        LiabilityRecord,
        ManualReviewRequest,
        NoteRequest,
        NoteResult,
        RateInForce,
        ReleaseRequest,
        SafeguardingFlag,
        ServiceSwitch,
        TimelineEvent,
    )
    from workflows.change_messages import ReportedChange  # noqa: F401  the converter resolves its type hints here
    from workflows.payments import PAYMENT_EVENT_SIGNAL, PaymentEvent

# Re-exported so callers import the workflow and its messages from one place.
__all__ = ["CaseWorkflow", "CaseInput", "CaseState", "NoteRequest", "NoteResult", "CaseQuery"]

# A write a service refused for good: ActivityError for an activity, the ApplicationError itself
# for a local activity (the SDK resolves those without the ActivityError wrapper).
REFUSED = (ActivityError, ApplicationError)
RECORD_TIMEOUT = timedelta(seconds=30)
HMRC_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                         maximum_interval=timedelta(seconds=30), maximum_attempts=5,
                         non_retryable_error_types=[PERMANENT_FAILURE_TYPE])
# Patch (after the first recorded histories): the read-model, letter and schedule hand-overs
# run as local activities. They are short idempotent writes; as local activities they cost the
# server no task round trips and the history one marker instead of three events each.
LOCAL_RECORDS_PATCH = "local-record-activities"
# Patch: the address check and the HMRC request run side by side.
PARALLEL_CHECKS_PATCH = "parallel-address-and-hmrc"
# Patch: the first record of a new case is an ordinary activity, so the first workflow task
# completes at once and operators see CaseStage even while the database is unreachable.
FIRST_RECORD_PATCH = "first-record-as-activity"
# Patch: the letters, schedule hand-over and record of the move to Active go in one local
# activity (activities.case_decision) instead of three: one round trip, one marker.
ONE_DECISION_WRITE_PATCH = "one-decision-write"
# Patch: payment events from payments (missed / part payments) are recorded in the case.
PAYMENT_EVENTS_PATCH = "payment-events"
CASEWORKER_SLA_DAYS = 5
# A missed payment: a collections caseworker contacts the paying parent within 7 days
# (enforcement is a later issue).
COLLECTIONS_CONTACT_DAYS = 7
COLLECTIONS_TEAM = "collections"
PAYMENT_EVENT_KINDS = ("missed", "part_paid", "direct_pay_missed")
# Patch: a Direct Pay case moves to Collect & Pay (SPEC 4.5 step 3) from the start of a collection
# period, by a caseworker's `switch_to_collect_and_pay` or by itself after repeated missed Direct
# Pay payments; the first miss's caseworker task suggests the move.
COLLECT_AND_PAY_SWITCH_PATCH = "collect-and-pay-switch"
# One missed Direct Pay payment is a conversation with the paying parent; a second one falling due
# within 3 months of another is a pattern: the paying parent has not shown they will pay, so the
# case moves to Collect & Pay without waiting for a caseworker (who can move it at the first miss).
DIRECT_PAY_MISSES_FOR_SWITCH = 2
DIRECT_PAY_PATTERN_MONTHS = 3
# Due dates of missed Direct Pay payments kept in the state: enough to see a pattern, bounded.
DIRECT_PAY_MISSES_REMEMBERED = 6
COLLECT_AND_PAY_TEMPLATE = "service_type_change"
ASSESSMENT_SLA_DAYS = 28
# Patch: the HMRC figure asked for 30 days before an annual review is held until the review date
# (CaseState.review_hmrc_annual_pence), and a child who stops qualifying inside that window is
# recalculated then, on the figure in force, before the review's recalculation on the new one.
REVIEW_INCOME_PATCH = "review-income-on-review-date"
# Patch: every new schedule comes with a payment schedule letter (the next payment and the regular
# one, as payments charges them) to the paying parent, and on Direct Pay to the receiving parent.
SCHEDULE_LETTER_PATCH = "payment-schedule-letter"


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
        anchor_date=application,
        anchor_instant=now.isoformat(),
        seconds_per_day=case.calendar.seconds_per_day,
        application_date=application,
        max_events_per_run=case.max_events_per_run,
    )


@workflow.defn(name="CaseWorkflow")
class CaseWorkflow(CaseWorkflowChanges):  # report_change update, change_cleared signal (issue 7)
    @workflow.init
    def __init__(self, case: CaseInput) -> None:
        if case.carried_state is not None:
            self._s = case.carried_state
            self._s.runs += 1
        else:
            self._s = new_state(case, workflow.now())
        self._publish = case.publish_search_attributes
        self._dirty = False
        self._published: tuple | None = None
        # Under ONE_DECISION_WRITE_PATCH: letters and schedule held for the next record write.
        self._defer_writes = False
        self._deferred_notices: list[CaseNotice] = []
        self._deferred_schedule: ScheduleRequest | None = None

    # --- main line ------------------------------------------------------------------------
    @workflow.run
    async def run(self, case: CaseInput) -> CaseOutcome:
        s = self._s
        if s.phase == "assessment":
            await self._assess()
        while s.phase == "active":
            outcome = await self._active_step()
            if outcome == "review":
                await self._annual_review()
                if s.phase == "active":
                    await self._continue_as_new(case)
            elif outcome == "history":
                await self._continue_as_new(case)
        if s.phase == "closing":
            await self._close()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return CaseOutcome(s.case_id, s.stage, s.closure)

    async def _assess(self) -> None:
        s = self._s
        self._log("application", "Application received")
        await self._enter("Assessment", sla=self._today() + timedelta(days=ASSESSMENT_SLA_DAYS),
                          first_record=True)
        if workflow.patched(PARALLEL_CHECKS_PATCH):
            # Locating the paying parent and asking HMRC do not depend on each other: run them
            # together (the notice still waits for both).
            if not await self._step(self._locate_and_request_income):
                return
        else:
            if not await self._step(self._locate_paying_parent):
                return
            if not await self._step(self._request_income):
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
        self._log("service_type", f"Service type: {s.service_type.replace('_', ' ')} ({self._service_type_reason()})")
        # Nothing awaits between the calculation and the record under the patch: the letters and
        # the schedule wait for the record write of the move to Active and go with it.
        self._defer_writes = workflow.patched(ONE_DECISION_WRITE_PATCH)
        await self.recalculate_from(ied, "Initial calculation", template="calculation")
        await self._enter("Active", sla=date.fromisoformat(s.next_review_date or ""))
        self._defer_writes = False
        s.phase = "active"

    def _service_type_reason(self) -> str:
        s = self._s
        if s.safeguarded:
            return "safeguarding: no consent of the other parent needed"
        if s.requested_service_type == "collect_and_pay":
            return "a parent asked for it"
        return "the default when both parents agree"

    async def _step(self, action: Callable) -> bool:
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
        await asyncio.gather(self._locate_paying_parent(), self._request_income())

    async def _locate_paying_parent(self) -> None:
        s = self._s
        try:
            await workflow.execute_activity(
                verify_paying_parent_address, AddressCheck(s.case_id, s.paying_parent_id),
                start_to_close_timeout=RECORD_TIMEOUT, retry_policy=HMRC_RETRY,
            )
            s.address_verified = True
            self._log("address_verified", "Paying parent located; address verified")
        except ActivityError:
            await self._route_to_caseworker("Paying parent's address could not be verified")
            await workflow.wait_condition(lambda: not s.needs_caseworker or self._closing())
            s.address_verified = True

    async def _request_income(self, for_review: bool = False) -> None:
        """Asks HMRC for the paying parent's income. `for_review`: the answer is for the coming
        annual review, held in review_hmrc_annual_pence until the review date."""
        s = self._s
        today = self._today()
        s.hmrc_requested_on = today.isoformat()
        self._log("hmrc_requested", "HMRC income figure requested")
        try:
            answer: IncomeAnswer = await workflow.execute_activity(
                request_hmrc_income, IncomeRequest(s.case_id, s.paying_parent_id, today.isoformat()),
                start_to_close_timeout=RECORD_TIMEOUT, retry_policy=HMRC_RETRY,
            )
        except ActivityError:
            await self._route_to_caseworker("HMRC income request failed permanently")
            s.awaiting_income = s.hmrc_annual_pence is None
            return
        if answer.found and for_review:
            s.review_hmrc_annual_pence = answer.annual_pence
            self._log("hmrc_received", f"HMRC figure received for tax year {answer.tax_year}; "
                                       "it counts from the annual review date")
        elif answer.found:
            s.hmrc_annual_pence = answer.annual_pence
            self._log("hmrc_received", f"HMRC figure received for tax year {answer.tax_year}")
        elif s.hmrc_annual_pence is None:
            s.awaiting_income = True
            self._log("information_missing", "No HMRC figure; waiting up to 28 days for income information")
        else:
            self._log("information_missing", "No new HMRC figure; the previous figure stays")

    async def _send_notice_of_application(self) -> None:
        s = self._s
        today = self._today()
        ied = lifecycle.initial_effective_date(today)
        s.initial_effective_date = ied.isoformat()
        s.next_review_date = lifecycle.first_review_date(ied).isoformat()
        await self._send([self._notice(s.paying_parent_id, "notice_of_application", "initial",
                                       {"initial_effective_date": ied.isoformat()})])
        self._log("notice_sent", f"Notice to the paying parent: initial effective date {ied.isoformat()}")

    # --- active life ----------------------------------------------------------------------
    async def _active_step(self) -> str | None:
        """Waits for the next thing that happens to an active case and handles it. Returns
        "review" when the annual review is due, "history" when the run should continue as new."""
        s = self._s
        review_prep = lifecycle.hmrc_request_date(date.fromisoformat(s.next_review_date or ""))
        child_stop = self._next_child_stop()
        target = min(review_prep, child_stop[1]) if child_stop else review_prep
        if self._closing():
            s.phase = "closing"
            return None
        if self._history_too_long():
            return "history"
        await self._wait_until(target, lambda: self._closing() or self._dirty or self._income_pending()
                               or self._history_too_long() or s.pending_switch is not None)
        # A hold stops the case taking its next step (review, recalculation, closure at a
        # birthday) until a caseworker releases it; a caseworker's close_case still goes ahead.
        await self._hold_gate()
        if self._closing():
            s.phase = "closing"
            return None
        if s.pending_switch is not None:   # only ever set under COLLECT_AND_PAY_SWITCH_PATCH
            await self._switch_to_collect_and_pay(s.pending_switch)
            return None
        if self._income_pending():
            await self.recalculate_from(self._today(), "Income information received; default decision replaced")
            return None
        today = self._today()
        if child_stop and today >= child_stop[1]:
            await self._child_stops_qualifying(child_stop[0], child_stop[1])
            return None
        if today >= review_prep:
            return "review"
        if self._dirty:
            await self._sync()
        return None

    def _next_child_stop(self) -> tuple[ChildFacts, date] | None:
        stops = [(child, self._qualifies_until(child)) for child in self._s.children
                 if child.stopped_qualifying_on is None]
        return min(stops, key=lambda pair: pair[1]) if stops else None

    @staticmethod
    def _qualifies_until(child: ChildFacts) -> date:
        ended = date.fromisoformat(child.education_ended_on) if child.education_ended_on else None
        return lifecycle.qualifies_until(date.fromisoformat(child.date_of_birth),
                                         child.in_full_time_education, ended)

    async def _child_stops_qualifying(self, child: ChildFacts, on: date) -> None:
        s = self._s
        child.stopped_qualifying_on = on.isoformat()
        self._log("child_stopped_qualifying", f"Child {child.child_id} stopped qualifying on {on.isoformat()}")
        if any(c.stopped_qualifying_on is None for c in s.children):
            await self.recalculate_from(on, f"Child {child.child_id} no longer qualifies")
        else:
            s.close_requested = ClosureRecord("no_qualifying_child", on.isoformat(), "system")
            s.phase = "closing"

    async def _annual_review(self) -> None:
        s = self._s
        review = date.fromisoformat(s.next_review_date or "")
        await self._enter("AnnualReview", sla=review)
        held = workflow.patched(REVIEW_INCOME_PATCH)
        await self._request_income(for_review=held)
        closing = await self._wait_for_review_date(review) if held else await self._wait_until(review, self._closing)
        if closing:
            s.phase = "closing"
            return
        if s.review_hmrc_annual_pence is not None:
            # The new figure counts from the review date, not from when HMRC answered.
            s.hmrc_annual_pence, s.review_hmrc_annual_pence = s.review_hmrc_annual_pence, None
        if s.hmrc_annual_pence is not None:
            s.stated_weekly_income_pence = None  # the review takes the HMRC figure over a reported one
        await self.recalculate_from(review, "Annual review", template="annual_review")
        s.reviews_done += 1
        s.next_review_date = lifecycle.next_review_date(review).isoformat()
        await self._enter("Active", sla=date.fromisoformat(s.next_review_date))

    async def _wait_for_review_date(self, review: date) -> bool:
        """Waits for the review date (True: the case is closing first). A child who stops
        qualifying before it is recalculated on that day, on the income in force before the
        review, so the review's own recalculation starts from the children who still qualify."""
        while True:
            child, day = target = self._review_window_target(review)
            # Woken early by closure, or by an education report that moves the next stop.
            if await self._wait_until(day, lambda: self._closing() or self._review_window_target(review) != target):
                if self._closing():
                    return True
                continue
            if child is None:
                return False
            await self._child_stops_qualifying(child, day)
            if self._closing():
                return True

    def _review_window_target(self, review: date) -> tuple[ChildFacts | None, date]:
        """The next child to stop qualifying before the review date, and when; else (None, review)."""
        child_stop = self._next_child_stop()
        if child_stop and child_stop[1] < review:
            return child_stop
        return None, review

    async def _continue_as_new(self, case: CaseInput) -> None:
        """Only from run(), after every handler finished, with the state carried whole. A
        close_case update waits for the closure, so a closing case closes instead."""
        await workflow.wait_condition(lambda: workflow.all_handlers_finished() or self._closing())
        if self._closing():
            self._s.phase = "closing"
            return
        if self._dirty or self._unsynced():
            await self._sync()
        workflow.continue_as_new(CaseInput(
            case_id=self._s.case_id, publish_search_attributes=self._publish,
            max_events_per_run=self._s.max_events_per_run, carried_state=self._s,
        ))

    def _history_too_long(self) -> bool:
        info = workflow.info()
        return info.is_continue_as_new_suggested() or info.get_current_history_length() >= self._s.max_events_per_run

    # --- calculation seam -----------------------------------------------------------------
    async def recalculate_from(self, effective_on: date, reason: str, template: str = "recalculation",
                               extra_facts: dict[str, str] | None = None) -> LiabilityRecord:
        """Recalculates from the liability inputs in the state, effective `effective_on`;
        notifies both parents with the explanation (plus `extra_facts` for the letter) and hands
        the new schedule to payments. Changes of circumstances call this after updating the inputs."""
        s = self._s
        result = self._calculate(effective_on)
        if s.hmrc_annual_pence is not None:
            s.awaiting_income = False
            self._clear_caseworker_if("HMRC")
        s.liability = LiabilityRecord(
            rate=result.rate, weekly_liability_pence=result.weekly_liability_pence,
            paying_parent_pays_pence=result.paying_parent_pays_pence,
            receiving_parent_receives_pence=result.receiving_parents_receive_pence,
            effective_date=effective_on.isoformat(), rule_set_id=result.rule_set_id,
            gross_weekly_income_pence=result.gross_weekly_income_pence,
        )
        if result.rate == "default" and template != COLLECT_AND_PAY_TEMPLATE:
            template = "default_decision"
        self._log("calculation", f"{reason}: {result.rate} rate, {format_pence(result.weekly_liability_pence)} a week "
                                 f"from {effective_on.isoformat()}")
        facts = {"effective_date": effective_on.isoformat(), "rate": result.rate,
                 "weekly_liability_pence": str(result.weekly_liability_pence),
                 "paying_parent_pays_pence": str(result.paying_parent_pays_pence),
                 "receiving_parent_receives_pence": str(result.receiving_parents_receive_pence),
                 **(extra_facts or {})}
        texts = [step.text for step in result.explanation]
        key = f"{template}-{effective_on.isoformat()}-{s.schedule_version + 1}"
        rates = self._rates_with(effective_on, result)
        await self._send([self._notice(s.paying_parent_id, template, key, facts, texts),
                          self._notice(s.receiving_parent_id, template, key, facts, texts),
                          *self._schedule_letters(effective_on, rates, key)])
        self._log("parents_notified", "Both parents notified with the explanation")
        await self._hand_schedule_to_payments(effective_on, result, rates)
        return s.liability

    def _schedule_letters(self, effective_on: date, rates: list[RateInForce] | None, key: str) -> list[CaseNotice]:
        """The payment schedule letters for the version about to be handed to payments, whose
        liability history is `rates` (patch "payment-schedule-letter"), in the same write as the
        calculation letters. None for a version superseded at once (the earlier dates of a change
        applied out of date order) or in a run that began before the liability history was kept."""
        s = self._s
        if rates is None or self._inputs_as_of is not None or not workflow.patched(SCHEDULE_LETTER_PATCH):
            return []
        history = as_rates(rates)
        service_type = self._schedule_service_type()
        recipients = [(s.paying_parent_id, True)]
        if service_type == "direct_pay":
            recipients.append((s.receiving_parent_id, False))
        # Its own idempotency key: the calculation letter to the same parent has `key` already.
        return [self._notice(party, "payment_schedule", f"{key}/schedule", schedule_letter_facts(
                    s.payment_frequency, service_type, history, effective_on, self._today(), to_paying_parent=paying))
                for party, paying in recipients]

    def _calculate(self, effective_on: date) -> CalculationResult:
        s = self._s
        as_of_default = self._default_decision_as_of(effective_on)  # workflows.case_changes
        if as_of_default is not None:
            return as_of_default
        qualifying = [c for c in s.children if c.stopped_qualifying_on is None]
        if s.hmrc_annual_pence is None and s.stated_weekly_income_pence is None:
            parent = ReceivingParent(s.receiving_parent_id, tuple(CalcChild(c.child_id, c.shared_care_nights)
                                                                  for c in qualifying))
            return default_decision(len(qualifying), (parent,), s.service_type, effective_date=effective_on)  # type: ignore[arg-type]
        # Includes what changes of circumstances set (benefit, stated income): workflows.case_changes.
        return calculate(parse_request(self._calculation_inputs()), effective_date=effective_on)

    async def _hand_schedule_to_payments(self, effective_on: date, result: CalculationResult,
                                         rates: list[RateInForce] | None) -> None:
        """Hands the new schedule version to payments; `rates` is the liability history with it."""
        s = self._s
        s.rates = rates
        s.schedule_version += 1
        plan = lifecycle.payment_plan(result.paying_parent_pays_pence, s.payment_frequency, effective_on)
        if s.phase == "assessment":
            await self._enter("PaymentSchedule", sync=False)
        await self._write_schedule(
            ScheduleRequest(
                idempotency_key=f"{workflow.info().workflow_id}/schedule-{s.schedule_version}",
                case_id=s.case_id, version=s.schedule_version, service_type=self._schedule_service_type(),
                frequency=plan.frequency, effective_from=effective_on.isoformat(),
                weekly_liability_pence=result.weekly_liability_pence,
                paying_parent_pays_weekly_pence=result.paying_parent_pays_pence,
                instalment_pence=plan.instalment_pence, first_instalment_pence=plan.first_instalment_pence,
                instalments_per_year=plan.instalments_per_year, first_due_date=plan.first_due_date.isoformat(),
                annual_pence=plan.annual_pence,
                paying_parent_fee_pence=sum(rp.paying_parent_fee_pence for rp in result.receiving_parents),
                receiving_parent_fee_pence=sum(rp.receiving_parent_fee_pence for rp in result.receiving_parents),
                rule_set_id=result.rule_set_id,
                # The case calendar, so payments' collection cycles keep case time too.
                case_day=self._today().isoformat(), case_instant=workflow.now().isoformat(),
                seconds_per_day=s.seconds_per_day,
            ),
        )
        if s.rates is None:  # a run that began before the liability history was kept
            upcoming = f"first payment {format_pence(plan.first_instalment_pence)} due {plan.first_due_date.isoformat()}"
        else:  # as payments charges it (the plan's own first date is the end of the first period)
            history = as_rates(s.rates)
            ahead = next_instalments(Frequency(s.payment_frequency), history[0].effective_from, history,
                                     self._today(), count=1)[0]
            upcoming = (f"next payment {format_pence(ahead.amount_pence + ahead.fee_pence)} "
                        f"due {ahead.period.due_date.isoformat()}")
        self._log("schedule", f"Payment schedule {s.schedule_version} handed to payments: {plan.frequency}, {upcoming}")

    def _rates_with(self, effective_on: date, result: CalculationResult) -> list[RateInForce] | None:
        """The liability history as payments will hold it once this version is handed over (it
        replaces every entry from its date on), kept from the first schedule; None in a run that
        began before the history was kept (state only: no command depends on it but the letters)."""
        s = self._s
        kept = [] if s.schedule_version == 0 else s.rates
        if kept is None:
            return None
        on = effective_on.isoformat()
        return [rate for rate in kept if rate.effective_from < on] + [RateInForce(
            on, result.weekly_liability_pence, result.paying_parent_pays_pence - result.weekly_liability_pence)]

    # --- move to Collect & Pay (patch "collect-and-pay-switch") ------------------------------
    def _decide_collect_and_pay(self, reason: str, actor: str, note: str = "") -> ServiceSwitch:
        """Records the decision; the main line takes it into the schedule (`_active_step`), so the
        recalculation never runs beside the annual review's or a change's."""
        s = self._s
        today = self._today()
        switch = ServiceSwitch(reason, actor, today.isoformat(), self._collect_and_pay_start(today).isoformat(), note)
        s.pending_switch = switch
        self._log("collect_and_pay_decided", f"Move to Collect & Pay decided by {actor} "
                                             f"({COLLECT_AND_PAY_REASONS[reason]}): from {switch.effective_from}")
        return switch

    def _collect_and_pay_start(self, today: date) -> date:
        """The first collection period starting on or after `today`: periods before it were
        Direct Pay, paid between the parents, and stay so. Periods count from the initial
        effective date, as payments' schedule does; never before the liability in force."""
        s = self._s
        first = date.fromisoformat(s.initial_effective_date or today.isoformat())
        start = first
        if today > first:
            frequency = Frequency(s.payment_frequency)
            index = period_containing(frequency, first, today)
            start = period_start(frequency, first, index)
            if start < today:
                start = period_start(frequency, first, index + 1)
        in_force = date.fromisoformat(s.liability.effective_date) if s.liability else start
        return max(start, in_force)

    async def _switch_to_collect_and_pay(self, switch: ServiceSwitch) -> None:
        s = self._s
        s.pending_switch = None
        if s.service_type == "collect_and_pay":   # a change of circumstances got there first
            self._log("collect_and_pay_decided", "Already on Collect & Pay; nothing to move")
            return
        today = self._today()
        if date.fromisoformat(switch.effective_from) < today:   # decided before a review or a hold
            switch.effective_from = self._collect_and_pay_start(today).isoformat()
        effective = date.fromisoformat(switch.effective_from)
        s.service_type = "collect_and_pay"
        s.collect_and_pay_switch = switch
        why = COLLECT_AND_PAY_REASONS[switch.reason]
        self._log("service_type", f"Service type: Collect & Pay from {effective.isoformat()} ({why}); "
                                  "collection fees apply: paying parent +20%, receiving parent -4%")
        await self.recalculate_from(effective, "Moved to Collect & Pay", template=COLLECT_AND_PAY_TEMPLATE,
                                    extra_facts={"switch_reason": why})
        await self._sync()

    def _direct_pay_missed(self, event: PaymentEvent, what: str) -> None:
        """A missed Direct Pay payment: a collections task either way; a pattern of misses moves
        the case to Collect & Pay by itself, a first miss suggests the move to the caseworker."""
        s = self._s
        due = self._due_date_of(event)
        dues = sorted(set(s.direct_pay_missed_due) | {due.isoformat()})
        s.direct_pay_missed_due = dues[-DIRECT_PAY_MISSES_REMEMBERED:]
        movable = s.phase == "active" and s.service_type == "direct_pay" and s.pending_switch is None
        if movable and self._direct_pay_pattern() and not s.on_hold:
            switch = self._decide_collect_and_pay("direct_pay_missed", "system")
            task = (f"{what} again within {DIRECT_PAY_PATTERN_MONTHS} months: moving to Collect & Pay from "
                    f"{switch.effective_from}; contact the paying parent about the arrears and how to pay")
        elif movable:
            task = (f"{what}: contact the paying parent; if they have not shown they will pay, move the case "
                    "to Collect & Pay (switch_to_collect_and_pay)")
        else:
            task = f"{what}: contact the paying parent"
        self._open_collections_task(task)

    def _due_date_of(self, event: PaymentEvent) -> date:
        try:
            return date.fromisoformat(event.due_date)
        except (TypeError, ValueError):
            return self._today()   # a report without a usable date counts as due today

    def _direct_pay_pattern(self) -> bool:
        dues = [date.fromisoformat(d) for d in self._s.direct_pay_missed_due]
        window = DIRECT_PAY_MISSES_FOR_SWITCH - 1
        return any(lifecycle.add_months(dues[i], DIRECT_PAY_PATTERN_MONTHS) >= dues[i + window]
                   for i in range(len(dues) - window))

    def _open_collections_task(self, reason: str) -> None:
        s = self._s
        s.needs_caseworker = True
        s.caseworker_reason = reason
        s.assigned_team = COLLECTIONS_TEAM
        s.sla_due_on = (self._today() + timedelta(days=COLLECTIONS_CONTACT_DAYS)).isoformat()
        self._log("caseworker_needed", f"{reason} (within {COLLECTIONS_CONTACT_DAYS} days)")

    # --- closure ----------------------------------------------------------------------------
    async def _close(self) -> None:
        s = self._s
        request = s.close_requested or ClosureRecord("unknown", self._today().isoformat(), "system")
        if s.schedule_version:
            await self._short_activity(
                stop_payment_schedule,
                StopScheduleRequest(f"{workflow.info().workflow_id}/stop", s.case_id, request.closed_on, request.reason),
            )
        facts = {"closed_on": request.closed_on, "reason": request.reason}
        await self._send([self._notice(s.paying_parent_id, "closure", "closure", facts),
                          self._notice(s.receiving_parent_id, "closure", "closure", facts)])
        s.closure = request
        s.needs_caseworker = False
        s.pending_switch = None   # a move to Collect & Pay not yet made ends with the case
        self._log("closed", f"Case closed ({request.reason.replace('_', ' ')}); any arrears stay collectable")
        await self._enter("Closed", sla=None)
        s.phase = "closed"

    def _closing(self) -> bool:
        return self._s.close_requested is not None

    def _to_closing(self) -> None:
        self._s.phase = "closing"

    # --- waiting ----------------------------------------------------------------------------
    async def _wait_until(self, day: date, stop: Callable[[], bool]) -> bool:
        """Waits until case date `day` or until stop() holds (True then). Syncs the read model
        when a handler changed the case meanwhile, so notes show up without polling."""
        while True:
            if stop():
                return True
            remaining = self._clock().seconds_until(day, workflow.now())
            if remaining <= 0:
                return False
            try:
                await workflow.wait_condition(lambda: stop() or self._dirty, timeout=remaining)
            except TimeoutError:
                return stop()
            if self._dirty and not stop():
                await self._sync()

    async def _hold_gate(self) -> None:
        s = self._s
        while s.on_hold and not self._closing():
            await workflow.wait_condition(lambda: not s.on_hold or self._closing() or self._dirty)
            if self._dirty:
                await self._sync()

    def _income_pending(self) -> bool:
        return self._s.awaiting_income and self._s.hmrc_annual_pence is not None

    # --- records, notices, search attributes ------------------------------------------------
    def _clock(self) -> lifecycle.CaseClock:
        s = self._s
        return lifecycle.CaseClock(date.fromisoformat(s.anchor_date), datetime.fromisoformat(s.anchor_instant),
                                   s.seconds_per_day)

    def _today(self) -> date:
        return self._clock().today(workflow.now())

    def _log(self, kind: str, text: str) -> None:
        s = self._s
        s.timeline_seq += 1
        s.timeline.append(TimelineEvent(workflow.now().isoformat(), self._today().isoformat(), kind, text,
                                        s.timeline_seq))
        self._dirty = True

    def _unsynced(self) -> bool:
        return self._s.timeline_seq > self._s.synced_seq

    async def _enter(self, stage: str, sla: date | None = None, sync: bool = True,
                     first_record: bool = False) -> None:
        s = self._s
        s.stage = stage
        if sla is not None or stage == "Closed":
            s.sla_due_on = sla.isoformat() if sla else None
        self._log("stage", f"Case moved to {stage}")
        if sync:
            await self._sync(first_record=first_record)
        else:
            self._publish_attributes()

    async def _route_to_caseworker(self, reason: str) -> None:
        s = self._s
        s.needs_caseworker = True
        s.caseworker_reason = reason
        s.sla_due_on = (self._today() + timedelta(days=CASEWORKER_SLA_DAYS)).isoformat()
        self._log("caseworker_needed", reason)
        await self._sync()

    def _clear_caseworker_if(self, reason_prefix: str) -> None:
        s = self._s
        if s.needs_caseworker and s.caseworker_reason.startswith(reason_prefix):
            s.needs_caseworker = False
            s.caseworker_reason = ""
            self._log("caseworker_cleared", "Information arrived; caseworker task closed")

    def _sla_instant(self) -> datetime | None:
        s = self._s
        return self._clock().instant_of(date.fromisoformat(s.sla_due_on)) if s.sla_due_on else None

    def _publish_attributes(self) -> None:
        if not self._publish:
            return
        s = self._s
        sla = self._sla_instant()
        current = (s.stage, s.service_type, s.needs_caseworker, sla, s.arrears_pence, s.assigned_team)
        if current == self._published:
            return
        self._published = current
        updates = [
            CASE_STAGE.value_set(s.stage), SERVICE_TYPE.value_set(s.service_type),
            NEEDS_CASEWORKER.value_set(s.needs_caseworker),
            SLA_DUE_AT.value_set(sla) if sla else SLA_DUE_AT.value_unset(),
        ]
        # Only once payments reported something (patch "payment-events"): older runs upsert as before.
        if s.arrears_pence is not None:
            updates.append(ARREARS_PENCE.value_set(s.arrears_pence))
        if s.assigned_team:
            updates.append(ASSIGNED_TEAM.value_set(s.assigned_team))
        workflow.upsert_search_attributes(updates)

    async def _sync(self, first_record: bool = False) -> None:
        """Writes the case and its new timeline entries to the read model; keeps only the most
        recent timeline entries in the state, so the carried state stays small."""
        s = self._s
        self._dirty = False
        self._publish_attributes()
        snapshot = self._snapshot()
        if self._deferred_notices or self._deferred_schedule is not None:
            writes = DecisionWrites(snapshot, self._deferred_notices, self._deferred_schedule)
            self._deferred_notices, self._deferred_schedule = [], None
            try:
                await workflow.execute_local_activity(write_decision, writes, start_to_close_timeout=RECORD_TIMEOUT)
            except REFUSED:  # a permanent refusal: see _write_or_hand_over
                await self._route_to_caseworker("Decision letters or payment schedule refused: check and resend")
                return
        elif first_record and workflow.patched(FIRST_RECORD_PATCH):
            await workflow.execute_activity(sync_case_record, snapshot, start_to_close_timeout=RECORD_TIMEOUT)
        else:
            await self._short_activity(sync_case_record, snapshot)
        s.synced_seq = max(s.synced_seq, max((row.seq for row in snapshot.timeline), default=0))
        while len(s.timeline) > TIMELINE_KEPT_IN_STATE and s.timeline[0].seq <= s.synced_seq:
            s.timeline.pop(0)

    def _snapshot(self) -> CaseSnapshot:
        s = self._s
        liability = s.liability
        closure = s.closure
        sla = self._sla_instant()
        return CaseSnapshot(
            case_id=s.case_id, stage=s.stage, service_type=s.service_type, safeguarded=s.safeguarded,
            application_date=s.application_date, case_day=self._today().isoformat(),
            initial_effective_date=s.initial_effective_date, next_review_date=s.next_review_date,
            rate=liability.rate if liability else None,
            weekly_liability_pence=liability.weekly_liability_pence if liability else None,
            paying_parent_pays_pence=liability.paying_parent_pays_pence if liability else None,
            receiving_parent_receives_pence=liability.receiving_parent_receives_pence if liability else None,
            liability_effective_date=liability.effective_date if liability else None,
            rule_set_id=liability.rule_set_id if liability else None,
            needs_caseworker=s.needs_caseworker, caseworker_reason=s.caseworker_reason,
            on_hold=s.on_hold, hold_reason=s.hold_reason, sla_due_at=sla.isoformat() if sla else None,
            closure_reason=closure.reason if closure else None, closed_on=closure.closed_on if closure else None,
            reviews_done=s.reviews_done,
            children=[ChildRow(c.child_id, c.date_of_birth, c.shared_care_nights, c.in_full_time_education,
                               c.stopped_qualifying_on) for c in s.children],
            timeline=[TimelineRow(e.seq, e.at, e.day, e.kind, e.text) for e in s.timeline if e.seq > s.synced_seq],
        )

    def _notice(self, recipient: str, template: str, key: str, facts: dict[str, str],
                explanation: list[str] | None = None) -> CaseNotice:
        return CaseNotice(f"{workflow.info().workflow_id}/{key}/{recipient}", self._s.case_id, recipient,
                          template, facts, explanation or [])

    async def _send(self, notices: list[CaseNotice]) -> None:
        if self._defer_writes:
            self._deferred_notices += notices
            return
        await self._write_or_hand_over(send_case_notices, notices, "Letters refused by notifications")

    async def _write_schedule(self, request: ScheduleRequest) -> None:
        if self._defer_writes:
            self._deferred_schedule = request
            return
        await self._write_or_hand_over(create_payment_schedule, request, "Payment schedule refused by payments")

    async def _write_or_hand_over(self, activity: Callable, argument: object, refusal: str) -> None:
        """Only a permanent refusal fails these writes (transient faults are retried). A letter or
        schedule a service will never accept must not fail the whole case: a caseworker takes it
        over, with the decision kept in the state."""
        try:
            await self._short_activity(activity, argument)
        except REFUSED:
            await self._route_to_caseworker(f"{refusal}: check and resend")

    async def _short_activity(self, activity: Callable, argument: object) -> None:
        if workflow.patched(LOCAL_RECORDS_PATCH):
            await workflow.execute_local_activity(activity, argument, start_to_close_timeout=RECORD_TIMEOUT)
        else:
            await workflow.execute_activity(activity, argument, start_to_close_timeout=RECORD_TIMEOUT)

    # --- queries ----------------------------------------------------------------------------
    @workflow.query
    def state(self, query: CaseQuery = CaseQuery()) -> CaseView:
        s = self._s
        return CaseView(
            case_id=s.case_id, stage=s.stage, service_type=s.service_type, safeguarded=s.safeguarded,
            needs_caseworker=s.needs_caseworker, caseworker_reason=s.caseworker_reason, on_hold=s.on_hold,
            application_date=s.application_date, initial_effective_date=s.initial_effective_date,
            next_review_date=s.next_review_date, liability=s.liability, closure=s.closure,
            today=self._today().isoformat(), reviews_done=s.reviews_done, runs=s.runs,
            arrears_pence=s.arrears_pence or 0, missed_payments=s.missed_payments,
            collect_and_pay_switch=s.pending_switch or s.collect_and_pay_switch,
        )

    @workflow.query
    def timeline(self, query: CaseQuery = CaseQuery()) -> list[TimelineEvent]:
        return self._s.timeline[-query.recent:] if query.recent > 0 else []

    # --- caseworker updates (validated: a bad request leaves nothing in history) -----------
    def _require_open(self) -> None:
        if self._s.phase in ("closing", "closed") or self._closing():
            raise ValueError("the case is closed or closing")

    @staticmethod
    def _require_text(**values: str) -> None:
        for name, value in values.items():
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"{name} is required")
            if len(value) > 2000:
                raise ValueError(f"{name} is longer than 2,000 characters")

    @workflow.update
    def add_note(self, note: NoteRequest) -> NoteResult:
        self._log("note", f"Note by {note.author}: {note.text}")
        return NoteResult(entries=self._s.timeline_seq)

    @add_note.validator
    def _validate_note(self, note: NoteRequest) -> None:
        self._require_text(text=note.text, author=note.author)

    @workflow.update
    def request_manual_review(self, request: ManualReviewRequest) -> ActionResult:
        s = self._s
        s.needs_caseworker = True
        s.caseworker_reason = f"Manual review: {request.reason}"
        s.sla_due_on = (self._today() + timedelta(days=CASEWORKER_SLA_DAYS)).isoformat()
        self._log("manual_review_requested", f"Manual review requested by {request.actor}: {request.reason}")
        return ActionResult("manual review requested", s.stage)

    @request_manual_review.validator
    def _validate_manual_review(self, request: ManualReviewRequest) -> None:
        self._require_text(reason=request.reason, actor=request.actor)
        self._require_open()

    @workflow.update
    def complete_manual_review(self, request: ReleaseRequest) -> ActionResult:
        s = self._s
        s.needs_caseworker = False
        s.caseworker_reason = ""
        self._log("manual_review_completed", f"Caseworker task completed by {request.actor}"
                                             + (f": {request.note}" if request.note else ""))
        return ActionResult("caseworker task completed", s.stage)

    @complete_manual_review.validator
    def _validate_complete_review(self, request: ReleaseRequest) -> None:
        self._require_text(actor=request.actor)
        if not self._s.needs_caseworker:
            raise ValueError("the case has no open caseworker task")

    @workflow.update
    def put_on_hold(self, request: HoldRequest) -> ActionResult:
        s = self._s
        s.on_hold, s.hold_reason = True, request.reason
        self._log("hold", f"Put on hold by {request.actor}: {request.reason}")
        return ActionResult("on hold", s.stage)

    @put_on_hold.validator
    def _validate_hold(self, request: HoldRequest) -> None:
        self._require_text(reason=request.reason, actor=request.actor)
        self._require_open()
        if self._s.on_hold:
            raise ValueError("the case is already on hold")

    @workflow.update
    def flag_safeguarding(self, request: SafeguardingFlag) -> ActionResult:
        s = self._s
        s.safeguarded = True
        # The timeline is shown to both parents: it says that, not why (the reason stays with staff).
        self._log("safeguarding", f"Safeguarding profile set by {request.actor}")
        return ActionResult("safeguarded", s.stage)

    @flag_safeguarding.validator
    def _validate_safeguarding(self, request: SafeguardingFlag) -> None:
        self._require_text(reason=request.reason, actor=request.actor)
        self._require_open()
        if self._s.safeguarded:
            raise ValueError("the case already has a safeguarding profile")

    @workflow.update
    def switch_to_collect_and_pay(self, request: CollectAndPayRequest) -> ActionResult:
        """Direct Pay to Collect & Pay from the next collection period (SPEC 4.5 step 3): the
        liability is recalculated with the fees, both parents get a letter, payments the schedule."""
        workflow.patched(COLLECT_AND_PAY_SWITCH_PATCH)
        switch = self._decide_collect_and_pay(request.reason, request.actor.strip(), request.note)
        return ActionResult(f"moving to Collect & Pay from {switch.effective_from}", self._s.stage)

    @switch_to_collect_and_pay.validator
    def _validate_switch_to_collect_and_pay(self, request: CollectAndPayRequest) -> None:
        s = self._s
        self._require_text(reason=request.reason, actor=request.actor)
        if request.reason not in COLLECT_AND_PAY_REASONS:
            raise ValueError(f"reason must be one of {', '.join(COLLECT_AND_PAY_REASONS)}")
        if not isinstance(request.note, str) or len(request.note) > 2000:
            raise ValueError("note must be text of at most 2,000 characters")
        self._require_open()
        if s.service_type == "collect_and_pay":
            raise ValueError("the case is already on Collect & Pay")
        if s.pending_switch is not None:
            raise ValueError(f"the case is already moving to Collect & Pay from {s.pending_switch.effective_from}")
        if s.phase != "active" or s.liability is None:
            raise ValueError("the case has no payment schedule yet: "
                             "the service type is still part of the assessment")
        if s.stage != "Active":
            raise ValueError("the annual review is under way: move the case when it is done")
        if s.on_hold:
            raise ValueError("the case is on hold: release the hold first")

    @workflow.update
    def release_hold(self, request: ReleaseRequest) -> ActionResult:
        s = self._s
        s.on_hold, s.hold_reason = False, ""
        self._log("hold_released", f"Hold released by {request.actor}" + (f": {request.note}" if request.note else ""))
        return ActionResult("released", s.stage)

    @release_hold.validator
    def _validate_release(self, request: ReleaseRequest) -> None:
        self._require_text(actor=request.actor)
        if not self._s.on_hold:
            raise ValueError("the case is not on hold")

    @workflow.update
    async def close_case(self, request: CloseRequest) -> CloseResult:
        s = self._s
        s.close_requested = ClosureRecord(request.reason, self._today().isoformat(), request.actor)
        self._log("close_requested", f"Closure requested by {request.actor}: {request.reason.replace('_', ' ')}"
                                     + (f" ({request.note})" if request.note else ""))
        await workflow.wait_condition(lambda: s.phase == "closed")
        closure = s.closure or s.close_requested
        return CloseResult("closed", closure.closed_on,
                           "any arrears stay with payments and remain collectable")

    @close_case.validator
    def _validate_close(self, request: CloseRequest) -> None:
        self._require_text(reason=request.reason, actor=request.actor)
        allowed = sorted(lifecycle.CLOSURE_REASONS - {"no_qualifying_child"})
        if request.reason not in allowed:
            raise ValueError(f"reason must be one of {', '.join(allowed)}")
        self._require_open()

    # --- machine feeds (signals) --------------------------------------------------------------
    @workflow.signal
    def income_received(self, report: IncomeReport) -> None:
        if report.annual_pence < 0 or self._s.phase in ("closing", "closed"):
            workflow.logger.warning("income report ignored", extra={"case_id": self._s.case_id})
            return
        self._s.hmrc_annual_pence = report.annual_pence
        self._log("income_received", f"Income information received ({report.source})")

    @workflow.signal
    def education_ended(self, report: EducationEnded) -> None:
        child = next((c for c in self._s.children if c.child_id == report.child_id), None)
        try:
            ended = date.fromisoformat(report.on_date)
        except ValueError:
            ended = None
        if child is None or ended is None:
            workflow.logger.warning("education report ignored", extra={"case_id": self._s.case_id})
            return
        child.education_ended_on = ended.isoformat()
        self._log("education_ended", f"Child {child.child_id} left full-time education on {ended.isoformat()}")

    @workflow.signal(name=PAYMENT_EVENT_SIGNAL)
    def payment_event(self, event: PaymentEvent) -> None:
        """From payments (CollectionCycleWorkflow, DirectPayReportWorkflow): a missed or part
        payment. Recorded in the timeline and the arrears; a missed payment opens a collections
        caseworker task due in 7 case days. A repeated delivery (same event_id) is dropped."""
        if not workflow.patched(PAYMENT_EVENTS_PATCH):
            return
        s = self._s
        problem = self._payment_event_problem(event)
        if problem:
            workflow.logger.warning("payment event ignored", extra={"case_id": s.case_id, "problem": problem})
            return
        if event.event_id in s.payment_event_ids:
            return
        s.payment_event_ids = (s.payment_event_ids + [event.event_id])[-PAYMENT_EVENTS_REMEMBERED:]
        s.arrears_pence = event.arrears_pence
        due = f"{format_pence(event.due_pence)} due {event.due_date}"
        if event.kind == "part_paid":
            self._log("payment_part_paid", f"Part payment: {format_pence(event.paid_pence)} of {due}; "
                                           f"arrears {format_pence(event.arrears_pence)}")
            return
        s.missed_payments += 1
        what = "Direct Pay payment reported missed" if event.kind == "direct_pay_missed" else "Missed payment"
        self._log("payment_missed", f"{what}: {format_pence(event.paid_pence)} paid of {due}; "
                                    f"arrears {format_pence(event.arrears_pence)}")
        if event.kind == "direct_pay_missed" and workflow.patched(COLLECT_AND_PAY_SWITCH_PATCH):
            self._direct_pay_missed(event, what)
            return
        s.needs_caseworker = True
        s.caseworker_reason = f"{what}: contact the paying parent"
        s.assigned_team = COLLECTIONS_TEAM
        s.sla_due_on = (self._today() + timedelta(days=COLLECTIONS_CONTACT_DAYS)).isoformat()
        self._log("caseworker_needed", f"{what}: collections to contact the paying parent within "
                                       f"{COLLECTIONS_CONTACT_DAYS} days")

    def _payment_event_problem(self, event: PaymentEvent) -> str:
        s = self._s
        if event.case_id != s.case_id:
            return "event for another case"
        if event.kind not in PAYMENT_EVENT_KINDS:
            return f"unknown kind {event.kind!r}"
        if not event.event_id:
            return "no event_id"
        amounts = (event.due_pence, event.paid_pence, event.arrears_pence)
        if any(type(value) is not int or value < 0 for value in amounts):
            return "amounts must be whole non-negative pence"
        if s.phase in ("closed",):
            return "the case is closed"
        return ""

