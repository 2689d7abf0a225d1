"""Activities that move money: thin, idempotent adapters over the payments gRPC service.

Every activity that posts derives its idempotency key from the workflow ID and a business key
(never from the attempt), so Temporal's at-least-once retries post once. Which refusals are
final and which are retried is decided in one place for every service (cms/grpc_client.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.payments_messages import (
    DirectPaymentOutcome,
    DirectPaymentReport,
    DisbursementOutcome,
    DisbursementRequest,
    EnforcementChargeRequest,
    PeriodOutcome,
    PeriodRef,
    PostingOutcome,
    ReconciliationOutcome,
    ScheduleOutcome,
    ScheduleRequest,
)
from cms_proto.payments.v1 import payments_pb2 as pb

if TYPE_CHECKING:
    from cms.grpc_client import ServiceClient
    from cms_proto.payments.v1.payments_pb2_grpc import PaymentsServiceStub

# The daily proof of the whole ledger against the bank may take a while; its activity allows
# ten minutes (workflows/payments.py), so its call gets five.
RECONCILE_TIMEOUT_SECONDS = 300.0


def require_pence(name: str, value: object, allow_zero: bool = False) -> int:
    """Money is whole pence: a float, a bool or a negative amount is refused outright."""
    if type(value) is not int or value < 0 or (value == 0 and not allow_zero):
        raise ApplicationError(f"{name} must be a positive whole number of pence, not {value!r}",
                               type="InvalidAmount", non_retryable=True)
    return value


def idempotency_key(business_key: str) -> str:
    """Workflow ID + business key: the same on every retry of this activity in this workflow."""
    info = activity.info()
    return f"{info.workflow_id}/{business_key}"


def _outcome(reply: pb.PeriodStatus) -> PeriodOutcome:
    return PeriodOutcome(reply.case_id, reply.period_index, reply.due_date, reply.due_pence, reply.paid_pence,
                         reply.status, reply.arrears_pence)


class PaymentsActivities:
    def __init__(self, payments: ServiceClient[PaymentsServiceStub]):
        self._payments = payments

    @activity.defn(name="charge_period")
    async def charge_period(self, ref: PeriodRef) -> PeriodOutcome:
        # The service keys a period charge by (case, period) itself: it is charged once, whoever asks.
        payments = self._payments
        return _outcome(await payments.call(payments.stub.ChargePeriod, pb.ChargePeriodRequest(
            case_id=ref.case_id, period_index=ref.period_index)))

    @activity.defn(name="check_period")
    async def check_period(self, ref: PeriodRef) -> PeriodOutcome:
        payments = self._payments
        return _outcome(await payments.call(payments.stub.CheckPeriod, pb.CheckPeriodRequest(
            case_id=ref.case_id, period_index=ref.period_index)))

    @activity.defn(name="disburse")
    async def disburse(self, request: DisbursementRequest) -> DisbursementOutcome:
        payments = self._payments
        reply = await payments.call(payments.stub.Disburse, pb.DisburseRequest(
            idempotency_key=idempotency_key(request.business_key), case_id=request.case_id, as_of=request.as_of,
            arrived_on=request.arrived_on))
        return DisbursementOutcome(reply.amount_pence, reply.due_by, reply.bank_reference)

    @activity.defn(name="post_enforcement_charge")
    async def post_enforcement_charge(self, request: EnforcementChargeRequest) -> PostingOutcome:
        payments = self._payments
        reply = await payments.call(payments.stub.PostCharge, pb.PostChargeRequest(
            idempotency_key=idempotency_key(request.business_key), case_id=request.case_id,
            charge_kind=request.charge_kind, charged_on=request.charged_on, decision_ref=request.decision_ref))
        return PostingOutcome(reply.transaction_id, reply.duplicate, reply.account)

    @activity.defn(name="create_schedule")
    async def create_schedule(self, request: ScheduleRequest) -> ScheduleOutcome:
        require_pence("weekly_liability_pence", request.weekly_liability_pence, allow_zero=True)
        require_pence("paying_parent_fee_pence", request.paying_parent_fee_pence, allow_zero=True)
        payments = self._payments
        reply = await payments.call(payments.stub.CreateSchedule, pb.CreateScheduleRequest(
            idempotency_key=idempotency_key(f"schedule-{request.decision_ref}-{request.effective_date}"),
            case_id=request.case_id, service_type=request.service_type,
            frequency=pb.Frequency.Value(f"FREQUENCY_{request.frequency.upper()}"),
            method=pb.Method.Value(f"METHOD_{request.method.upper()}"), effective_date=request.effective_date,
            weekly_liability_pence=request.weekly_liability_pence,
            paying_parent_fee_pence=request.paying_parent_fee_pence,
            decision_ref=request.decision_ref, due_offset_days=request.due_offset_days))
        first = reply.payments[0] if reply.payments else None
        return ScheduleOutcome(reply.version, first.due_date if first else "", first.amount_pence if first else 0,
                               sum(a.amount_delta_pence + a.fee_delta_pence for a in reply.adjustments))

    @activity.defn(name="report_direct_payment")
    async def report_direct_payment(self, report: DirectPaymentReport) -> DirectPaymentOutcome:
        require_pence("amount_pence", report.amount_pence, allow_zero=not report.received)
        payments = self._payments
        reply = await payments.call(payments.stub.ReportDirectPayment, pb.ReportDirectPaymentRequest(
            idempotency_key=idempotency_key(report.business_key), case_id=report.case_id, due_date=report.due_date,
            received=report.received, amount_pence=report.amount_pence))
        return DirectPaymentOutcome(reply.duplicate, reply.shortfall_pence)

    @activity.defn(name="reconcile")
    async def reconcile(self, as_of: str) -> ReconciliationOutcome:
        payments = self._payments
        reply = await payments.call(payments.stub.Reconcile, pb.ReconcileRequest(as_of=as_of),
                                    timeout_seconds=RECONCILE_TIMEOUT_SECONDS)
        return ReconciliationOutcome(reply.ok, reply.postings, list(reply.differences), reply.suspense_pence)
