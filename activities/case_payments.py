"""Payment schedules the case workflow hands to payments, through a `PaymentsGateway` the worker
chooses.

`RecordingPayments` records each request in the case read model (`case_api.payment_requests`)
under its idempotency key. `GrpcPayments` (make run: CMS_CASE_PAYMENTS_VIA_GRPC=1) hands it to
`cms.payments.v1.PaymentsService` too. Closing a case stops the schedule only: arrears stay with
payments and remain collectable.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any, Protocol

from temporalio import activity

from activities.case_messages import ScheduleRequest, StopScheduleRequest
from cms.config import TASK_QUEUE_PAYMENTS
from cms_proto.payments.v1 import payments_pb2 as pb
from services.case_api import repository as case_api

if TYPE_CHECKING:
    from psycopg_pool import AsyncConnectionPool

    from cms.grpc_client import ServiceClient
    from cms_proto.payments.v1.payments_pb2_grpc import PaymentsServiceStub


class PaymentsGateway(Protocol):
    async def create_schedule(self, request: ScheduleRequest) -> None: ...

    async def stop_schedule(self, request: StopScheduleRequest) -> None: ...


class RecordingPayments:
    def __init__(self, pool: AsyncConnectionPool):
        self._pool = pool

    async def _record(self, key: str, case_id: str, kind: str, body: dict[str, Any]) -> None:
        async with self._pool.connection() as conn:
            await case_api.record_payment_request(conn, key, case_id, kind, body)

    async def create_schedule(self, request: ScheduleRequest) -> None:
        await self._record(request.idempotency_key, request.case_id, "create_schedule", asdict(request))

    async def stop_schedule(self, request: StopScheduleRequest) -> None:
        await self._record(request.idempotency_key, request.case_id, "stop_schedule", asdict(request))


class GrpcPayments:
    """Hands schedules to `cms.payments.v1.PaymentsService`, after recording them in the case
    read model (`record`; None in payments tests that have no case schema). The payments service
    de-duplicates on the same idempotency keys (the case workflow's own,
    `case-<id>/schedule-<version>`), so a retried hand-off finds the first version. A refusal
    (e.g. INVALID_ARGUMENT) is non-retryable: see cms/grpc_client.py."""

    _FREQUENCIES = {"weekly": "FREQUENCY_WEEKLY", "fortnightly": "FREQUENCY_FORTNIGHTLY",
                    "four_weekly": "FREQUENCY_FOUR_WEEKLY", "monthly": "FREQUENCY_MONTHLY"}

    def __init__(self, payments: ServiceClient[PaymentsServiceStub], record: RecordingPayments | None = None,
                 start_collections: bool = False, collections_task_queue: str = TASK_QUEUE_PAYMENTS):
        self._payments = payments
        self._case_model = record
        # True (make run): a Collect & Pay schedule starts (or re-plans) the case's CollectionsWorkflow.
        self._start_collections = start_collections
        self._collections_queue = collections_task_queue

    async def create_schedule(self, request: ScheduleRequest) -> None:
        if self._case_model is not None:
            await self._case_model.create_schedule(request)
        schedule = await self._payments.call(self._payments.stub.CreateSchedule, pb.CreateScheduleRequest(
            idempotency_key=request.idempotency_key, case_id=request.case_id, service_type=request.service_type,
            frequency=pb.Frequency.Value(self._FREQUENCIES[request.frequency]),
            method=pb.Method.Value(f"METHOD_{request.method.upper()}"), effective_date=request.effective_from,
            weekly_liability_pence=request.weekly_liability_pence,
            paying_parent_fee_pence=request.paying_parent_fee_pence,
            receiving_parent_fee_pence=request.receiving_parent_fee_pence,
            decision_ref=f"schedule-{request.version}", rule_set_id=request.rule_set_id,
            first_collection_date=request.first_collection_date,
        ))
        if self._start_collections and request.service_type == "collect_and_pay" and request.case_day:
            await self._plan_collections(request, schedule)

    async def _plan_collections(self, request: ScheduleRequest, schedule: pb.Schedule) -> None:
        """Signal-with-start: starts the case's CollectionsWorkflow, or hands the running one the
        new schedule's periods (it skips cycles already run). Repeating it is harmless."""
        # Imported here: the case workflow imports this module, and must not load the payment workflows.
        from workflows.payments import CollectionsInput, CollectionsWorkflow, PlannedPeriod

        plan = CollectionsInput(
            request.case_id, [PlannedPeriod(p.period_index, p.due_date) for p in schedule.payments],
            case_day=request.case_day, case_instant=request.case_instant, seconds_per_day=request.seconds_per_day,
            schedule_version=request.version)
        await activity.client().start_workflow(
            CollectionsWorkflow.run, plan, id=f"case-{request.case_id}/collections",
            task_queue=self._collections_queue, start_signal="schedule_changed", start_signal_args=[plan])

    async def stop_schedule(self, request: StopScheduleRequest) -> None:
        if self._case_model is not None:
            await self._case_model.stop_schedule(request)
        await self._payments.call(self._payments.stub.StopSchedule, pb.StopScheduleRequest(
            idempotency_key=request.idempotency_key, case_id=request.case_id, stop_from=request.stop_from,
            reason=request.reason))


class CasePaymentActivities:
    def __init__(self, gateway: PaymentsGateway):
        self._gateway = gateway

    @activity.defn(name="create_payment_schedule")
    async def create_payment_schedule(self, request: ScheduleRequest) -> None:
        await self._gateway.create_schedule(request)

    @activity.defn(name="stop_payment_schedule")
    async def stop_payment_schedule(self, request: StopScheduleRequest) -> None:
        await self._gateway.stop_schedule(request)
