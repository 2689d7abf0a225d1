"""Demo cases for `make run`, so the Temporal UI is not empty and trainers have cases to walk."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy

from cms.config import TASK_QUEUE_CASES, Settings
from workflows.case import CaseInput, CaseWorkflow

DEMO_CASE_IDS = ("demo-0001", "demo-0002", "demo-0003")


async def seed_demo_cases(client: Client, settings: Settings) -> int:
    for case_id in DEMO_CASE_IDS:
        await client.start_workflow(
            CaseWorkflow.run, CaseInput(case_id=case_id), id=f"case-{case_id}", task_queue=TASK_QUEUE_CASES,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
    return len(DEMO_CASE_IDS)
