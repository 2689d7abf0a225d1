"""A minimal case workflow hosting workflows.case_changes.CaseChanges for tests: it implements the
three hooks the real CaseWorkflow implements (ledger, case facts, applying a cleared change)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.case_changes import CaseChanges, ChangeCaseFacts, ChangeLedger
    from workflows.change import ChangeOutcome

INPUTS = {
    "paying_parent": {"gross_weekly_income_pence": 40_000, "relevant_other_children": 0},
    "receiving_parents": [{"id": "rp-1", "children": [{"id": "c-1", "shared_care_nights": 0},
                                                      {"id": "c-2", "shared_care_nights": 0}]}],
    "service_type": "collect_and_pay",
}


@dataclass
class HostInput:
    case_id: str
    closed: bool = False


@dataclass
class HostView:
    inputs: dict[str, Any]
    weekly_liability_pence: int | None
    applied: list[int] = field(default_factory=list)
    closed: bool = False


@workflow.defn(name="ChangeHostCaseWorkflow", sandboxed=False)
class HostCaseWorkflow(CaseChanges):
    @workflow.init
    def __init__(self, data: HostInput) -> None:
        self._id = data.case_id
        self._ledger = ChangeLedger()
        self._view = HostView(inputs=INPUTS, weekly_liability_pence=None, closed=data.closed)

    @workflow.run
    async def run(self, data: HostInput) -> HostView:
        # A closed stand-in keeps running (as a real closed case's workflow answers until it ends),
        # so that a change reported on it is refused by the validator, not by a finished workflow.
        await workflow.wait_condition(lambda: len(self._ledger.cleared) >= 2)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._view

    def _change_ledger(self) -> ChangeLedger:
        return self._ledger

    def _change_case_facts(self) -> ChangeCaseFacts:
        return ChangeCaseFacts(case_id=self._id, inputs=self._view.inputs, today=date(2025, 6, 1),
                               closed=self._view.closed, publish_search_attributes=False)

    async def _change_applied(self, outcome: ChangeOutcome, inputs: dict[str, Any]) -> None:
        self._view.inputs = inputs
        self._view.applied.append(outcome.n)
        if outcome.weekly_liability_pence is not None:
            self._view.weekly_liability_pence = outcome.weekly_liability_pence

    @workflow.query
    def view(self) -> HostView:
        return self._view




async def terminate_running(env: Any, workflow_ids: list[str]) -> None:
    """Ends the stand-in cases a test left running (and their open changes): a workflow task
    left without a worker would stop the time-skipping server from skipping time for later tests."""
    from temporalio.client import WorkflowExecutionStatus

    for workflow_id in workflow_ids:
        handle = env.client.get_workflow_handle(workflow_id)
        for target in [handle] + [env.client.get_workflow_handle(f"{workflow_id}/change-{n}") for n in (1, 2, 3)]:
            try:
                if (await target.describe()).status == WorkflowExecutionStatus.RUNNING:
                    await target.terminate("test finished")
            except Exception:  # never started: nothing to end
                pass
    workflow_ids.clear()
