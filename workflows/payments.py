"""Payment-cycle workflows (task queue `cms-payments`).

- CollectionCycleWorkflow, one per Collect & Pay period, ID `case-<case_id>/collection-<n>`:
  waits until the period's due date, charges it (maintenance + paying parent's fee), waits a
  grace period, checks what was paid, signals the case workflow on a missed or part payment,
  and passes what has been collected to the receiving parent (due within 2 working days).
  The three calls to payments are local activities (patch "collection-cycle-local-activities").
- DisbursementWorkflow, ID `case-<case_id>/disbursement-<bank_reference>`: passes money on when
  it arrives, recording the 2-working-day due time and whether it was met (still paying, late, if
  the due time passes). Started for each payment or suspense assignment by the payments service's
  outbox dispatcher (services/payments/disbursements.py).
- DirectPayReportWorkflow, ID `case-<case_id>/direct-pay-report-<n>`: records a receiving
  parent's report of a Direct Pay payment received or missed; a miss is signalled to the case.
- ReconciliationWorkflow, ID `payments/reconciliation-<date>`: the daily ledger-to-bank check.
- CollectionsWorkflow, ID `case-<case_id>/collections`, one per Collect & Pay case: runs the
  case's CollectionCycleWorkflows one period after another as children. Started (or handed a
  new plan by signal-with-start `schedule_changed`) by the case's schedule hand-over
  (activities.case_payments.GrpcPayments) with the year of periods CreateSchedule returned.
  Why here and not in CaseWorkflow: a child per period in the case's history would cost ~5
  events a period (260 a year on weekly payments); this way the case history grows only by the
  payment events it is signalled, and this loop continues as new before its own history grows.
  It ends when a cycle fails for good (the schedule was stopped at closure, or nothing is due);
  a new schedule version starts it again.

Contract with the case workflow (workflows/case.py, owned by case lifecycle): these workflows
send `workflow.get_external_workflow_handle(f"case-{case_id}").signal("payment_event",
PaymentEvent(...))`. The case workflow declares `@workflow.signal(name="payment_event")` taking
exactly one PaymentEvent. Kinds:
  - "missed":            nothing paid towards a period by its due date + grace;
  - "part_paid":         something, but less than due;
  - "direct_pay_missed": a Direct Pay receiving parent reported a missed (or short) payment;
                         the case may move to Collect & Pay (docs/rules.md section 10);
PaymentEvent carries no personal data: identifiers, dates and pence only. `event_id` is unique
per event, so the case workflow can drop a duplicate delivery.

Case-calendar time: inputs carry `today` (the case date when the workflow starts) and
`seconds_per_day` (86,400 in production; a few seconds in demos), from the case's calendar input.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ActivityError, ChildWorkflowError, RetryState, WorkflowAlreadyStartedError
from temporalio.exceptions import TimeoutError as ActivityTimeout
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities.payments import PaymentsActivities
    from activities.payments_messages import (
        DirectPaymentOutcome,
        DirectPaymentReport,
        DisbursementOutcome,
        DisbursementRequest,
        PeriodOutcome,
        PeriodRef,
        ReconciliationOutcome,
    )
    from domain.payments.working_days import add_working_days

PAYMENT_EVENT_SIGNAL = "payment_event"
_ACTIVITY_TIMEOUT = timedelta(seconds=60)
_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=60))
# Timers of millions of cases must not fire in the same second: spread each by up to this share
# of a day (deterministically, from the workflow's seeded random).
_JITTER_SHARE_OF_DAY = 0.25
# Patch: a collection cycle charges, checks and passes money on as local activities, in the workflow
# task the timer wakes, instead of an activity task each: a weekly case runs 52 cycles a year, and
# each activity task cost a round trip to the server and one more workflow task to take its result.
# The payments calls are short and idempotent (keyed by case, period and disbursement reference).
LOCAL_CYCLE_ACTIVITIES_PATCH = "collection-cycle-local-activities"


@dataclass
class PaymentEvent:
    event_id: str          # unique per event: source workflow ID + kind
    case_id: str
    kind: str              # missed | part_paid | direct_pay_missed
    period_index: int
    due_date: str          # ISO date
    due_pence: int
    paid_pence: int
    arrears_pence: int
    source_workflow_id: str


@dataclass
class CollectionCycleInput:
    case_id: str
    period_index: int
    due_date: str          # ISO date the period's payment falls due (from the schedule)
    today: str             # ISO case date when this workflow starts
    seconds_per_day: float = 86400.0
    grace_days: int = 1
    notify_case: bool = True


@dataclass
class CollectionCycleResult:
    period: PeriodOutcome
    disbursed_pence: int
    disbursement_due_by: str
    signalled: str         # the PaymentEvent kind sent, or ""


async def _sleep_days(days: float, seconds_per_day: float, jitter: bool = False) -> None:
    seconds = days * seconds_per_day
    if jitter:
        seconds += workflow.random().random() * _JITTER_SHARE_OF_DAY * seconds_per_day
    if seconds > 0:
        await workflow.sleep(timedelta(seconds=seconds))


async def _signal_case(case_id: str, event: PaymentEvent) -> None:
    handle = workflow.get_external_workflow_handle(f"case-{case_id}")
    await handle.signal(PAYMENT_EVENT_SIGNAL, event)


@workflow.defn(name="CollectionCycleWorkflow")
class CollectionCycleWorkflow:
    @workflow.run
    async def run(self, cycle: CollectionCycleInput) -> CollectionCycleResult:
        self._local = workflow.patched(LOCAL_CYCLE_ACTIVITIES_PATCH)
        due = date.fromisoformat(cycle.due_date)
        today = date.fromisoformat(cycle.today)
        await _sleep_days((due - today).days, cycle.seconds_per_day, jitter=True)
        ref = PeriodRef(cycle.case_id, cycle.period_index)
        await self._payments(PaymentsActivities.charge_period, ref)
        await _sleep_days(cycle.grace_days, cycle.seconds_per_day)
        outcome: PeriodOutcome = await self._payments(PaymentsActivities.check_period, ref)
        signalled = ""
        if outcome.status != "paid":
            signalled = outcome.status
            if cycle.notify_case:
                info = workflow.info()
                await _signal_case(cycle.case_id, PaymentEvent(
                    f"{info.workflow_id}/{outcome.status}", cycle.case_id, outcome.status, cycle.period_index,
                    outcome.due_date, outcome.due_pence, outcome.paid_pence, outcome.arrears_pence, info.workflow_id))
        checked_on = due + timedelta(days=cycle.grace_days)
        paid_on: DisbursementOutcome = await self._payments(
            PaymentsActivities.disburse,
            DisbursementRequest(cycle.case_id, checked_on.isoformat(), f"disburse-{cycle.period_index}"))
        return CollectionCycleResult(outcome, paid_on.amount_pence, paid_on.due_by, signalled)

    async def _payments(self, method: Any, request: Any) -> Any:
        """One call to payments: a local activity under the patch, else an activity task."""
        if self._local:
            return await workflow.execute_local_activity_method(method, request, start_to_close_timeout=_ACTIVITY_TIMEOUT,
                                                                retry_policy=_RETRY)
        return await workflow.execute_activity_method(method, request, start_to_close_timeout=_ACTIVITY_TIMEOUT,
                                                      retry_policy=_RETRY)


@dataclass
class DisbursementInput:
    case_id: str
    received_on: str       # ISO date the money arrived
    bank_reference: str
    today: str = ""        # ISO case date when started (default: received_on)
    seconds_per_day: float = 86400.0


@dataclass
class DisbursementResult:
    amount_pence: int
    due_by: str            # 2 working days after receipt
    on_time: bool


@workflow.defn(name="DisbursementWorkflow")
class DisbursementWorkflow:
    @workflow.run
    async def run(self, request: DisbursementInput) -> DisbursementResult:
        received = date.fromisoformat(request.received_on)
        today = date.fromisoformat(request.today or request.received_on)
        due_by = add_working_days(received, 2)
        disbursement = DisbursementRequest(request.case_id, today.isoformat(), f"disburse-{request.bank_reference}")
        # The ledger's due_by counts from the arrival too. Patched: the ledger keys the request with
        # its due_by, so a workflow that sent its first request without the arrival date must send
        # the same request again if it retries past its due time.
        if workflow.patched("disbursement-due-from-arrival"):
            disbursement.arrived_on = min(received, today).isoformat()
        try:
            done: DisbursementOutcome = await workflow.execute_activity_method(
                PaymentsActivities.disburse, disbursement, start_to_close_timeout=_ACTIVITY_TIMEOUT, retry_policy=_RETRY,
                # The due time bounds the first attempt chain.
                schedule_to_close_timeout=timedelta(seconds=max((due_by - today).days, 1) * request.seconds_per_day))
        except ActivityError as error:
            # Out of time shows either way: the last attempt timed out, or a retry would have ended late.
            out_of_time = isinstance(error.cause, ActivityTimeout) or error.retry_state == RetryState.TIMEOUT
            if not (out_of_time and workflow.patched("disbursement-continues-past-due")):
                raise
            # Overdue, and still the receiving parent's money: keep trying (same idempotency key, so
            # an attempt that did post is found, not repeated); the result reports it late.
            workflow.logger.warning("disbursement overdue, still trying", extra={"case_id": request.case_id})
            done = await workflow.execute_activity_method(PaymentsActivities.disburse, disbursement,
                                                          start_to_close_timeout=_ACTIVITY_TIMEOUT, retry_policy=_RETRY)
        paid_on = today
        if workflow.patched("disbursement-on-time-when-paid"):
            # Judged when the money went out, not when the workflow started: retries take time.
            elapsed = (workflow.now() - workflow.info().start_time).total_seconds()
            paid_on = today + timedelta(days=int(elapsed // request.seconds_per_day))
        return DisbursementResult(done.amount_pence, due_by.isoformat(), on_time=paid_on <= due_by)


@dataclass
class DirectPayReportInput:
    report: DirectPaymentReport
    notify_case: bool = True


@workflow.defn(name="DirectPayReportWorkflow")
class DirectPayReportWorkflow:
    @workflow.run
    async def run(self, request: DirectPayReportInput) -> DirectPaymentOutcome:
        report = request.report
        outcome = await workflow.execute_activity_method(PaymentsActivities.report_direct_payment, report,
                                                         start_to_close_timeout=_ACTIVITY_TIMEOUT, retry_policy=_RETRY)
        # Signalled even when the report was a duplicate (a retry after a lost reply): the case
        # workflow drops repeats by event_id, whereas a lost signal would go unnoticed.
        if outcome.shortfall_pence > 0 and request.notify_case:
            info = workflow.info()
            await _signal_case(report.case_id, PaymentEvent(
                f"{info.workflow_id}/direct_pay_missed", report.case_id, "direct_pay_missed", -1, report.due_date,
                report.amount_pence + outcome.shortfall_pence, report.amount_pence, outcome.shortfall_pence,
                info.workflow_id))
        return outcome


@dataclass
class PlannedPeriod:
    period_index: int
    due_date: str          # ISO case date


@dataclass
class CollectionsInput:
    case_id: str
    periods: list[PlannedPeriod]
    case_day: str              # the case date at case_instant
    case_instant: str = ""     # UTC ISO instant; "" = when this workflow starts
    seconds_per_day: float = 86400.0
    schedule_version: int = 0
    grace_days: int = 1
    last_started: int = -1     # carried across continue-as-new: periods up to this one are running or done


@dataclass
class CollectionsResult:
    cycles_run: int
    stopped_at_period: int     # the period whose cycle failed for good (schedule stopped), or -1


_COLLECTIONS_HISTORY_BOUND = 2000


@workflow.defn(name="CollectionsWorkflow")
class CollectionsWorkflow:
    @workflow.init
    def __init__(self, plan: CollectionsInput) -> None:
        self._plan = plan

    @workflow.signal
    def schedule_changed(self, plan: CollectionsInput) -> None:
        """A new schedule version: its periods replace the plan; cycles already started stay."""
        if plan.case_id == self._plan.case_id and plan.schedule_version >= self._plan.schedule_version:
            plan.last_started = max(plan.last_started, self._plan.last_started)
            self._plan = plan

    def _case_today(self) -> date:
        plan = self._plan
        anchor = datetime.fromisoformat(plan.case_instant) if plan.case_instant else workflow.now()
        if not plan.case_instant:
            plan.case_instant = anchor.isoformat()
        elapsed = (workflow.now() - anchor).total_seconds()
        return date.fromisoformat(plan.case_day) + timedelta(days=int(elapsed // plan.seconds_per_day))

    def _next_period(self) -> PlannedPeriod | None:
        plan = self._plan
        upcoming = sorted((p for p in plan.periods if p.period_index > plan.last_started), key=lambda p: p.period_index)
        return upcoming[0] if upcoming else None

    @workflow.run
    async def run(self, plan: CollectionsInput) -> CollectionsResult:
        cycles = 0
        self._case_today()   # fixes the anchor instant on the first run
        while True:
            info = workflow.info()
            if info.is_continue_as_new_suggested() or info.get_current_history_length() > _COLLECTIONS_HISTORY_BOUND:
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(self._plan)
            period = self._next_period()
            if period is None:
                # The plan's year is used up: the next schedule version (annual review) brings more.
                await workflow.wait_condition(lambda: self._next_period() is not None)
                continue
            self._plan.last_started = period.period_index
            cycle = CollectionCycleInput(self._plan.case_id, period.period_index, period.due_date,
                                         today=self._case_today().isoformat(),
                                         seconds_per_day=self._plan.seconds_per_day,
                                         grace_days=self._plan.grace_days)
            try:
                await workflow.execute_child_workflow(
                    CollectionCycleWorkflow.run, cycle, id=f"case-{cycle.case_id}/collection-{cycle.period_index}",
                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                    parent_close_policy=ParentClosePolicy.ABANDON)
                cycles += 1
            except WorkflowAlreadyStartedError:
                continue    # this period's cycle ran under an earlier plan
            except ChildWorkflowError:
                # Its activities retry whatever a retry can fix: this one will not be charged
                # (schedule stopped at closure, or nothing due). The next schedule restarts us.
                return CollectionsResult(cycles, period.period_index)


@workflow.defn(name="ReconciliationWorkflow")
class ReconciliationWorkflow:
    @workflow.run
    async def run(self, as_of: str) -> ReconciliationOutcome:
        # "" (the daily schedule, cms/schedules.py): the day before this run started, UTC.
        as_of = as_of or (workflow.now().date() - timedelta(days=1)).isoformat()
        return await workflow.execute_activity_method(PaymentsActivities.reconcile, as_of,
                                                      start_to_close_timeout=timedelta(minutes=10), retry_policy=_RETRY)


ALL_WORKFLOWS = [CollectionCycleWorkflow, DisbursementWorkflow, DirectPayReportWorkflow, ReconciliationWorkflow,
                 CollectionsWorkflow]
