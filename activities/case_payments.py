"""Payment schedules handed to payments, behind an interface the payments service will implement.

`RecordingPayments` (the default) records each request in the case read model
(`case_api.payment_requests`) under its idempotency key. The payments service
(`cms.payments.v1.PaymentsService/CreateSchedule`) replaces it by implementing `PaymentsGateway`
and calling `set_payments_gateway` at worker start. Closing a case stops the schedule only:
arrears stay with payments and remain collectable.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Protocol

from psycopg.types.json import Jsonb
from temporalio import activity

from activities.context import db_pool


@dataclass
class ScheduleRequest:
    idempotency_key: str
    case_id: str
    version: int
    service_type: str
    frequency: str
    effective_from: str
    weekly_liability_pence: int
    paying_parent_pays_weekly_pence: int
    instalment_pence: int
    first_instalment_pence: int
    instalments_per_year: int
    first_due_date: str
    annual_pence: int
    # Weekly Collect & Pay fees (0 on Direct Pay) and the decision behind the schedule.
    paying_parent_fee_pence: int = 0
    receiving_parent_fee_pence: int = 0
    rule_set_id: str = ""
    method: str = "direct_debit"
    # The case calendar at the hand-over, for the collection cycles (CollectionsWorkflow).
    case_day: str = ""
    case_instant: str = ""
    seconds_per_day: float = 86400.0


@dataclass
class StopScheduleRequest:
    idempotency_key: str
    case_id: str
    stop_from: str
    reason: str


class PaymentsGateway(Protocol):
    async def create_schedule(self, request: ScheduleRequest) -> None: ...

    async def stop_schedule(self, request: StopScheduleRequest) -> None: ...


class RecordingPayments:
    async def _record(self, key: str, case_id: str, kind: str, body: dict) -> None:
        async with db_pool().connection() as conn:
            await conn.execute(
                "INSERT INTO case_api.payment_requests (idempotency_key, case_id, kind, body) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT (idempotency_key) DO NOTHING",
                (key, case_id, kind, Jsonb(body)),
            )

    async def create_schedule(self, request: ScheduleRequest) -> None:
        await self._record(request.idempotency_key, request.case_id, "create_schedule", asdict(request))

    async def stop_schedule(self, request: StopScheduleRequest) -> None:
        await self._record(request.idempotency_key, request.case_id, "stop_schedule", asdict(request))


_NOT_RETRYABLE_CODES = ("INVALID_ARGUMENT", "FAILED_PRECONDITION", "ALREADY_EXISTS", "NOT_FOUND")


class GrpcPayments(RecordingPayments):
    """Hands schedules to `cms.payments.v1.PaymentsService` (and still records them in the case
    read model). The payments service de-duplicates on the same idempotency keys (the case
    workflow's own, `case-<id>/schedule-<version>`), so a retried hand-off finds the first version.
    The one gateway from the case workflow to payments (`make run` sets CMS_CASE_PAYMENTS_VIA_GRPC=1)."""

    _FREQUENCIES = {"weekly": "FREQUENCY_WEEKLY", "fortnightly": "FREQUENCY_FORTNIGHTLY",
                    "four_weekly": "FREQUENCY_FOUR_WEEKLY", "monthly": "FREQUENCY_MONTHLY"}

    def __init__(self, address: str, record_in_case_model: bool = True, start_collections: bool = False,
                 collections_task_queue: str = ""):
        self._address = address
        self._record_in_case_model = record_in_case_model   # False: payments tests without the case schema
        # True (make run): a Collect & Pay schedule starts (or re-plans) the case's CollectionsWorkflow.
        self._start_collections = start_collections
        self._collections_queue = collections_task_queue     # "" = cms-payments; tests give their own

    async def _record(self, key: str, case_id: str, kind: str, body: dict) -> None:
        if self._record_in_case_model:
            await super()._record(key, case_id, kind, body)

    async def _call(self, method: str, request):
        import grpc
        from temporalio.exceptions import ApplicationError

        from cms_proto.payments.v1 import payments_pb2_grpc

        async with grpc.aio.insecure_channel(self._address) as channel:
            try:
                return await getattr(payments_pb2_grpc.PaymentsServiceStub(channel), method)(request, timeout=30)
            except grpc.aio.AioRpcError as error:
                # A refused request stays refused: retrying it would only hide the defect.
                if error.code().name in _NOT_RETRYABLE_CODES:
                    raise ApplicationError(f"payments: {error.code().name}: {error.details()}",
                                           type=error.code().name, non_retryable=True) from None
                raise

    async def create_schedule(self, request: ScheduleRequest) -> None:
        from cms_proto.payments.v1 import payments_pb2 as pb

        await super().create_schedule(request)
        schedule = await self._call("CreateSchedule", pb.CreateScheduleRequest(
            idempotency_key=request.idempotency_key, case_id=request.case_id, service_type=request.service_type,
            frequency=pb.Frequency.Value(self._FREQUENCIES[request.frequency]),
            method=pb.Method.Value(f"METHOD_{request.method.upper()}"), effective_date=request.effective_from,
            weekly_liability_pence=request.weekly_liability_pence,
            paying_parent_fee_pence=request.paying_parent_fee_pence,
            receiving_parent_fee_pence=request.receiving_parent_fee_pence,
            decision_ref=f"schedule-{request.version}", rule_set_id=request.rule_set_id,
        ))
        if self._start_collections and request.service_type == "collect_and_pay" and request.case_day:
            await self._plan_collections(request, schedule)

    async def _plan_collections(self, request: ScheduleRequest, schedule) -> None:
        """Signal-with-start: starts the case's CollectionsWorkflow, or hands the running one the
        new schedule's periods (it skips cycles already run). Repeating it is harmless."""
        from temporalio import activity

        from cms.config import TASK_QUEUE_PAYMENTS
        from workflows.payments import CollectionsInput, CollectionsWorkflow, PlannedPeriod

        plan = CollectionsInput(
            request.case_id, [PlannedPeriod(p.period_index, p.due_date) for p in schedule.payments],
            case_day=request.case_day, case_instant=request.case_instant, seconds_per_day=request.seconds_per_day,
            schedule_version=request.version)
        await activity.client().start_workflow(
            CollectionsWorkflow.run, plan, id=f"case-{request.case_id}/collections",
            task_queue=self._collections_queue or TASK_QUEUE_PAYMENTS,
            start_signal="schedule_changed", start_signal_args=[plan])

    async def stop_schedule(self, request: StopScheduleRequest) -> None:
        from cms_proto.payments.v1 import payments_pb2 as pb

        await super().stop_schedule(request)
        await self._call("StopSchedule", pb.StopScheduleRequest(
            idempotency_key=request.idempotency_key, case_id=request.case_id, stop_from=request.stop_from,
            reason=request.reason))


def gateway_from_environment() -> PaymentsGateway:
    """CMS_CASE_PAYMENTS_VIA_GRPC=1 hands schedules to the payments service; otherwise they are
    only recorded in the case read model (workflow tests need no payments service)."""
    if os.environ.get("CMS_CASE_PAYMENTS_VIA_GRPC") == "1":
        from cms.config import load_settings

        return GrpcPayments(load_settings().address_of("payments"), start_collections=True)
    return RecordingPayments()


_gateway: PaymentsGateway = gateway_from_environment()


def set_payments_gateway(gateway: PaymentsGateway) -> None:
    global _gateway
    _gateway = gateway


@activity.defn
async def create_payment_schedule(request: ScheduleRequest) -> None:
    await _gateway.create_schedule(request)


@activity.defn
async def stop_payment_schedule(request: StopScheduleRequest) -> None:
    await _gateway.stop_schedule(request)
