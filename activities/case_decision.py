"""One local activity for the writes of a decision that moves a case to Active: both parents'
letters, the schedule hand-over to payments, then the read-model record (patch
'one-decision-write' in workflows/case.py). Three short idempotent writes in one call cost the
worker one local-activity round trip instead of three, and the history one marker.

Order matters and is kept: letters, then schedule, then the record, so the read model never
shows an Active case whose letters or schedule were not handed over. Each step is idempotent on
its own key, so a retry after a failure part-way repeats nothing that already happened.
"""

from __future__ import annotations

from temporalio import activity

from activities.case_messages import DecisionWrites
from activities.case_notifications import CaseNoticeActivities
from activities.case_payments import CasePaymentActivities
from activities.case_records import CaseRecordActivities


class DecisionActivities:
    """The decision's writes through the same activities the workflow calls one by one."""

    def __init__(self, notices: CaseNoticeActivities, schedules: CasePaymentActivities,
                 records: CaseRecordActivities):
        self._notices = notices
        self._schedules = schedules
        self._records = records

    @activity.defn(name="write_decision")
    async def write_decision(self, writes: DecisionWrites) -> None:
        if writes.notices:
            await self._notices.send_case_notices(writes.notices)
        if writes.schedule is not None:
            await self._schedules.create_payment_schedule(writes.schedule)
        await self._records.sync_case_record(writes.snapshot)
