"""Activities that move money: thin, idempotent adapters over the payments gRPC service.

Every activity that posts derives its idempotency key from the workflow ID and a business key
(never from the attempt), so Temporal's at-least-once retries post once. Errors that a retry
cannot fix (INVALID_ARGUMENT, FAILED_PRECONDITION, ALREADY_EXISTS, NOT_FOUND) are non-retryable;
UNAVAILABLE and the like are retried by Temporal.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from temporalio import activity
from temporalio.exceptions import ApplicationError

from cms.config import load_settings
from cms_proto.payments.v1 import payments_pb2 as pb
from cms_proto.payments.v1 import payments_pb2_grpc

_NOT_RETRYABLE = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION,
                  grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.NOT_FOUND}

_address: str | None = None
_channel: grpc.aio.Channel | None = None


def set_payments_address(address: str | None) -> None:
    """Points the activities at a payments service (tests); default: settings (PAYMENTS_PORT)."""
    global _address, _channel
    _address, _channel = address, None


def _stub() -> payments_pb2_grpc.PaymentsServiceStub:
    global _channel
    if _channel is None:
        _channel = grpc.aio.insecure_channel(_address or load_settings().address_of("payments"))
    return payments_pb2_grpc.PaymentsServiceStub(_channel)


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


async def _call(method, request):
    try:
        return await method(request, timeout=30)
    except grpc.aio.AioRpcError as error:
        if error.code() in _NOT_RETRYABLE:
            raise ApplicationError(f"payments: {error.code().name}: {error.details()}",
                                   type=error.code().name, non_retryable=True) from None
        raise


@dataclass
class PeriodRef:
    case_id: str
    period_index: int


@dataclass
class PeriodOutcome:
    case_id: str
    period_index: int
    due_date: str
    due_pence: int
    paid_pence: int
    status: str            # paid | part_paid | missed
    arrears_pence: int


def _outcome(reply: pb.PeriodStatus) -> PeriodOutcome:
    return PeriodOutcome(reply.case_id, reply.period_index, reply.due_date, reply.due_pence, reply.paid_pence,
                         reply.status, reply.arrears_pence)


@activity.defn
async def charge_period(ref: PeriodRef) -> PeriodOutcome:
    # The service keys a period charge by (case, period) itself: it is charged once, whoever asks.
    return _outcome(await _call(_stub().ChargePeriod, pb.ChargePeriodRequest(case_id=ref.case_id,
                                                                               period_index=ref.period_index)))


@activity.defn
async def check_period(ref: PeriodRef) -> PeriodOutcome:
    return _outcome(await _call(_stub().CheckPeriod, pb.CheckPeriodRequest(case_id=ref.case_id,
                                                                             period_index=ref.period_index)))


@dataclass
class DisbursementRequest:
    case_id: str
    as_of: str             # ISO date the money is passed on from
    business_key: str      # e.g. "disburse-3" for period 3
    arrived_on: str = ""   # ISO date the money arrived (disbursement on arrival); "" = as_of


@dataclass
class DisbursementOutcome:
    amount_pence: int
    due_by: str
    bank_reference: str


@activity.defn
async def disburse(request: DisbursementRequest) -> DisbursementOutcome:
    reply = await _call(_stub().Disburse, pb.DisburseRequest(
        idempotency_key=idempotency_key(request.business_key), case_id=request.case_id, as_of=request.as_of,
        arrived_on=request.arrived_on))
    return DisbursementOutcome(reply.amount_pence, reply.due_by, reply.bank_reference)


@dataclass
class EnforcementChargeRequest:
    case_id: str
    charge_kind: str       # deduction_from_earnings_order | regular_deduction_order | ...
    charged_on: str
    business_key: str      # e.g. "deo-1"
    decision_ref: str = ""


@dataclass
class PostingOutcome:
    transaction_id: str
    duplicate: bool
    account: str


@activity.defn
async def post_enforcement_charge(request: EnforcementChargeRequest) -> PostingOutcome:
    reply = await _call(_stub().PostCharge, pb.PostChargeRequest(
        idempotency_key=idempotency_key(request.business_key), case_id=request.case_id,
        charge_kind=request.charge_kind, charged_on=request.charged_on, decision_ref=request.decision_ref))
    return PostingOutcome(reply.transaction_id, reply.duplicate, reply.account)


@dataclass
class ScheduleRequest:
    case_id: str
    service_type: str      # direct_pay | collect_and_pay
    frequency: str         # weekly | fortnightly | four_weekly | monthly
    method: str            # direct_debit | standing_order | deduction_from_earnings | card
    effective_date: str
    weekly_liability_pence: int
    paying_parent_fee_pence: int
    decision_ref: str      # the calculation that caused it; also the business key
    due_offset_days: int = 0


@dataclass
class ScheduleOutcome:
    version: int
    first_due_date: str
    first_amount_pence: int
    adjustments_pence: int     # total of adjustments posted for periods already charged


@activity.defn
async def create_schedule(request: ScheduleRequest) -> ScheduleOutcome:
    require_pence("weekly_liability_pence", request.weekly_liability_pence, allow_zero=True)
    require_pence("paying_parent_fee_pence", request.paying_parent_fee_pence, allow_zero=True)
    reply = await _call(_stub().CreateSchedule, pb.CreateScheduleRequest(
        idempotency_key=idempotency_key(f"schedule-{request.decision_ref}-{request.effective_date}"),
        case_id=request.case_id, service_type=request.service_type,
        frequency=pb.Frequency.Value(f"FREQUENCY_{request.frequency.upper()}"),
        method=pb.Method.Value(f"METHOD_{request.method.upper()}"), effective_date=request.effective_date,
        weekly_liability_pence=request.weekly_liability_pence, paying_parent_fee_pence=request.paying_parent_fee_pence,
        decision_ref=request.decision_ref, due_offset_days=request.due_offset_days))
    first = reply.payments[0] if reply.payments else None
    return ScheduleOutcome(reply.version, first.due_date if first else "", first.amount_pence if first else 0,
                           sum(a.amount_delta_pence + a.fee_delta_pence for a in reply.adjustments))


@dataclass
class DirectPaymentReport:
    case_id: str
    due_date: str
    received: bool
    amount_pence: int
    business_key: str      # e.g. the report's id from the channel


@dataclass
class DirectPaymentOutcome:
    duplicate: bool
    shortfall_pence: int


@activity.defn
async def report_direct_payment(report: DirectPaymentReport) -> DirectPaymentOutcome:
    require_pence("amount_pence", report.amount_pence, allow_zero=not report.received)
    reply = await _call(_stub().ReportDirectPayment, pb.ReportDirectPaymentRequest(
        idempotency_key=idempotency_key(report.business_key), case_id=report.case_id, due_date=report.due_date,
        received=report.received, amount_pence=report.amount_pence))
    return DirectPaymentOutcome(reply.duplicate, reply.shortfall_pence)


@dataclass
class ReconciliationOutcome:
    ok: bool
    postings: int
    differences: list[str]
    suspense_pence: int


@activity.defn
async def reconcile(as_of: str) -> ReconciliationOutcome:
    reply = await _call(_stub().Reconcile, pb.ReconcileRequest(as_of=as_of))
    return ReconciliationOutcome(reply.ok, reply.postings, list(reply.differences), reply.suspense_pence)


ALL_ACTIVITIES = [charge_period, check_period, disburse, post_enforcement_charge, create_schedule,
                  report_direct_payment, reconcile]
