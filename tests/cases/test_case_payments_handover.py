"""With CMS_CASE_PAYMENTS_VIA_GRPC, the case hands its schedule to the real payments service
(in process here) and stops it on closure; the same idempotency keys make retries harmless."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace

import grpc
import psycopg
import pytest
import pytest_asyncio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from activities.case_payments import GrpcPayments, RecordingPayments
from cms.config import load_settings
from cms.grpc_client import Channels
from cms.infra.processes import free_port
from cms.worker_catalog import payments_client
from services.common.server import serve
from services.payments.service import register as register_payments
from tests.helpers.auth import caller_channel
from workflows.case_messages import CaseInput, ChildFacts

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def _payments_service(database_url: str):
    settings = load_settings()
    settings = replace(settings, database_url=database_url, ports={**settings.ports, "payments": free_port()})
    stop = asyncio.Event()
    task = asyncio.create_task(serve("payments", register_payments, settings, stop))
    address = settings.address_of("payments")
    for _ in range(100):
        try:
            async with caller_channel(address) as channel:
                await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
            break
        except grpc.aio.AioRpcError:
            await asyncio.sleep(0.1)
    return address, stop, task


@pytest_asyncio.fixture(loop_scope="session")
async def case_schedules(database_url, case_pool):
    """The case worker hands its schedules to a payments service of this module's own."""
    address, stop, task = await _payments_service(database_url)
    channels = Channels()
    yield GrpcPayments(payments_client(address, channels), record=RecordingPayments(case_pool))
    await channels.close()
    stop.set()
    await asyncio.wait_for(task, timeout=20)


async def test_schedule_goes_to_payments_and_stops_at_closure(case_env, database_url) -> None:
    case_id = f"pay-{uuid.uuid4().hex[:8]}"
    paying = f"pp-{case_id}"
    case_env["hmrc"].incomes[paying] = {"2000-01-01": 2_600_000}
    handle = await case_env["start"](CaseInput(
        case_id=case_id, application_date="2025-01-10", receiving_parent_id=f"rp-{case_id}",
        paying_parent_id=paying, children=[ChildFacts("c-1", "2005-03-01", in_full_time_education=True)],
        requested_service_type="collect_and_pay", publish_search_attributes=False))
    outcome = await handle.result()
    assert outcome.closure.reason == "no_qualifying_child"
    with psycopg.connect(database_url) as conn:
        schedules = conn.execute(
            "SELECT version, service_type, frequency, first_start::text, decision_ref FROM payments.schedules "
            "WHERE case_id = %s ORDER BY version", (case_id,)).fetchall()
    # The schedule from the initial effective date, then a nil version from the closure date
    # (the payments service keeps any arrears collectable).
    assert [row[1:4] for row in schedules] == [("collect_and_pay", "monthly", "2025-01-12")] * 2
    assert schedules[0][4] == "schedule-1" and schedules[1][4] == "stopped:no_qualifying_child"
