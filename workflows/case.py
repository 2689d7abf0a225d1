"""CaseWorkflow: one long-lived workflow per case (`case-<case_id>`).

Foundation version: records the application and moves the case into assessment, answering
queries for its state and accepting caseworker notes. The full lifecycle (assessment, service
type, schedule, annual review, closure) builds on this.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.case_records import CaseStageRecord, record_stage
    from cms.search_attributes import CASE_STAGE, NEEDS_CASEWORKER, SERVICE_TYPE


@dataclass
class CaseInput:
    case_id: str
    service_type: str = "direct_pay"
    # False only on Temporal's time-skipping test server, which cannot register custom search
    # attributes (an unregistered one fails every workflow task). Everywhere else: True.
    publish_search_attributes: bool = True


@dataclass
class TimelineEvent:
    at: str
    kind: str
    text: str


@dataclass
class CaseState:
    case_id: str
    stage: str = "Application"
    service_type: str = "direct_pay"
    timeline: list[TimelineEvent] = field(default_factory=list)
    closed: bool = False


@dataclass
class NoteRequest:
    text: str
    author: str


@dataclass
class NoteResult:
    entries: int


@workflow.defn(name="CaseWorkflow")
class CaseWorkflow:
    @workflow.init
    def __init__(self, case: CaseInput) -> None:
        self._state = CaseState(case_id=case.case_id, service_type=case.service_type)
        self._publish = case.publish_search_attributes

    @workflow.run
    async def run(self, case: CaseInput) -> CaseState:
        self._log("application_received", "Application received")
        await self._enter_stage("Assessment")
        await workflow.wait_condition(lambda: self._state.closed)
        await self._enter_stage("Closed")
        return self._state

    async def _enter_stage(self, stage: str) -> None:
        self._state.stage = stage
        if self._publish:
            workflow.upsert_search_attributes(
                [CASE_STAGE.value_set(stage), SERVICE_TYPE.value_set(self._state.service_type),
                 NEEDS_CASEWORKER.value_set(False)]
            )
        await workflow.execute_activity(
            record_stage,
            CaseStageRecord(case_id=self._state.case_id, stage=stage),
            start_to_close_timeout=timedelta(seconds=30),
        )
        self._log("stage", f"Case moved to {stage}")

    def _log(self, kind: str, text: str) -> None:
        self._state.timeline.append(TimelineEvent(workflow.now().isoformat(), kind, text))

    @workflow.query
    def state(self) -> CaseState:
        return self._state

    @workflow.update
    def add_note(self, note: NoteRequest) -> NoteResult:
        self._log("note", f"Note by {note.author}: {note.text}")
        return NoteResult(entries=len(self._state.timeline))

    @add_note.validator
    def _validate_note(self, note: NoteRequest) -> None:
        if not note.text.strip() or not note.author.strip():
            raise ValueError("a note needs text and an author")
