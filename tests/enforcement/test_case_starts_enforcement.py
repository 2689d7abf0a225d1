"""A missed Collect & Pay payment not put right within 7 days of contact starts enforcement, a
child workflow of the case (`case-<id>/enforcement-1`); a further miss while it is open starts no
second one."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import pytest_asyncio
from psycopg_pool import AsyncConnectionPool
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from cms.config import TASK_QUEUE_CASES
from cms.worker_catalog import case_activities
from tests.cases.case_helpers import ScriptedHmrc
from tests.helpers.codec import codec_data_converter
from tests.helpers.replay import CASE_HISTORIES, ENFORCEMENT_HISTORIES, record_history
from workflows.case import CaseWorkflow
from workflows.case_messages import CaseInput, CaseQuery, ChildFacts
from workflows.enforcement import EnforcementWorkflow
from workflows.payments import PAYMENT_EVENT_SIGNAL, PaymentEvent

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(loop_scope="session")
async def case_worker(time_skipping_env: WorkflowEnvironment, database_url: str) -> AsyncIterator[dict]:
    config = time_skipping_env.client.config()
    config["data_converter"] = codec_data_converter()
    client = Client(**config)
    queue = f"{TASK_QUEUE_CASES}-enf-case-{uuid.uuid4().hex[:6]}"
    hmrc = ScriptedHmrc()
    async with AsyncConnectionPool(database_url, open=False, min_size=1, max_size=4) as pool, \
            Worker(client, task_queue=queue, workflows=[CaseWorkflow, EnforcementWorkflow],
                   activities=case_activities(pool, hmrc)):
        yield {"client": client, "queue": queue, "hmrc": hmrc, "env": time_skipping_env}


def missed(case_id: str, n: int, arrears: int) -> PaymentEvent:
    source = f"case-{case_id}/collection-{n}"
    return PaymentEvent(f"{source}/missed", case_id, "missed", n, "2025-02-11", 34666, 0, arrears, source)


async def test_a_miss_not_put_right_starts_enforcement_once(case_worker) -> None:
    client, env = case_worker["client"], case_worker["env"]
    case_id = f"enf-case-{uuid.uuid4().hex[:8]}"
    paying = f"pp-{case_id}"
    case_worker["hmrc"].incomes[paying] = {"2025-01-01": 2_600_000}
    handle = await client.start_workflow(CaseWorkflow.run, CaseInput(
        case_id=case_id, application_date="2025-01-10", paying_parent_id=paying,
        children=[ChildFacts("c-1", "2015-03-01")], requested_service_type="collect_and_pay",
        publish_search_attributes=False), id=f"case-{case_id}", task_queue=case_worker["queue"])
    child = client.get_workflow_handle(f"case-{case_id}/enforcement-1")
    try:
        await env.sleep(timedelta(days=3))
        assert (await handle.query(CaseWorkflow.state)).stage == "Active"
        await handle.signal(PAYMENT_EVENT_SIGNAL, missed(case_id, 0, 34666))
        await env.sleep(timedelta(days=3))
        with pytest.raises(RPCError):
            await child.describe()   # still inside the 7 days of contact
        await handle.signal(PAYMENT_EVENT_SIGNAL, missed(case_id, 1, 69332))
        await env.sleep(timedelta(days=5))
        status = await child.query(EnforcementWorkflow.status)
        assert (status.steps[0].step, status.arrears_at_start_pence) == ("contact", 69332)
        timeline = [e.kind for e in await handle.query(CaseWorkflow.timeline, CaseQuery(recent=50))]
        assert timeline.count("enforcement_started") == 1
        await handle.signal(PAYMENT_EVENT_SIGNAL, missed(case_id, 2, 104_000))
        await env.sleep(timedelta(days=8))
        with pytest.raises(RPCError):
            await client.get_workflow_handle(f"case-{case_id}/enforcement-2").describe()
        await record_history(handle, CASE_HISTORIES, "case_starts_enforcement")
        await record_history(child, ENFORCEMENT_HISTORIES, "started_by_case")
    finally:
        for workflow_handle in (handle, child):
            try:
                await workflow_handle.terminate("test finished")
            except RPCError:
                pass   # already closed


def direct_pay_missed(case_id: str, n: int, due_date: str, arrears: int) -> PaymentEvent:
    source = f"case-{case_id}/direct-pay-report-{n}"
    return PaymentEvent(f"{source}/direct_pay_missed", case_id, "direct_pay_missed", -1, due_date, 34666, 0,
                        arrears, source)


async def test_direct_pay_moves_only_after_a_written_warning_and_a_later_miss(case_worker) -> None:
    client, env = case_worker["client"], case_worker["env"]
    case_id = f"enf-dp-{uuid.uuid4().hex[:8]}"
    paying = f"pp-{case_id}"
    case_worker["hmrc"].incomes[paying] = {"2025-01-01": 2_600_000}
    handle = await client.start_workflow(CaseWorkflow.run, CaseInput(
        case_id=case_id, application_date="2025-01-10", paying_parent_id=paying,
        children=[ChildFacts("c-1", "2015-03-01")], publish_search_attributes=False),
        id=f"case-{case_id}", task_queue=case_worker["queue"])
    try:
        await env.sleep(timedelta(days=3))
        # Two misses reported on one day: the pattern is there, but the warning is not yet sent.
        await handle.signal(PAYMENT_EVENT_SIGNAL, direct_pay_missed(case_id, 1, "2025-02-11", 34666))
        await handle.signal(PAYMENT_EVENT_SIGNAL, direct_pay_missed(case_id, 2, "2025-03-11", 69332))
        await env.sleep(timedelta(days=1))
        view = await handle.query(CaseWorkflow.state)
        assert view.service_type == "direct_pay" and view.collect_and_pay_switch is None
        timeline = [e.kind for e in await handle.query(CaseWorkflow.timeline, CaseQuery(recent=50))]
        assert timeline.count("direct_pay_warning") == 1
        # A miss reported after the warning: now the case moves.
        await handle.signal(PAYMENT_EVENT_SIGNAL, direct_pay_missed(case_id, 3, "2025-04-11", 104_000))
        await env.sleep(timedelta(days=1))
        view = await handle.query(CaseWorkflow.state)
        assert view.collect_and_pay_switch is not None and view.collect_and_pay_switch.reason == "direct_pay_missed"
        await record_history(handle, CASE_HISTORIES, "direct_pay_warning_then_move")
    finally:
        try:
            await handle.terminate("test finished")
        except RPCError:
            pass   # already closed
