"""What operations see of enforcement on a dev server with the custom search attributes: the
Prometheus gauges (cases per step, approvals waiting, charges posted, arrears collected) and the
`cmsctl enforcement` requests (list, show, approve, plan, withdraw)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from prometheus_client import REGISTRY
from temporalio import activity
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError
from temporalio.worker import Worker

from activities.case_notifications import CaseNoticeActivities
from activities.payments_messages import EnforcementChargeRequest, PostingOutcome
from cms.cli.enforcement import list_query, send_update, show_status
from services.case_api.enforcement_metrics import (
    APPROVALS_WAITING,
    ARREARS_COLLECTED,
    CASES_PER_STEP,
    CHARGES_POSTED,
    EnforcementMetrics,
)
from tests.enforcement.conftest import CapturedLetters
from tests.enforcement.enforcement_helpers import enforcement_input, next_case_id, pending, until
from tests.helpers.codec import codec_data_converter
from workflows.enforcement import EnforcementWorkflow
from workflows.enforcement_messages import (
    ApprovalRequest,
    ArrearsUpdate,
    OutcomeRequest,
    PlanRequest,
    WithdrawRequest,
    enforcement_workflow_id,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")


@activity.defn(name="post_enforcement_charge")
async def charge_accepted(request: EnforcementChargeRequest) -> PostingOutcome:
    return PostingOutcome(f"tx-{request.business_key}", False, "pp_enforcement")


def sample(gauge, **labels) -> float:
    return REGISTRY.get_sample_value(gauge._name, labels) or 0.0


async def eventually(check, attempts: int = 300) -> None:
    for _ in range(attempts):
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("visibility never caught up")


async def test_gauges_and_cmsctl_requests(dev_temporal: Client) -> None:
    config = dev_temporal.config()
    config["data_converter"] = codec_data_converter()
    client = Client(**config)
    queue = f"enforcement-ops-{uuid.uuid4().hex[:6]}"
    payments_queue = f"{queue}-payments"

    async def begin(**kwargs):
        data = enforcement_input(next_case_id(), **kwargs)
        data.publish_search_attributes, data.payments_task_queue = True, payments_queue
        return data, await client.start_workflow(EnforcementWorkflow.run, data, task_queue=queue,
                                                 id=enforcement_workflow_id(data.case_id, data.n))

    async with Worker(client, task_queue=queue, workflows=[EnforcementWorkflow],
                      activities=[CaseNoticeActivities(CapturedLetters()).send_case_notices]), \
            Worker(client, task_queue=payments_queue, activities=[charge_accepted]):
        court, court_handle = await begin(employed=False, bank_account=False, arrears=50_000)
        order, order_handle = await begin(employed=True, arrears=60_000)
        try:
            await until(court_handle, lambda s: s.steps[-1].detail == "applied to the court", "the application")
            await send_update(client, court.case_id, 1, "record_outcome",
                              OutcomeRequest("liability_order", "granted", "cw-1", "order made"))
            await until(court_handle, pending("enforcement_agents"), "waiting for approval")
            await until(order_handle, lambda s: s.charges_posted_pence == 5000, "the earnings order served")
            await order_handle.signal(EnforcementWorkflow.arrears_changed, ArrearsUpdate("deo-1", 45_000))

            metrics = EnforcementMetrics(lambda: _ready(client))

            async def counted() -> bool:
                await metrics.refresh()
                return (sample(APPROVALS_WAITING, step="enforcement_agents") >= 1
                        and sample(ARREARS_COLLECTED) >= 15_000)

            await eventually(counted)
            assert sample(CASES_PER_STEP, step="enforcement_agents") >= 1
            assert sample(CASES_PER_STEP, step="deduction_from_earnings_order") >= 1
            assert sample(CHARGES_POSTED) >= 35_000    # £300 liability order + £50 earnings order
            listed = [e.id async for e in client.list_workflows(list_query("enforcement_agents"))]
            assert court_handle.id in listed and order_handle.id not in listed
            with pytest.raises(ValueError):
                list_query("x' OR 1=1")

            status = await show_status(client, court.case_id, 1)
            assert (status.pending_approval, status.charges_posted_pence) == ("enforcement_agents", 30_000)
            with pytest.raises(WorkflowUpdateFailedError):
                await send_update(client, court.case_id, 1, "approve",
                                  ApprovalRequest("committal", "cw-1", "caseworker", "why"))
            approved = await send_update(client, court.case_id, 1, "approve",
                                         ApprovalRequest("enforcement_agents", "cw-1", "caseworker", "no payment"))
            assert [a.staff_id for a in approved.approvals] == ["cw-1"]
            await send_update(client, order.case_id, 1, "agree_plan", PlanRequest(7_500, 6, 30, "cw-2", "agreed"))
            await until(order_handle, lambda s: s.current_step == "repayment_plan", "the plan")
            await send_update(client, order.case_id, 1, "withdraw", WithdrawRequest("cw-2", "case reviewed"))
            assert (await order_handle.result()).ended_because == "withdrawn"
        finally:
            for handle in (court_handle, order_handle):
                try:
                    await handle.terminate("test over")
                except RPCError:
                    pass   # already closed


async def _ready(client: Client) -> Client:
    return client
