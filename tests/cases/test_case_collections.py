"""A Collect & Pay case in `make run` wiring: the schedule hand-over starts the case's
CollectionsWorkflow, its first cycle charges the period, finds it unpaid and signals the case,
which records the missed payment and opens a collections task. Real Temporal dev server, real
payments service, a fast case calendar (a case day is 50 ms)."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace

import pytest
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.worker import Worker

from activities.case_payments import GrpcPayments, RecordingPayments
from cms.config import TASK_QUEUE_CASES, load_settings
from cms.grpc_client import Channels
from cms.infra.processes import free_port
from cms.worker_catalog import case_activities, payment_activities, payments_client
from services.common.server import serve_in_background
from services.payments.service import register as register_payments
from tests.helpers.codec import assert_sealed, codec_data_converter
from workflows.case import CaseWorkflow
from workflows.case_messages import Calendar, CaseInput, ChildFacts
from workflows.payments import ALL_WORKFLOWS as PAYMENT_WORKFLOWS

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def _exists(client: Client, workflow_id: str) -> bool:
    try:
        await client.get_workflow_handle(workflow_id).describe()
    except RPCError:
        return False
    return True


async def test_a_missed_collection_reaches_the_case(dev_temporal, case_pool, hmrc, database_url) -> None:
    client = Client(**{**dev_temporal.config(), "data_converter": codec_data_converter()})
    settings = load_settings()
    settings = replace(settings, database_url=database_url, ports={**settings.ports, "payments": free_port()})
    payments = await serve_in_background("payments", register_payments, settings)
    address = payments.address
    suffix = uuid.uuid4().hex[:6]
    cases_queue, payments_queue = f"{TASK_QUEUE_CASES}-coll-{suffix}", f"cms-payments-coll-{suffix}"
    channels = Channels()
    ledger = payments_client(address, channels)
    schedules = GrpcPayments(ledger, record=RecordingPayments(case_pool), start_collections=True,
                             collections_task_queue=payments_queue)
    case_id = f"coll-{suffix}"
    paying = f"pp-{case_id}"
    hmrc.incomes[paying] = {"2000-01-01": 2_600_000}
    try:
        async with Worker(client, task_queue=cases_queue, workflows=[CaseWorkflow],
                          activities=case_activities(case_pool, hmrc, schedules=schedules)), \
                Worker(client, task_queue=payments_queue, workflows=PAYMENT_WORKFLOWS,
                       activities=payment_activities(ledger)):
            handle = await client.start_workflow(CaseWorkflow.run, CaseInput(
                case_id=case_id, paying_parent_id=paying, receiving_parent_id=f"rp-{case_id}",
                children=[ChildFacts("c-1", "2016-03-01")], requested_service_type="collect_and_pay",
                payment_frequency="weekly", calendar=Calendar(0.05)), id=f"case-{case_id}", task_queue=cases_queue)
            for _ in range(400):
                view = await handle.query(CaseWorkflow.state)
                if view.missed_payments:
                    break
                await asyncio.sleep(0.05)
            loop = client.get_workflow_handle(f"case-{case_id}/collections")
            # Weekly periods from the initial effective date; the first collection is 10 working
            # days (at least 14 days) after the schedule letter, so periods 0 and 1 are never collected
            # on their own: they are initial arrears spread over the year's instalments.
            # How many periods that is depends on the bank holidays near the wall-clock date.
            cycles = [index for index in range(20) if await _exists(client, f"case-{case_id}/collection-{index}")]
            first_cycle = await client.get_workflow_handle(f"case-{case_id}/collection-{cycles[0]}").describe()
            await handle.terminate("test finished")
            await loop.terminate("test finished")
    finally:
        await channels.close()
        payments.stop_event.set()
        await asyncio.wait_for(payments.task, timeout=20)
    assert view.missed_payments >= 1 and view.arrears_pence > 0
    assert view.needs_caseworker and view.caseworker_reason.startswith("Missed payment")
    assert first_cycle.workflow_type == "CollectionCycleWorkflow"
    assert cycles[0] >= 2, "nothing is collected before the first collection"
    # The case's own history holds only what it was told, not the cycles' machinery.
    history = await client.get_workflow_handle(f"case-{case_id}").fetch_history()
    children = [e.start_child_workflow_execution_initiated_event_attributes.workflow_type.name for e in history.events
                if e.HasField("start_child_workflow_execution_initiated_event_attributes")]
    assert "CollectionCycleWorkflow" not in children and "CollectionsWorkflow" not in children, children
    # Stored sealed: the collections loop and its first cycle, fetched without the codec, show
    # neither the paying party nor the money owed.
    for workflow_id in (f"case-{case_id}/collections", f"case-{case_id}/collection-{cycles[0]}"):
        raw = await dev_temporal.get_workflow_handle(workflow_id).fetch_history()
        await assert_sealed(raw.events, [paying, str(view.arrears_pence)])
