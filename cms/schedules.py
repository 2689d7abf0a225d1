"""Temporal Schedules the system needs, created idempotently at start-up (`make run`, and
`python -m cms.setup_temporal` on shared infrastructure).

- `payments-daily-reconciliation`: ReconciliationWorkflow on `cms-payments` every day at 02:00
  UTC, reconciling the previous day (its input is "": the workflow takes the day before it runs).
  Overlap: skip, so a slow run is never doubled; a missed run (server down) is caught up once.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleCalendarSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
)

from cms.config import TASK_QUEUE_PAYMENTS

RECONCILIATION_SCHEDULE_ID = "payments-daily-reconciliation"


def reconciliation_schedule() -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            "ReconciliationWorkflow", "", id="payments/reconciliation", task_queue=TASK_QUEUE_PAYMENTS,
            execution_timeout=timedelta(hours=6),
        ),
        spec=ScheduleSpec(calendars=[ScheduleCalendarSpec(hour=[ScheduleRange(2)], minute=[ScheduleRange(0)],
                                                          second=[ScheduleRange(0)])]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=timedelta(days=1)),
    )


async def ensure_schedules(client: Client) -> list[str]:
    """Creates the schedules that are missing; returns the ids it created. An existing schedule
    is left as it is (an operator may have paused it)."""
    created = []
    try:
        await client.create_schedule(RECONCILIATION_SCHEDULE_ID, reconciliation_schedule())
        created.append(RECONCILIATION_SCHEDULE_ID)
    except ScheduleAlreadyRunningError:
        pass
    return created
