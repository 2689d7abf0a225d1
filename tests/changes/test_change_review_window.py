"""The HMRC figure asked for 30 days before an annual review counts from the review date (patch
"review-income-on-review-date"), and changes reported in the review window are decided as part
of the review, on that figure: income meets the 25% test against it (patch "review-window-income-test";
test_income_date_rules_on_case.py has one that falls short). The case and HMRC of test_change_annual_review.py: review
2026-01-12, HMRC asked 2025-12-13, £26,000 a year (£498.63 a week) then £39,000 (£747.95)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date

import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from tests.changes.case_worker import case_worker
from tests.changes.test_change_annual_review import (
    NEW_HMRC,
    Hmrc,
    after_review,
    case_in_review,
    until_history,
    weekly,
)
from tests.helpers.replay import CASE_CHANGE_HISTORIES, record_history
from workflows.case import CaseWorkflow
from workflows.change import ChangeWorkflow, ReportedChange

pytestmark = pytest.mark.asyncio(loop_scope="session")

HISTORY = "income_change_in_review_window"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def window_client(change_pool) -> AsyncIterator[tuple[WorkflowEnvironment, Client, str]]:
    async with case_worker(change_pool, Hmrc(), "case-review-window") as running:
        yield running


async def test_the_new_figure_waits_for_the_review_date_and_an_income_change_is_judged_against_it(
        window_client, change_pool) -> None:
    env, client, queue = window_client
    case, case_id = await case_in_review(env, client, queue)
    view = await case.query(CaseWorkflow.state)
    # Asked on 2025-12-13 and answered; the liability in force is still last year's.
    assert (view.liability.effective_date, view.liability.gross_weekly_income_pence) == ("2025-01-12", 49_863)
    with env.auto_time_skipping_disabled():
        receipt = await case.execute_update(CaseWorkflow.report_change, ReportedChange(
            kind="paying_parent_income", effective_date="2025-12-15", details={"weekly_income_pence": 100_000}))
        outcome = await client.get_workflow_handle_for(ChangeWorkflow.run, receipt.workflow_id).result()
    # 33% above the figure the review takes: 25% or more, so it is taken in (reg 34(2)(a)).
    assert (outcome.outcome, outcome.effective_date) == ("recalculated", "2026-01-12")
    assert "from £747.95 to £1,000.00 a week" in outcome.reason and "annual review" in outcome.reason
    await after_review(env, case, on=date(2026, 1, 14))
    expected = [("2026-01-12", weekly(stated_weekly=100_000))]
    assert expected[0][1] != weekly(hmrc_annual=NEW_HMRC)
    assert await until_history(change_pool, case_id, expected) == expected
    review_run = client.get_workflow_handle(case.id, run_id=case.result_run_id)
    await record_history(review_run, CASE_CHANGE_HISTORIES, HISTORY)

