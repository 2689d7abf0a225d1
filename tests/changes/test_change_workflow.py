"""ChangeWorkflow on the time-skipping server with real PostgreSQL: automatic clearance, the
caseworker review round trip, two concurrent changes (escalation and breach: test_change_escalation)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date

import pytest
from psycopg_pool import AsyncConnectionPool
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from domain.changes import CaseContext, apply_in_order, parse_change
from services.case_api import repository as case_api
from tests.helpers.replay import CHANGE_HISTORIES, record_history
from workflows.change import (
    ChangeInput,
    ChangeOutcome,
    ChangeWorkflow,
    ReportedChange,
    ReviewDecision,
    change_workflow_id,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

INPUTS = {
    "paying_parent": {"gross_weekly_income_pence": 40_000, "relevant_other_children": 0},
    "receiving_parents": [{"id": "rp-1", "children": [{"id": "c-1", "shared_care_nights": 51}]}],
    "service_type": "collect_and_pay",
}


def reported(kind: str, details: dict, effective: str = "2025-05-01", **extra) -> ReportedChange:
    return ReportedChange(kind=kind, reported_date="2025-06-01", effective_date=effective, details=details, **extra)


async def start(env: WorkflowEnvironment, queue: str, change: ReportedChange, n: int = 1,
                safeguarded: bool = False, case_id: str | None = None) -> WorkflowHandle:
    case_id = case_id or f"ch-{uuid.uuid4().hex[:8]}"
    return await env.client.start_workflow(
        ChangeWorkflow.run,
        ChangeInput(case_id=case_id, n=n, change=change, current_inputs=INPUTS, safeguarded=safeguarded,
                    publish_search_attributes=False, today="2025-06-01"),
        id=change_workflow_id(case_id, n), task_queue=queue,
    )


async def wait_for_stage(handle: WorkflowHandle, stage: str) -> None:
    for _ in range(200):
        if (await handle.query(ChangeWorkflow.status)).stage == stage:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"change never reached {stage}")


async def record(pool: AsyncConnectionPool, case_id: str, n: int = 1) -> dict:
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT status, outcome, on_time, escalated_at IS NOT NULL, breached_at IS NOT NULL, assigned_team, "
            "weekly_liability_pence, adjustment_pence, payment_change, notice, reviewer "
            "FROM case_api.change_records WHERE case_id = %s AND change_no = %s", (case_id, n))
        row = await cursor.fetchone()
    assert row is not None, f"no record of change {n} on case {case_id}"
    keys = ("status", "outcome", "on_time", "escalated", "breached", "team", "weekly", "adjustment", "payment",
            "notice", "reviewer")
    return dict(zip(keys, row))


async def test_automatic_change_clears_on_time_with_schedule_and_notice(
        time_skipping_env, change_queue, change_pool) -> None:
    handle = await start(time_skipping_env, change_queue,
                         reported("paying_parent_income", {"weekly_income_pence": 60_000, "duty_to_report": True}))
    outcome: ChangeOutcome = await handle.result()
    assert (outcome.outcome, outcome.effective_date, outcome.on_time) == ("recalculated", "2025-05-01", True)
    assert outcome.liability is not None
    assert outcome.weekly_liability_pence == outcome.liability["weekly_liability_pence"] > 0
    assert outcome.adjustment_pence > 0  # a month of the increase, owed as arrears
    row = await record(change_pool, outcome.case_id)
    assert (row["status"], row["outcome"], row["on_time"]) == ("cleared", "recalculated", True)
    assert row["payment"]["adjustment_pence"] == outcome.adjustment_pence == row["adjustment"]
    assert row["notice"]["explanation"] and row["notice"]["recipients"] == ["paying_parent", "receiving_parent"]
    await record_history(handle, CHANGE_HISTORIES, "automatic_income")


async def test_change_that_does_not_count_explains_why(time_skipping_env, change_queue, change_pool) -> None:
    handle = await start(time_skipping_env, change_queue, reported("paying_parent_income", {"weekly_income_pence": 49_600}))
    outcome = await handle.result()
    assert outcome.outcome == "no_change" and outcome.new_inputs == INPUTS and outcome.liability is None
    row = await record(change_pool, outcome.case_id)
    assert row["payment"] is None and "24%" in row["notice"]["reason"]
    await record_history(handle, CHANGE_HISTORIES, "not_counted")


async def test_caseworker_review_round_trip(time_skipping_env, change_queue, change_pool) -> None:
    handle = await start(time_skipping_env, change_queue,
                         reported("shared_care_nights", {"child_id": "c-1", "nights": 120}, evidence_disputed=True))
    await wait_for_stage(handle, "awaiting_review")
    status = await handle.query(ChangeWorkflow.status)
    assert status.needs_caseworker and status.assigned_team == "changes-disputes"
    # Incomplete answers are rejected by the validator and change nothing.
    for bad in (ReviewDecision(outcome="apply", reviewer="cw-1"),
                ReviewDecision(outcome="maybe", reason="x", reviewer="cw-1"),
                ReviewDecision(outcome="apply", reason="checked", reviewer=""),
                ReviewDecision(outcome="apply", reason="checked", reviewer="cw-1",
                               corrected_details={"child_id": "c-1", "nights": 999})):
        with pytest.raises(WorkflowUpdateFailedError):
            await handle.execute_update(ChangeWorkflow.review_decision, bad)
    assert (await handle.query(ChangeWorkflow.status)).stage == "awaiting_review"
    answer = await handle.execute_update(
        ChangeWorkflow.review_decision,
        ReviewDecision(outcome="apply", reason="school letter confirms 104 nights", reviewer="cw-7",
                       corrected_details={"child_id": "c-1", "nights": 104}))
    assert answer.outcome == "recalculated" and "104 nights" in answer.reason
    outcome = await handle.result()
    assert outcome.new_inputs["receiving_parents"][0]["children"][0]["shared_care_nights"] == 104
    assert outcome.reviewed_by == "cw-7" and outcome.on_time
    assert (await record(change_pool, outcome.case_id))["reviewer"] == "cw-7"
    with pytest.raises((WorkflowUpdateFailedError, RPCError)):
        await handle.execute_update(ChangeWorkflow.review_decision,
                                    ReviewDecision(outcome="reject", reason="again", reviewer="cw-7"))
    await record_history(handle, CHANGE_HISTORIES, "reviewed")


async def test_rejected_change_leaves_the_calculation(time_skipping_env, change_queue, change_pool) -> None:
    handle = await start(time_skipping_env, change_queue, reported("address", {"party": "receiving_parent"}),
                         safeguarded=True)
    await wait_for_stage(handle, "awaiting_review")
    assert (await handle.query(ChangeWorkflow.status)).assigned_team == "changes-safeguarding"
    answer = await handle.execute_update(ChangeWorkflow.review_decision,
                                         ReviewDecision(outcome="reject", reason="duplicate report", reviewer="cw-2"))
    assert answer.outcome == "rejected"
    assert (await handle.result()).new_inputs == INPUTS


async def test_two_concurrent_changes_to_one_case(time_skipping_env, change_queue, change_pool) -> None:
    case_id = f"ch-{uuid.uuid4().hex[:8]}"
    later = reported("shared_care_nights", {"child_id": "c-1", "nights": 110}, effective="2025-05-20")
    earlier = reported("flat_rate_benefit_started", {}, effective="2025-05-10")
    first, second = await asyncio.gather(start(time_skipping_env, change_queue, later, 1, case_id=case_id),
                                         start(time_skipping_env, change_queue, earlier, 2, case_id=case_id))
    # Two result waits at once let the test server skip time over an in-flight workflow task;
    # these changes need no timers, so wait in real time.
    with time_skipping_env.auto_time_skipping_disabled():
        outcomes = await asyncio.gather(first.result(), second.result())
    assert {o.outcome for o in outcomes} == {"recalculated"}
    # The case applies them in effective-date order onto its inputs: the benefit first.
    changes = [(o.n, parse_change(c.as_raw(), date(2025, 6, 1))) for o, c in zip(outcomes, (later, earlier))]
    final, decisions = apply_in_order(INPUTS, changes, CaseContext())
    assert [n for n, _ in decisions] == [2, 1]
    assert final["paying_parent"]["flat_rate_benefit"] and final["receiving_parents"][0]["children"][0][
        "shared_care_nights"] == 110
    async with case_api.read_snapshot(change_pool) as conn:
        report = await case_api.load_sla_report(conn)
    assert report.cleared_last_4_weeks >= 2
