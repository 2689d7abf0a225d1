"""A case from application to its first annual review and through continue-as-new, on the
time-skipping server with a real PostgreSQL read model; dates and amounts asserted."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta

import psycopg
import pytest

from tests.helpers.replay import CASE_HISTORIES, record_history
from workflows.case import CaseWorkflow
from workflows.case_messages import CaseInput, ChildFacts, NoteRequest

pytestmark = pytest.mark.asyncio(loop_scope="session")

DAY = 86400


def case_input(case_id: str, paying: str, **overrides) -> CaseInput:
    return replace(CaseInput(
        case_id=case_id, application_date="2025-01-10", receiving_parent_id=f"rp-{case_id}",
        paying_parent_id=paying,
        children=[ChildFacts("c-1", "2015-03-01"), ChildFacts("c-2", "2017-06-30")],
        publish_search_attributes=False,
    ), **overrides)


async def test_application_to_first_annual_review_through_continue_as_new(case_env, database_url) -> None:
    client, env, hmrc = case_env["client"], case_env["env"], case_env["hmrc"]
    case_id = f"life-{uuid.uuid4().hex[:8]}"
    paying = f"pp-{case_id}"
    # £26,000 a year at application; £39,000 by the time the first review asks.
    hmrc.incomes[paying] = {"2025-01-01": 2_600_000, "2025-12-01": 3_900_000}
    handle = await case_env["start"](case_input(case_id, paying))
    await env.sleep(timedelta(days=3))
    latest = client.get_workflow_handle(f"case-{case_id}")
    view = await latest.query(CaseWorkflow.state)
    assert view.stage == "Active"
    # Notice posted on the application day; initial effective date 2 days later (reg 12).
    assert view.initial_effective_date == "2025-01-12"
    assert view.next_review_date == "2026-01-12"
    # £26,000 × 7 / 365 = £498.63 a week: basic rate, 2 QC: 16% × £498.63 = £79.78 → £80.
    assert (view.liability.rate, view.liability.weekly_liability_pence) == ("basic", 8000)
    assert view.liability.effective_date == "2025-01-12"
    note = await latest.execute_update(CaseWorkflow.add_note, NoteRequest(text="Called PP", author="cw-1"))
    assert note.entries > 5

    # To the day after the first review: HMRC asked 30 days before, recalculated at the review.
    await env.sleep(timedelta(days=369))
    view = await latest.query(CaseWorkflow.state)
    assert view.reviews_done == 1 and view.runs == 2, "the review continues the case as new"
    assert view.stage == "Active"
    assert view.next_review_date == "2027-01-12"
    # £39,000 × 7 / 365 = £747.95: 16% → £119.67 → £120.
    assert (view.liability.weekly_liability_pence, view.liability.effective_date) == (12000, "2026-01-12")
    assert (paying, "2025-12-13") in hmrc.income_calls
    assert view.initial_effective_date == "2025-01-12", "state carried over exactly"

    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT stage, initial_effective_date::text, next_review_date::text, weekly_liability_pence, "
            "reviews_done FROM case_api.cases WHERE case_id = %s", (case_id,)).fetchone()
        assert row == ("Active", "2025-01-12", "2027-01-12", 12000, 1)
        schedules = conn.execute(
            "SELECT body->>'effective_from', (body->>'instalment_pence')::int, body->>'first_due_date' "
            "FROM case_api.payment_requests WHERE case_id = %s AND kind = 'create_schedule' "
            "ORDER BY body->>'version'", (case_id,)).fetchall()
        # Monthly: £80 × 52 / 12 = £346.66 (remainder on the first), first due within the first month.
        assert schedules == [("2025-01-12", 34666, "2025-02-11"), ("2026-01-12", 52000, "2026-02-11")]
        notices = conn.execute("SELECT template, count(*) FROM case_api.notices WHERE case_id = %s "
                               "GROUP BY template ORDER BY template", (case_id,)).fetchall()
        assert notices == [("annual_review", 2), ("calculation", 2), ("notice_of_application", 1),
                           ("payment_schedule", 4)]
        # Each schedule's letter states the payments as payments charges them: due on the first day
        # of each month from the initial effective date, 52 weeks spread over 12 (£346.66, £346.67, ...).
        letters = conn.execute(
            "SELECT recipient_party_id, body->'facts'->>'next_due_on', body->'facts'->>'next_payment_pence', "
            "body->'facts'->>'instalment_pence' FROM case_api.notices WHERE case_id = %s "
            "AND template = 'payment_schedule' ORDER BY created_at, recipient_party_id", (case_id,)).fetchall()
        assert [row[1:] for row in letters] == [("2025-01-12", "34666", "34667")] * 2 + [
            ("2026-01-12", "52000", "52000")] * 2
        assert {row[0] for row in letters} == {f"pp-{case_id}", f"rp-{case_id}"}  # Direct Pay: both parents
        kinds = [k for (k,) in conn.execute("SELECT kind FROM case_api.timeline WHERE case_id = %s ORDER BY seq",
                                            (case_id,))]
        assert "note" in kinds and kinds.count("calculation") == 2

    first_run = client.get_workflow_handle(handle.id, run_id=handle.first_execution_run_id)
    first_run_history = await first_run.fetch_history()
    assert first_run_history.events[-1].HasField("workflow_execution_continued_as_new_event_attributes")
    assert len(first_run_history.events) < 200, "a year of case life stays under 200 events"
    await record_history(first_run, CASE_HISTORIES, "case_first_year")
    await record_history(latest, CASE_HISTORIES, "case_after_first_review")
