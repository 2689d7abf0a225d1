"""Payment-cycle workflows (task queue `cms-payments`).

- CollectionCycleWorkflow, one per Collect & Pay period, ID `case-<case_id>/collection-<n>`:
  waits until the period's due date, charges it (maintenance + paying parent's fee), waits a
  grace period, checks what was paid, signals the case workflow on a missed or part payment,
  and passes what has been collected to the receiving parent (due within 2 working days).
- DisbursementWorkflow, ID `case-<case_id>/disbursement-<bank_reference>`: passes money on when
  it arrives, recording the 2-working-day due time and whether it was met.
- DirectPayReportWorkflow, ID `case-<case_id>/direct-pay-report-<n>`: records a receiving
  parent's report of a Direct Pay payment received or missed; a miss is signalled to the case.
- ReconciliationWorkflow, ID `payments/reconciliation-<date>`: the daily ledger-to-bank check.

Contract with the case workflow (workflows/case.py, owned by case lifecycle): these workflows
send `workflow.get_external_workflow_handle(f"case-{case_id}").signal("payment_event",
PaymentEvent(...))`. The case workflow declares `@workflow.signal(name="payment_event")` taking
exactly one PaymentEvent. Kinds:
  - "missed":            nothing paid towards a period by its due date + grace;
  - "part_paid":         something, but less than due;
  - "direct_pay_missed": a Direct Pay receiving parent reported a missed (or short) payment;
                         the case may move to Collect & Pay (SPEC 4.5 step 3);
PaymentEvent carries no personal data: identifiers, dates and pence only. `event_id` is unique
per event, so the case workflow can drop a duplicate delivery.

Case-calendar time: inputs carry `today` (the case date when the workflow starts) and
`seconds_per_day` (86,400 in production; a few seconds in demos), per SPEC "calendar" input.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.payments import (DirectPaymentOutcome, DirectPaymentReport, DisbursementOutcome,
                                     DisbursementRequest, PeriodOutcome, PeriodRef, ReconciliationOutcome,
                                     charge_period, check_period, disburse, reconcile, report_direct_payment)
    from domain.payments.working_days import add_working_days

PAYMENT_EVENT_SIGNAL = "payment_event"
_ACTIVITY_TIMEOUT = timedelta(seconds=60)
_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=60))
# Timers of millions of cases must not fire in the same second: spread each by up to this share
# of a day (deterministically, from the workflow's seeded random).
_JITTER_SHARE_OF_DAY = 0.25


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
        due = date.fromisoformat(cycle.due_date)
        today = date.fromisoformat(cycle.today)
        await _sleep_days((due - today).days, cycle.seconds_per_day, jitter=True)
        ref = PeriodRef(cycle.case_id, cycle.period_index)
        await workflow.execute_activity(charge_period, ref, start_to_close_timeout=_ACTIVITY_TIMEOUT, retry_policy=_RETRY)
        await _sleep_days(cycle.grace_days, cycle.seconds_per_day)
        outcome = await workflow.execute_activity(check_period, ref, start_to_close_timeout=_ACTIVITY_TIMEOUT,
                                                  retry_policy=_RETRY)
        signalled = ""
        if outcome.status != "paid":
            signalled = outcome.status
            if cycle.notify_case:
                info = workflow.info()
                await _signal_case(cycle.case_id, PaymentEvent(
                    f"{info.workflow_id}/{outcome.status}", cycle.case_id, outcome.status, cycle.period_index,
                    outcome.due_date, outcome.due_pence, outcome.paid_pence, outcome.arrears_pence, info.workflow_id))
        checked_on = due + timedelta(days=cycle.grace_days)
        paid_on = await workflow.execute_activity(
            disburse, DisbursementRequest(cycle.case_id, checked_on.isoformat(), f"disburse-{cycle.period_index}"),
            start_to_close_timeout=_ACTIVITY_TIMEOUT, retry_policy=_RETRY)
        return CollectionCycleResult(outcome, paid_on.amount_pence, paid_on.due_by, signalled)


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
        done: DisbursementOutcome = await workflow.execute_activity(
            disburse, DisbursementRequest(request.case_id, today.isoformat(), f"disburse-{request.bank_reference}"),
            start_to_close_timeout=_ACTIVITY_TIMEOUT, retry_policy=_RETRY,
            # The due time bounds the whole attempt chain: past it, the case needs a person.
            schedule_to_close_timeout=timedelta(seconds=max((due_by - today).days, 1) * request.seconds_per_day))
        return DisbursementResult(done.amount_pence, due_by.isoformat(), on_time=today <= due_by)


@dataclass
class DirectPayReportInput:
    report: DirectPaymentReport
    notify_case: bool = True


@workflow.defn(name="DirectPayReportWorkflow")
class DirectPayReportWorkflow:
    @workflow.run
    async def run(self, request: DirectPayReportInput) -> DirectPaymentOutcome:
        report = request.report
        outcome = await workflow.execute_activity(report_direct_payment, report,
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


@workflow.defn(name="ReconciliationWorkflow")
class ReconciliationWorkflow:
    @workflow.run
    async def run(self, as_of: str) -> ReconciliationOutcome:
        # "" (the daily schedule, cms/schedules.py): the day before this run started, UTC.
        as_of = as_of or (workflow.now().date() - timedelta(days=1)).isoformat()
        return await workflow.execute_activity(reconcile, as_of, start_to_close_timeout=timedelta(minutes=10),
                                               retry_policy=_RETRY)


ALL_WORKFLOWS = [CollectionCycleWorkflow, DisbursementWorkflow, DirectPayReportWorkflow, ReconciliationWorkflow]
