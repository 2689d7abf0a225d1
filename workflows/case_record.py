"""What a case writes down and sends out, in one object the case workflow owns: the timeline, the
stage, the caseworker task, the search attributes operators filter on, the read model in
PostgreSQL, and the letters and schedules handed to notifications and payments.

Everything here runs inside the case workflow (deterministic: the case calendar, workflow time,
activities for every write). The recorder holds no facts of its own beyond what is waiting to be
written: the facts are the case's `CaseState`, shared with the workflow.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.case_decision import DecisionActivities
    from activities.case_messages import (
        CaseNotice,
        CaseSnapshot,
        ChildRow,
        DecisionWrites,
        ScheduleRequest,
        TimelineRow,
    )
    from activities.case_notifications import CaseNoticeActivities
    from activities.case_payments import CasePaymentActivities
    from activities.case_records import CaseRecordActivities
    from cms.search_attributes import (
        ARREARS_PENCE,
        ASSIGNED_TEAM,
        CASE_STAGE,
        NEEDS_CASEWORKER,
        SERVICE_TYPE,
        SLA_DUE_AT,
    )
    from domain import lifecycle
    from workflows.case_messages import TIMELINE_KEPT_IN_STATE, CaseState, TimelineEvent

# A write a service refused for good: ActivityError for an activity, the ApplicationError itself
# for a local activity (the SDK resolves those without the ActivityError wrapper).
REFUSED = (ActivityError, ApplicationError)
RECORD_TIMEOUT = timedelta(seconds=30)
CASEWORKER_SLA_DAYS = 5
# Patch: the read-model, letter and schedule hand-overs run as local activities. They are short
# idempotent writes; as local activities they cost the server no task round trips and the history
# one marker instead of three events each.
LOCAL_RECORDS_PATCH = "local-record-activities"
# Patch: the first record of a new case is an ordinary activity, so the first workflow task
# completes at once and operators see CaseStage even while the database is unreachable.
FIRST_RECORD_PATCH = "first-record-as-activity"


class CaseRecorder:
    """The case's records, notices and search attributes (see the module docstring)."""

    def __init__(self, state: CaseState, publish_search_attributes: bool) -> None:
        self._s = state
        self._publish = publish_search_attributes
        self._published: tuple[Any, ...] | None = None
        # A handler changed the case: the read model needs the new timeline entries.
        self.dirty = False
        # Letters and schedule held for the next record write, which takes them all in one local
        # activity (the decision at the end of the assessment: see CaseWorkflow._assess).
        self.defer_writes = False
        self._deferred_notices: list[CaseNotice] = []
        self._deferred_schedule: ScheduleRequest | None = None

    # --- the case calendar ----------------------------------------------------------------
    def clock(self) -> lifecycle.CaseClock:
        s = self._s
        return lifecycle.CaseClock(date.fromisoformat(s.anchor_date), datetime.fromisoformat(s.anchor_instant),
                                   s.seconds_per_day)

    def today(self) -> date:
        return self.clock().today(workflow.now())

    # --- timeline, stage and caseworker tasks ----------------------------------------------
    def log(self, kind: str, text: str) -> None:
        s = self._s
        s.timeline_seq += 1
        s.timeline.append(TimelineEvent(workflow.now().isoformat(), self.today().isoformat(), kind, text,
                                        s.timeline_seq))
        self.dirty = True

    def unsynced(self) -> bool:
        return self._s.timeline_seq > self._s.synced_seq

    async def enter(self, stage: str, sla: date | None = None, sync: bool = True, first_record: bool = False) -> None:
        s = self._s
        s.stage = stage
        if sla is not None or stage == "Closed":
            s.sla_due_on = sla.isoformat() if sla else None
        self.log("stage", f"Case moved to {stage}")
        if sync:
            await self.sync(first_record=first_record)
        else:
            self.publish_attributes()

    def open_task(self, reason: str, due_in_days: int, team: str | None = None) -> None:
        """Puts the case in a caseworker's queue (NeedsCaseworker, AssignedTeam, SlaDueAt)."""
        s = self._s
        s.needs_caseworker = True
        s.caseworker_reason = reason
        if team is not None:
            s.assigned_team = team
        s.sla_due_on = (self.today() + timedelta(days=due_in_days)).isoformat()

    async def route_to_caseworker(self, reason: str) -> None:
        self.open_task(reason, CASEWORKER_SLA_DAYS)
        self.log("caseworker_needed", reason)
        await self.sync()

    def clear_caseworker_if(self, reason_prefix: str) -> None:
        s = self._s
        if s.needs_caseworker and s.caseworker_reason.startswith(reason_prefix):
            s.needs_caseworker = False
            s.caseworker_reason = ""
            self.log("caseworker_cleared", "Information arrived; caseworker task closed")

    # --- search attributes and the read model ----------------------------------------------
    def sla_instant(self) -> datetime | None:
        s = self._s
        return self.clock().instant_of(date.fromisoformat(s.sla_due_on)) if s.sla_due_on else None

    def publish_attributes(self) -> None:
        if not self._publish:
            return
        s = self._s
        sla = self.sla_instant()
        current = (s.stage, s.service_type, s.needs_caseworker, sla, s.arrears_pence, s.assigned_team)
        if current == self._published:
            return
        self._published = current
        updates: list[SearchAttributeUpdate[Any]] = [
            CASE_STAGE.value_set(s.stage), SERVICE_TYPE.value_set(s.service_type),
            NEEDS_CASEWORKER.value_set(s.needs_caseworker),
            SLA_DUE_AT.value_set(sla) if sla else SLA_DUE_AT.value_unset(),
        ]
        # Only once payments reported something (patch "payment-events"): older runs upsert as before.
        if s.arrears_pence is not None:
            updates.append(ARREARS_PENCE.value_set(s.arrears_pence))
        if s.assigned_team:
            updates.append(ASSIGNED_TEAM.value_set(s.assigned_team))
        workflow.upsert_search_attributes(updates)

    async def sync(self, first_record: bool = False) -> None:
        """Writes the case and its new timeline entries to the read model; keeps only the most
        recent timeline entries in the state, so the carried state stays small."""
        s = self._s
        self.dirty = False
        self.publish_attributes()
        snapshot = self.snapshot()
        if self._deferred_notices or self._deferred_schedule is not None:
            writes = DecisionWrites(snapshot, self._deferred_notices, self._deferred_schedule)
            self._deferred_notices, self._deferred_schedule = [], None
            try:
                await workflow.execute_local_activity_method(DecisionActivities.write_decision, writes,
                                                             start_to_close_timeout=RECORD_TIMEOUT)
            except REFUSED:  # a permanent refusal: see write_or_hand_over
                await self.route_to_caseworker("Decision letters or payment schedule refused: check and resend")
                return
        elif first_record and workflow.patched(FIRST_RECORD_PATCH):
            await workflow.execute_activity_method(CaseRecordActivities.sync_case_record, snapshot,
                                                   start_to_close_timeout=RECORD_TIMEOUT)
        else:
            await self.short_activity(CaseRecordActivities.sync_case_record, snapshot)
        s.synced_seq = max(s.synced_seq, max((row.seq for row in snapshot.timeline), default=0))
        while len(s.timeline) > TIMELINE_KEPT_IN_STATE and s.timeline[0].seq <= s.synced_seq:
            s.timeline.pop(0)

    def snapshot(self) -> CaseSnapshot:
        s = self._s
        liability = s.liability
        closure = s.closure
        sla = self.sla_instant()
        return CaseSnapshot(
            case_id=s.case_id, stage=s.stage, service_type=s.service_type, safeguarded=s.safeguarded,
            application_date=s.application_date, case_day=self.today().isoformat(),
            initial_effective_date=s.initial_effective_date, next_review_date=s.next_review_date,
            rate=liability.rate if liability else None,
            weekly_liability_pence=liability.weekly_liability_pence if liability else None,
            paying_parent_pays_pence=liability.paying_parent_pays_pence if liability else None,
            receiving_parent_receives_pence=liability.receiving_parent_receives_pence if liability else None,
            liability_effective_date=liability.effective_date if liability else None,
            rule_set_id=liability.rule_set_id if liability else None,
            needs_caseworker=s.needs_caseworker, caseworker_reason=s.caseworker_reason,
            on_hold=s.on_hold, hold_reason=s.hold_reason, sla_due_at=sla.isoformat() if sla else None,
            closure_reason=closure.reason if closure else None, closed_on=closure.closed_on if closure else None,
            reviews_done=s.reviews_done,
            children=[ChildRow(c.child_id, c.date_of_birth, c.shared_care_nights, c.in_full_time_education,
                               c.stopped_qualifying_on) for c in s.children],
            timeline=[TimelineRow(e.seq, e.at, e.day, e.kind, e.text) for e in s.timeline if e.seq > s.synced_seq],
        )

    # --- letters and schedules -------------------------------------------------------------
    def notice(self, recipient: str, template: str, key: str, facts: dict[str, str],
               explanation: list[str] | None = None) -> CaseNotice:
        return CaseNotice(f"{workflow.info().workflow_id}/{key}/{recipient}", self._s.case_id, recipient,
                          template, facts, explanation or [])

    def to_both_parents(self, template: str, key: str, facts: dict[str, str],
                        explanation: list[str] | None = None) -> list[CaseNotice]:
        s = self._s
        return [self.notice(s.paying_parent_id, template, key, facts, explanation),
                self.notice(s.receiving_parent_id, template, key, facts, explanation)]

    async def send(self, notices: list[CaseNotice]) -> None:
        if self.defer_writes:
            self._deferred_notices += notices
            return
        await self.write_or_hand_over(CaseNoticeActivities.send_case_notices, notices,
                                      "Letters refused by notifications")

    async def write_schedule(self, request: ScheduleRequest) -> None:
        if self.defer_writes:
            self._deferred_schedule = request
            return
        await self.write_or_hand_over(CasePaymentActivities.create_payment_schedule, request,
                                      "Payment schedule refused by payments")

    async def write_or_hand_over(self, activity: Callable[..., Any], argument: object, refusal: str) -> None:
        """Only a permanent refusal fails these writes (transient faults are retried). A letter or
        schedule a service will never accept must not fail the whole case: a caseworker takes it
        over, with the decision kept in the state."""
        try:
            await self.short_activity(activity, argument)
        except REFUSED:
            await self.route_to_caseworker(f"{refusal}: check and resend")

    async def short_activity(self, activity: Callable[..., Any], argument: object) -> None:
        if workflow.patched(LOCAL_RECORDS_PATCH):
            await workflow.execute_local_activity_method(activity, argument, start_to_close_timeout=RECORD_TIMEOUT)
        else:
            await workflow.execute_activity_method(activity, argument, start_to_close_timeout=RECORD_TIMEOUT)
