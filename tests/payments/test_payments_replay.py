"""Recorded histories of the payment workflows replay cleanly against the current code.

Recorded with CMS_RECORD_HISTORIES=1 from test_payments_workflows.py (prefix v1_) and
test_disbursement_on_arrival.py (v2_; v3_ since the patch 'disbursement-due-from-arrival'). A
change that would break running workflows fails here: put it behind `workflow.patched(...)` and
record new histories alongside the old ones."""

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from workflows.payments import ALL_WORKFLOWS

pytestmark = pytest.mark.asyncio(loop_scope="session")

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


async def test_histories_are_recorded() -> None:
    assert {p.stem for p in HISTORIES} >= {"v1_collection_missed", "v1_collection_paid", "v1_disbursement",
                                           "v1_direct_pay_missed", "v2_disbursement_on_arrival",
                                           "v2_disbursement_overdue", "v3_disbursement_on_arrival",
                                           "v3_disbursement_overdue"}


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
async def test_recorded_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(f"replay-{path.stem}", json.loads(path.read_text()))
    result = await Replayer(workflows=ALL_WORKFLOWS).replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"
