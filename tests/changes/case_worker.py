"""A CaseWorkflow worker on a time-skipping server of its own, for tests of changes on the real
case workflow; optionally with the real payments service over gRPC (on a free port, the test
database) as the case's payments gateway, for tests that check what the ledger posts."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

from psycopg_pool import AsyncConnectionPool
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.adapters.hmrc import HmrcAdapter
from activities.case_payments import GrpcPayments, PaymentsGateway, RecordingPayments
from cms.config import TASK_QUEUE_CASES, load_settings
from cms.grpc_client import Channels
from cms.infra.processes import free_port
from cms.infra.temporal_server import temporal_test_server
from cms.worker_catalog import case_activities, payments_client, workflows_for
from services.common.server import serve_in_background
from services.payments.service import register as register_payments
from tests.helpers.codec import codec_data_converter


@asynccontextmanager
async def case_worker(pool: AsyncConnectionPool, hmrc: HmrcAdapter, queue_prefix: str,
                      schedules: PaymentsGateway | None = None
                      ) -> AsyncIterator[tuple[WorkflowEnvironment, Client, str]]:
    """Yields (environment, strict client, task queue) with `hmrc` as the HMRC adapter and
    `schedules` as the payments gateway (default: recorded in the case read model)."""
    env = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=str(temporal_test_server()))
    config = env.client.config()
    config["data_converter"] = codec_data_converter()
    client = Client(**config)
    queue = f"{queue_prefix}-{uuid.uuid4().hex[:6]}"
    try:
        async with Worker(client, task_queue=queue, workflows=workflows_for(TASK_QUEUE_CASES),
                          activities=case_activities(pool, hmrc, schedules=schedules)):
            yield env, client, queue
    finally:
        await env.shutdown()


@asynccontextmanager
async def case_worker_with_payments(pool: AsyncConnectionPool, database_url: str, hmrc: HmrcAdapter,
                                    queue_prefix: str) -> AsyncIterator[tuple[WorkflowEnvironment, Client, str, str]]:
    """Yields (environment, strict client, task queue, payments address)."""
    settings = load_settings()
    settings = replace(settings, database_url=database_url, ports={**settings.ports, "payments": free_port()})
    payments = await serve_in_background("payments", register_payments, settings)
    channels = Channels()
    schedules = GrpcPayments(payments_client(payments.address, channels), record=RecordingPayments(pool))
    try:
        async with case_worker(pool, hmrc, queue_prefix, schedules) as (env, client, queue):
            yield env, client, queue, payments.address
    finally:
        await channels.close()
        await payments.stop()
