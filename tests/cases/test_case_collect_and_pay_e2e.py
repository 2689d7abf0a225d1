"""Direct Pay to Collect & Pay in `make run` wiring: the receiving parent reports two missed Direct
Pay payments (payments' DirectPayReportWorkflow), the case moves itself to Collect & Pay, the
payments service takes the new schedule version on Collect & Pay with the fees, and the case's
CollectionsWorkflow starts with the first period on Collect & Pay. Real Temporal dev server, real
payments service, a fast case calendar (a case day is 50 ms)."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from datetime import date, timedelta

import pytest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from activities.case_payments import GrpcPayments, RecordingPayments
from activities.payments_messages import DirectPaymentReport
from cms.config import TASK_QUEUE_CASES, load_settings
from cms.grpc_client import Channels
from cms.infra.processes import free_port
from cms.worker_catalog import case_activities, payment_activities, payments_client
from cms_proto.payments.v1 import payments_pb2, payments_pb2_grpc
from services.common.server import serve_in_background
from services.payments.service import register as register_payments
from tests.helpers.auth import caller_channel
from tests.helpers.codec import codec_data_converter
from workflows.case import CaseWorkflow
from workflows.case_messages import Calendar, CaseInput, ChildFacts
from workflows.payments import ALL_WORKFLOWS as PAYMENT_WORKFLOWS
from workflows.payments import DirectPayReportInput, DirectPayReportWorkflow

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def _until(check, attempts: int = 400):
    for _ in range(attempts):
        value = await check()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError("condition never held")


async def test_two_missed_direct_pay_reports_move_the_case_and_payments_collects(
        dev_temporal, case_pool, hmrc, database_url) -> None:

    client = Client(**{**dev_temporal.config(), "data_converter": codec_data_converter()})
    settings = load_settings()
    settings = replace(settings, database_url=database_url, ports={**settings.ports, "payments": free_port()})
    payments = await serve_in_background("payments", register_payments, settings)
    suffix = uuid.uuid4().hex[:6]
    cases_queue, payments_queue = f"{TASK_QUEUE_CASES}-dpcp-{suffix}", f"cms-payments-dpcp-{suffix}"
    channels = Channels()
    ledger = payments_client(payments.address, channels)
    schedules = GrpcPayments(ledger, record=RecordingPayments(case_pool), start_collections=True,
                             collections_task_queue=payments_queue)
    case_id = f"dpcp-{suffix}"
    paying = f"pp-{case_id}"
    hmrc.incomes[paying] = {"2000-01-01": 2_600_000}
    started: list[str] = [f"case-{case_id}"]
    try:
        async with Worker(client, task_queue=cases_queue, workflows=[CaseWorkflow],
                          activities=case_activities(case_pool, hmrc, schedules=schedules)), \
                Worker(client, task_queue=payments_queue, workflows=PAYMENT_WORKFLOWS,
                       activities=payment_activities(ledger)), \
                caller_channel(payments.address) as channel:
            handle = await client.start_workflow(CaseWorkflow.run, CaseInput(
                case_id=case_id, paying_parent_id=paying, receiving_parent_id=f"rp-{case_id}",
                children=[ChildFacts("c-1", "2016-03-01")], payment_frequency="weekly",
                calendar=Calendar(0.05)), id=f"case-{case_id}", task_queue=cases_queue)

            async def active():
                view = await handle.query(CaseWorkflow.state)
                return view if view.stage == "Active" else None
            view = await _until(active)
            assert view.service_type == "direct_pay"
            first = date.fromisoformat(view.initial_effective_date)
            for n, due in enumerate((first, first + timedelta(weeks=1))):
                report_id = f"case-{case_id}/direct-pay-report-{n}"
                started.append(report_id)
                await client.execute_workflow(DirectPayReportWorkflow.run, DirectPayReportInput(
                    DirectPaymentReport(case_id, due.isoformat(), False, 0, f"report-{n}")),
                    id=report_id, task_queue=payments_queue)

            async def moved():
                view = await handle.query(CaseWorkflow.state)
                return view if view.service_type == "collect_and_pay" else None
            view = await _until(moved)
            switch = view.collect_and_pay_switch
            assert (switch.reason, switch.actor) == ("direct_pay_missed", "system")

            async def service_type_visible():   # the ServiceType search attribute, for operators' lists
                query = f"WorkflowId = 'case-{case_id}' AND ServiceType = 'collect_and_pay'"
                return [execution async for execution in client.list_workflows(query)]
            await _until(service_type_visible)

            stub = payments_pb2_grpc.PaymentsServiceStub(channel)

            async def collect_and_pay_in_payments():
                balance = await stub.GetBalance(payments_pb2.GetBalanceRequest(case_id=case_id))
                return balance if balance.service_type == "collect_and_pay" else None
            await _until(collect_and_pay_in_payments)
            # Collections start at the first period on Collect & Pay: weekly periods from the
            # initial effective date, so the switch date's index.
            days_on_direct_pay = (date.fromisoformat(switch.effective_from) - first).days
            assert days_on_direct_pay % 7 == 0 and days_on_direct_pay >= 0   # a period start
            first_cp_period = days_on_direct_pay // 7
            started += [f"case-{case_id}/collections", f"case-{case_id}/collection-{first_cp_period}"]

            async def cycle_started():
                try:
                    return await client.get_workflow_handle(f"case-{case_id}/collection-{first_cp_period}").describe()
                except RPCError as error:   # not started yet
                    assert error.status == RPCStatusCode.NOT_FOUND
                    return None
            cycle = await _until(cycle_started)
            assert cycle.workflow_type == "CollectionCycleWorkflow"
            for earlier in range(first_cp_period):   # Direct Pay periods are never charged by payments
                with pytest.raises(RPCError) as missing:
                    await client.get_workflow_handle(f"case-{case_id}/collection-{earlier}").describe()
                assert missing.value.status == RPCStatusCode.NOT_FOUND
    finally:
        for workflow_id in started:
            try:
                await client.get_workflow_handle(workflow_id).terminate("test finished")
            except RPCError:
                pass   # already closed or never started
        await channels.close()
        payments.stop_event.set()
        await asyncio.wait_for(payments.task, timeout=20)
