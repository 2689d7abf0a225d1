"""Payment schedules handed to payments, behind an interface the payments service will implement.

`RecordingPayments` (the default) records each request in the case read model
(`case_api.payment_requests`) under its idempotency key. The payments service
(`cms.payments.v1.PaymentsService/CreateSchedule`) replaces it by implementing `PaymentsGateway`
and calling `set_payments_gateway` at worker start. Closing a case stops the schedule only:
arrears stay with payments and remain collectable.
"""

from __future__ import annotations

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


_gateway: PaymentsGateway = RecordingPayments()


def set_payments_gateway(gateway: PaymentsGateway) -> None:
    global _gateway
    _gateway = gateway


@activity.defn
async def create_payment_schedule(request: ScheduleRequest) -> None:
    await _gateway.create_schedule(request)


@activity.defn
async def stop_payment_schedule(request: StopScheduleRequest) -> None:
    await _gateway.stop_schedule(request)
