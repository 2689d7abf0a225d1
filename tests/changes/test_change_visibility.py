"""Operators find open changes in the Temporal UI by search attributes (dev server with our
attributes registered): CaseStage, NeedsCaseworker, AssignedTeam and SlaDueAt on each change."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.client import Client
from temporalio.worker import Worker

from cms.worker_catalog import change_activities
from workflows.change import ChangeInput, ChangeWorkflow, ReportedChange, ReviewDecision, change_workflow_id

pytestmark = pytest.mark.asyncio(loop_scope="session")

INPUTS = {
    "paying_parent": {"gross_weekly_income_pence": 40_000},
    "receiving_parents": [{"id": "rp-1", "children": [{"id": "c-1", "shared_care_nights": 0}]}],
}


async def listed(client: Client, query: str) -> list[str]:
    return [w.id async for w in client.list_workflows(query)]


async def eventually(client: Client, query: str, workflow_id: str) -> None:
    for _ in range(200):
        if workflow_id in await listed(client, query):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{workflow_id} never matched {query}")


async def test_open_change_is_listed_for_its_queue_then_cleared(dev_temporal: Client, change_pool) -> None:
    queue = f"changes-visibility-{uuid.uuid4().hex[:6]}"
    case_id = f"vis-{uuid.uuid4().hex[:8]}"
    change = ReportedChange(kind="shared_care_nights", reported_date="2025-06-01", effective_date="2025-05-01",
                            details={"child_id": "c-1", "nights": 60}, evidence_disputed=True)
    async with Worker(dev_temporal, task_queue=queue, workflows=[ChangeWorkflow], activities=change_activities(change_pool)):
        handle = await dev_temporal.start_workflow(
            ChangeWorkflow.run, ChangeInput(case_id=case_id, n=1, change=change, current_inputs=INPUTS,
                                            seconds_per_day=3600, today="2025-06-01"),
            id=change_workflow_id(case_id, 1), task_queue=queue)
        soon_after_due = (datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
        await eventually(dev_temporal, "CaseStage = 'ChangeReview' AND NeedsCaseworker = true AND "
                                       f"AssignedTeam = 'changes-disputes' AND SlaDueAt < '{soon_after_due}'", handle.id)
        await handle.execute_update(ChangeWorkflow.review_decision,
                                    ReviewDecision(outcome="apply", reason="diary checked", reviewer="cw-1"))
        await handle.result()
        await eventually(dev_temporal, "CaseStage = 'ChangeCleared' AND NeedsCaseworker = false", handle.id)
        assert handle.id not in await listed(dev_temporal, "CaseStage = 'ChangeReview' AND NeedsCaseworker = true")
