"""Escalation at day 21 and breach at day 28 on a time-skipping server of its own: skipping four
weeks on the shared one would fire other tests' timers, and their leftovers could hold its clock."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from cms.infra.temporal_server import temporal_test_server
from cms.worker_catalog import change_activities
from domain.changes import SENIOR_TEAM
from tests.changes.test_change_workflow import record, reported, start, wait_for_stage
from tests.helpers.replay import CHANGE_HISTORIES, record_history
from workflows.change import ChangeWorkflow, ReviewDecision

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def own_time_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=str(temporal_test_server()))
    yield env
    await env.shutdown()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def own_queue(own_time_env: WorkflowEnvironment, change_pool) -> AsyncIterator[str]:
    queue = f"escalation-{uuid.uuid4().hex[:6]}"
    async with Worker(own_time_env.client, task_queue=queue, workflows=[ChangeWorkflow], activities=change_activities(change_pool)):
        yield queue


async def test_escalation_at_day_21_and_breach_at_day_28_keep_the_change(
        own_time_env, own_queue, change_pool) -> None:
    handle = await start(own_time_env, own_queue,
                         reported("paying_parent_income", {"weekly_income_pence": 90_000}, reported_by="receiving_parent"))
    await wait_for_stage(handle, "awaiting_review")
    case_id = handle.id.split("/")[0].removeprefix("case-")
    await own_time_env.sleep(timedelta(days=20))
    status = await handle.query(ChangeWorkflow.status)
    assert not status.escalated and status.assigned_team == "changes-review"
    await own_time_env.sleep(timedelta(days=2))
    status = await handle.query(ChangeWorkflow.status)
    assert status.escalated and not status.breached and status.assigned_team == SENIOR_TEAM
    row = await record(change_pool, case_id)
    assert (row["status"], row["escalated"], row["breached"], row["team"]) == ("escalated", True, False, SENIOR_TEAM)
    await own_time_env.sleep(timedelta(days=7))
    status = await handle.query(ChangeWorkflow.status)
    assert status.breached and status.case_day >= 28 and status.stage == "awaiting_review"
    assert (await record(change_pool, case_id))["breached"]
    answer = await handle.execute_update(ChangeWorkflow.review_decision,
                                         ReviewDecision(outcome="apply", reason="payslips seen", reviewer="cw-9"))
    assert answer.outcome == "recalculated"
    outcome = await handle.result()
    assert outcome.breached and outcome.escalated and not outcome.on_time
    row = await record(change_pool, case_id)
    assert (row["status"], row["on_time"]) == ("cleared", False)
    await record_history(handle, CHANGE_HISTORIES, "escalated_breached")
