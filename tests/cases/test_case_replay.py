"""Recorded histories of CaseWorkflow replay cleanly against the current code.

The histories under histories/ were recorded from the lifecycle tests (CMS_RECORD_HISTORIES=1,
then renamed with the code version's prefix: v1_ before the "local-record-activities" patch, v2_
after it, v3_ after "parallel-address-and-hmrc", v4_ after "first-record-as-activity", v5_ with
"payment-events" (a case told of missed and part payments), v6_ after "one-decision-write", v7_
with "collect-and-pay-switch": a Direct Pay case moved to Collect & Pay by two missed payments, and
a safeguarding flag followed by a caseworker's move), v8_ with "review-income-on-review-date", v9_
with "payment-schedule-letter" (a payment schedule letter with every schedule) and the liability
history kept in the state.
A change to the workflow that would break running cases fails here: such changes go behind
`workflow.patched(...)`; then record new histories alongside the old ones (never replace them
while cases started on the old code may still be running)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

import activities.case_records  # noqa: F401  (loads the rule sets outside the sandbox, as the worker does)
from workflows.case import CaseWorkflow
from workflows.converter import STRICT_DATA_CONVERTER

pytestmark = pytest.mark.asyncio(loop_scope="session")

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


async def test_histories_are_recorded() -> None:
    names = {path.stem for path in HISTORIES}
    # v1: before the local-record-activities patch; v2: with it; v3: with parallel-address-and-hmrc;
    # v4: with first-record-as-activity; v6: with one-decision-write. Every version must keep replaying while cases started on
    # it may still run.
    for version in ("v1", "v2", "v3", "v4", "v6"):
        assert {f"{version}_case_first_year", f"{version}_case_after_first_review", f"{version}_case_closed_at_20"} <= names
    # v7: with collect-and-pay-switch (the automatic move, and flag_safeguarding then a caseworker's move).
    assert {"v5_case_payment_events", "v7_case_direct_pay_switch", "v7_case_flag_safeguarding"} <= names
    # v9: with payment-schedule-letter, every lifecycle scenario again.
    assert {f"v9_case_{name}" for name in ("first_year", "after_first_review", "closed_at_20", "default_decision",
                                           "hold_and_close", "payment_events", "direct_pay_switch",
                                           "flag_safeguarding", "review_window_child_stop")} <= names


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
async def test_recorded_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(f"replay-{path.stem}", json.loads(path.read_text()))
    result = await Replayer(workflows=[CaseWorkflow], data_converter=STRICT_DATA_CONVERTER).replay_workflow(
        history, raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name}: {result.replay_failure}"
