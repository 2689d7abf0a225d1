"""Recorded ChangeWorkflow histories replay cleanly against the current code.

v1_*: recorded before the one-write patch (notice, payment instruction and clearance written by
two activities and a local activity); v2_*: after it. Recorded with a time-skipping server and
real PostgreSQL (automatic change, an income change under 25%, a caseworker review on day 3, an
escalation and breach answered on day 30). A change to ChangeWorkflow that would break changes
already open fails here: put it behind `workflow.patched(...)` and record new histories."""

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from workflows.change import ChangeWorkflow
from workflows.converter import STRICT_DATA_CONVERTER

pytestmark = pytest.mark.asyncio(loop_scope="session")

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))
SCENARIOS = {"automatic_income", "not_counted", "reviewed", "escalated_breached"}


async def test_every_scenario_is_recorded_before_and_after_the_patch() -> None:
    assert {p.stem for p in HISTORIES} >= {f"{v}_{s}" for v in ("v1", "v2") for s in SCENARIOS}


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
async def test_recorded_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(f"replay-{path.stem}", json.loads(path.read_text()))
    replayer = Replayer(workflows=[ChangeWorkflow], data_converter=STRICT_DATA_CONVERTER)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"
