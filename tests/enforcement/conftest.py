"""Enforcement workflow fixtures: the payments service in-process on a database of its own, and a
worker running EnforcementWorkflow on the time-skipping server with the real payments activities
and the letters captured for inspection."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.case_messages import CaseNotice
from activities.case_notifications import CaseNoticeActivities
from cms.config import TASK_QUEUE_CASES, TASK_QUEUE_PAYMENTS, load_settings
from cms.grpc_client import Channels
from cms.infra.processes import free_port
from cms.worker_catalog import payment_activities, payments_client
from services.payments.bank import FakeBank
from tests.helpers.codec import codec_data_converter
from tests.payments.conftest import AddressedPaymentsStub, payments_service
from tests.payments.payments_helpers import fresh_database
from workflows.enforcement import EnforcementWorkflow


class CapturedLetters:
    """A NoticeSender that keeps every letter, once per idempotency key (as the outbox does)."""

    def __init__(self) -> None:
        self.by_key: dict[str, CaseNotice] = {}

    async def send_all(self, notices: list[CaseNotice]) -> None:
        for notice in notices:
            self.by_key.setdefault(notice.idempotency_key, notice)

    def to(self, recipient: str) -> list[CaseNotice]:
        return [n for n in self.by_key.values() if n.recipient_party_id == recipient]


@pytest.fixture(scope="session")
def enforcement_payments_db(database_url: str) -> str:
    return fresh_database(database_url, "enforcement_payments_tests")


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def enforcement_payments(enforcement_payments_db: str) -> AsyncIterator[AddressedPaymentsStub]:
    settings = load_settings()
    settings = replace(settings, database_url=enforcement_payments_db,
                       ports={**settings.ports, "payments": free_port()})
    async with payments_service(settings, FakeBank(seed=11)) as stub:
        yield stub


@pytest.fixture
def letters() -> CapturedLetters:
    return CapturedLetters()


@pytest.fixture
def payment_activity_wrapper():
    """How the tests reach the payments activities (a test may wrap them to inject failures)."""
    return lambda activities: activities


@pytest_asyncio.fixture(loop_scope="session")
async def enforcement_env(time_skipping_env: WorkflowEnvironment, enforcement_payments, letters,
                          payment_activity_wrapper) -> AsyncIterator[dict]:
    config = time_skipping_env.client.config()
    config["data_converter"] = codec_data_converter()
    client = Client(**config)
    suffix = uuid.uuid4().hex[:6]
    cases_queue, payments_queue = f"{TASK_QUEUE_CASES}-enf-{suffix}", f"{TASK_QUEUE_PAYMENTS}-enf-{suffix}"
    channels = Channels()
    started: list[str] = []
    payments = payment_activity_wrapper(payment_activities(payments_client(enforcement_payments.address, channels)))

    async def start(data):
        data.payments_task_queue = payments_queue
        handle = await client.start_workflow(EnforcementWorkflow.run, data, id=f"case-{data.case_id}/enforcement-{data.n}",
                                             task_queue=cases_queue)
        started.append(handle.id)
        return handle

    async with Worker(client, task_queue=cases_queue, workflows=[EnforcementWorkflow],
                      activities=[CaseNoticeActivities(letters).send_case_notices]), \
            Worker(client, task_queue=payments_queue, activities=payments):
        yield {"client": client, "start": start, "payments": enforcement_payments, "letters": letters}
        for workflow_id in started:
            try:
                await client.get_workflow_handle(workflow_id).terminate("test finished")
            except RPCError:
                pass  # already closed
    await channels.close()
