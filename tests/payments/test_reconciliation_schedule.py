"""The daily reconciliation: a Temporal Schedule created idempotently at start-up, and the
workflow it starts reconciling the previous day when given no date."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from temporalio import activity
from temporalio.client import ScheduleActionStartWorkflow
from temporalio.worker import Worker

from activities.payments_messages import ReconciliationOutcome
from cms.config import TASK_QUEUE_PAYMENTS
from cms.schedules import RECONCILIATION_SCHEDULE_ID, ensure_schedules
from workflows.payments import ReconciliationWorkflow

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_the_daily_reconciliation_schedule_is_created_once(dev_temporal) -> None:
    first = await ensure_schedules(dev_temporal)
    again = await ensure_schedules(dev_temporal)
    assert again == [] and (first in ([], [RECONCILIATION_SCHEDULE_ID]))
    described = await dev_temporal.get_schedule_handle(RECONCILIATION_SCHEDULE_ID).describe()
    action = described.schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    assert (action.workflow, action.task_queue) == ("ReconciliationWorkflow", TASK_QUEUE_PAYMENTS)
    [calendar] = described.schedule.spec.calendars
    assert [(r.start, r.end) for r in calendar.hour] in ([(2, 0)], [(2, 2)])
    assert calendar.day_of_month[0].start == 1 and calendar.day_of_month[0].end == 31   # every day


async def test_reconciliation_without_a_date_reconciles_the_day_before(dev_temporal) -> None:
    asked: list[str] = []

    @activity.defn(name="reconcile")
    async def reconcile(as_of: str) -> ReconciliationOutcome:
        asked.append(as_of)
        return ReconciliationOutcome(True, 0, [], 0)

    queue = f"reconciliation-{uuid.uuid4().hex[:6]}"
    async with Worker(dev_temporal, task_queue=queue, workflows=[ReconciliationWorkflow], activities=[reconcile]):
        handle = await dev_temporal.start_workflow(ReconciliationWorkflow.run, "", id=f"payments/reconciliation-{queue}",
                                                   task_queue=queue)
        assert (await handle.result()).ok
        started = (await handle.describe()).start_time
        assert await dev_temporal.execute_workflow(ReconciliationWorkflow.run, "2026-02-28", id=f"{handle.id}-dated",
                                                   task_queue=queue)
    assert asked == [(started.date() - timedelta(days=1)).isoformat(), "2026-02-28"]
