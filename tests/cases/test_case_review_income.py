"""The HMRC figure asked for 30 days before an annual review counts from the review date (patch
"review-income-on-review-date"): a child who stops qualifying inside that window is recalculated
on the figure in force then, and the review on the new figure, without that child.

The case: application 2025-01-10, initial effective date 2025-01-12, first review 2026-01-12 (HMRC
asked on 2025-12-13). HMRC: £26,000 a year, £39,000 from December 2025. Child c-2, in full-time education, turns 20
on 2026-01-03, nine days before the review: she qualifies to the day before and stops qualifying
from that day."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import psycopg
import pytest

from domain.calculation import calculate, parse_request
from tests.helpers.replay import CASE_HISTORIES, record_history
from workflows.case import CaseWorkflow
from workflows.case_messages import CaseInput, ChildFacts

pytestmark = pytest.mark.asyncio(loop_scope="session")

OLD_HMRC, NEW_HMRC = 2_600_000, 3_900_000
HISTORY = "case_review_window_child_stop"
CLOSING_HISTORY = "case_review_window_last_child_closes"


def weekly(children: list[str], hmrc_annual: int, on: str) -> int:
    request = {"paying_parent": {"relevant_other_children": 0, "flat_rate_benefit": False,
                                 "income": {"hmrc_annual_pence": hmrc_annual}},
               "receiving_parents": [{"id": "rp-1", "children": [{"id": c, "shared_care_nights": 0}
                                                                 for c in children]}],
               "service_type": "direct_pay"}
    return calculate(parse_request(request), effective_date=date.fromisoformat(on)).weekly_liability_pence


async def test_child_stopping_in_the_review_window_uses_the_old_figure_and_the_review_the_new(
        case_env, database_url) -> None:
    client, env, hmrc = case_env["client"], case_env["env"], case_env["hmrc"]
    case_id = f"rvw-{uuid.uuid4().hex[:8]}"
    paying = f"pp-{case_id}"
    hmrc.incomes[paying] = {"2025-01-01": OLD_HMRC, "2025-12-01": NEW_HMRC}
    handle = await case_env["start"](CaseInput(
        case_id=case_id, application_date="2025-01-10", receiving_parent_id="rp-1", paying_parent_id=paying,
        children=[ChildFacts("c-1", "2015-03-01"), ChildFacts("c-2", "2006-01-03", in_full_time_education=True), ChildFacts("c-3", "2017-06-30")],
        publish_search_attributes=False))
    # To the day after the review (and the continue-as-new after it).
    await env.sleep(timedelta(days=(date(2026, 1, 13) - date(2025, 1, 10)).days))
    latest = client.get_workflow_handle(f"case-{case_id}")
    view = await latest.query(CaseWorkflow.state)
    assert (view.reviews_done, view.stage) == (1, "Active")
    assert (paying, "2025-12-13") in hmrc.income_calls, "HMRC asked 30 days before the review"

    two = ["c-1", "c-3"]
    expected = [("2025-01-12", weekly(["c-1", "c-2", "c-3"], OLD_HMRC, "2025-01-12")),
                ("2026-01-03", weekly(two, OLD_HMRC, "2026-01-03")),   # in the window: last year's figure
                ("2026-01-12", weekly(two, NEW_HMRC, "2026-01-12"))]   # the review: the new one
    # £498.63 a week: 19% for three children £94.74 → £95, 16% for two £79.78 → £80; £747.95: 16% → £120.
    assert [weekly_pence for _, weekly_pence in expected] == [9500, 8000, 12000]
    with psycopg.connect(database_url) as conn:
        versions = conn.execute(
            "SELECT body->>'effective_from', (body->>'weekly_liability_pence')::int FROM case_api.payment_requests "
            "WHERE case_id = %s AND kind = 'create_schedule' ORDER BY (body->>'version')::int", (case_id,)).fetchall()
    assert versions == expected
    assert (view.liability.effective_date, view.liability.weekly_liability_pence) == expected[-1]
    await record_history(client.get_workflow_handle(handle.id, run_id=handle.first_execution_run_id),
                         CASE_HISTORIES, HISTORY)


async def test_last_child_stopping_in_the_review_window_closes_the_case_without_a_review(case_env, database_url) -> None:
    env, hmrc = case_env["env"], case_env["hmrc"]
    case_id = f"rvc-{uuid.uuid4().hex[:8]}"
    paying = f"pp-{case_id}"
    hmrc.incomes[paying] = {"2025-01-01": OLD_HMRC, "2025-12-01": NEW_HMRC}
    handle = await case_env["start"](CaseInput(
        case_id=case_id, application_date="2025-01-10", receiving_parent_id="rp-1", paying_parent_id=paying,
        children=[ChildFacts("c-2", "2006-01-03", in_full_time_education=True)], publish_search_attributes=False))
    await env.sleep(timedelta(days=(date(2026, 1, 13) - date(2025, 1, 10)).days))
    result = await handle.result()
    assert (result.stage, result.closure.reason, result.closure.closed_on) == ("Closed", "no_qualifying_child",
                                                                               "2026-01-03")
    with psycopg.connect(database_url) as conn:
        versions = conn.execute(
            "SELECT body->>'effective_from' FROM case_api.payment_requests WHERE case_id = %s "
            "AND kind = 'create_schedule' ORDER BY (body->>'version')::int", (case_id,)).fetchall()
    assert versions == [("2025-01-12",)], "no review recalculation for a case that closed before its review"
    await record_history(handle, CASE_HISTORIES, CLOSING_HISTORY)
