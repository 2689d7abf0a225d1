"""Recorded CaseWorkflow histories with changes of circumstances replay cleanly against the current
code (workflows.case with the workflows.case_changes mixin).

v1_*: recorded with the patches "change-folds-into-review" and "change-backdated-arrears" (by
CMS_RECORD_HISTORIES=1 from test_change_annual_review.py and test_change_arrears.py): a change
dated before and after the review date during an annual review (the run that continued as new),
an income change taken into the review, a change applied in the run after the review, and a
backdated income increase on Collect & Pay and on Direct Pay. A change to the case or the mixin
that would break a running case fails here: put it behind `workflow.patched(...)` and record new
histories alongside these.

v2_*: also with "change-out-of-order-dates" (test_change_clearance_order.py): two changes open at
once, the later-dated one clearing first, the earlier one then recalculated from its own date on
the facts of that date and again from the later change's date; and the same with the earlier-dated
change reported only after the later one cleared (the ledger kept, not started again). With
"review-income-on-review-date" (test_change_review_window.py): an income change reported in the
review window, decided on the HMRC figure the review takes.

v3_*: also with "change-out-of-order-arrears" (test_change_clearance_order.py): the two v2
out-of-order scenarios, the earlier-dated change now stating what it adds for payments already
due from the whole liability history; and with "change-out-of-order-default-rate"
(test_change_order_default.py): a case on a default decision whose income came with a change,
the earlier-dated change's period recalculated as a default decision.

v4_*: the three v3 scenarios again with "payment-schedule-letter" (a payment schedule letter with
each schedule version, none for a version superseded at once)."""

from __future__ import annotations

import json

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

import activities.case_records  # noqa: F401  (loads the rule sets outside the sandbox, as the worker does)
from tests.changes.case_histories import HISTORIES
from workflows.case import CaseWorkflow
from workflows.converter import STRICT_DATA_CONVERTER

pytestmark = pytest.mark.asyncio(loop_scope="session")

RECORDED = sorted(HISTORIES.glob("*.json"))
SCENARIOS = {"change_before_review_date", "change_after_review_date", "income_change_in_review",
             "change_applied_after_the_review_run", "backdated_increase_collect_and_pay",
             "backdated_increase_direct_pay"}


async def test_every_scenario_is_recorded() -> None:
    assert {path.stem for path in RECORDED} >= {f"v1_{name}" for name in SCENARIOS} | {
        "v2_changes_cleared_out_of_date_order", "v2_change_dated_before_one_already_cleared",
        "v2_income_change_in_review_window", "v3_changes_cleared_out_of_date_order",
        "v3_change_dated_before_one_already_cleared", "v3_default_decision_change_dated_before_the_income",
        "v4_changes_cleared_out_of_date_order", "v4_change_dated_before_one_already_cleared",
        "v4_default_decision_change_dated_before_the_income"}


@pytest.mark.parametrize("path", RECORDED, ids=lambda path: path.stem)
async def test_recorded_history_replays(path) -> None:
    history = WorkflowHistory.from_json(f"case-{path.stem}", json.loads(path.read_text()))
    replayer = Replayer(workflows=[CaseWorkflow], data_converter=STRICT_DATA_CONVERTER)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure
