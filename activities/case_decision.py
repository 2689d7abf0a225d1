"""One local activity for the writes of a decision that moves a case to Active: both parents'
letters, the schedule hand-over to payments, then the read-model record (patch
'one-decision-write' in workflows/case.py). Three short idempotent writes in one call cost the
worker one local-activity round trip instead of three, and the history one marker.

Order matters and is kept: letters, then schedule, then the record, so the read model never
shows an Active case whose letters or schedule were not handed over. Each step is idempotent on
its own key, so a retry after a failure part-way repeats nothing that already happened.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from temporalio import activity

from activities.case_notifications import CaseNotice, send_case_notices
from activities.case_payments import ScheduleRequest, create_payment_schedule
from activities.case_records import CaseSnapshot, sync_case_record


@dataclass
class DecisionWrites:
    snapshot: CaseSnapshot
    notices: list[CaseNotice] = field(default_factory=list)
    schedule: ScheduleRequest | None = None


@activity.defn
async def write_decision(writes: DecisionWrites) -> None:
    if writes.notices:
        await send_case_notices(writes.notices)
    if writes.schedule is not None:
        await create_payment_schedule(writes.schedule)
    await sync_case_record(writes.snapshot)
