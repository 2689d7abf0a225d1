"""The case side of changes (workflows.case_changes): report_change update with its validator,
idempotency, child workflows and the change_cleared signal applying changes in effective-date
order. Hosted here by a minimal case workflow that implements the three hooks the real
CaseWorkflow implements."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from cms.worker_catalog import change_activities
from tests.changes.host_case import HostCaseWorkflow, HostInput, terminate_running
from tests.helpers.failures import rejection_type
from workflows.change import ChangeWorkflow, ReportedChange, ReviewDecision

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture
async def host(time_skipping_env: WorkflowEnvironment, change_pool):
    queue = f"case-changes-{uuid.uuid4().hex[:6]}"
    async with Worker(time_skipping_env.client, task_queue=queue, workflows=[HostCaseWorkflow, ChangeWorkflow],
                      activities=change_activities(change_pool)):
        yield queue
        await terminate_running(time_skipping_env, STARTED)


STARTED: list[str] = []


async def start_case(env: WorkflowEnvironment, queue: str, closed: bool = False):
    case_id = f"cc-{uuid.uuid4().hex[:8]}"
    STARTED.append(f"case-{case_id}")
    return await env.client.start_workflow(HostCaseWorkflow.run, HostInput(case_id, closed),
                                           id=f"case-{case_id}", task_queue=queue)


def change(kind: str, details: dict, effective: str, key: str = "", **extra) -> ReportedChange:
    return ReportedChange(kind=kind, reported_date="2025-06-01", effective_date=effective, details=details,
                          idempotency_key=key, **extra)


async def test_two_changes_applied_in_effective_date_order_and_duplicates_return_the_first(
        time_skipping_env, host) -> None:
    case = await start_case(time_skipping_env, host)
    later = change("shared_care_nights", {"child_id": "c-1", "nights": 120}, "2025-05-20", key="k-later")
    # Same child, earlier date: whichever clears last, the later effective date must win.
    earlier = change("shared_care_nights", {"child_id": "c-1", "nights": 60}, "2025-05-10", key="k-earlier")
    with time_skipping_env.auto_time_skipping_disabled():
        first, second = await asyncio.gather(case.execute_update(HostCaseWorkflow.report_change, later),
                                             case.execute_update(HostCaseWorkflow.report_change, earlier))
        again = await case.execute_update(HostCaseWorkflow.report_change, later)
        view = await case.result()
    assert {first.change_no, second.change_no} == {1, 2}
    assert first.workflow_id == f"{case.id}/change-{first.change_no}" and not first.needs_caseworker
    assert again.already_existed and again.change_no == first.change_no
    children = view.inputs["receiving_parents"][0]["children"]
    assert children[0] == {"id": "c-1", "shared_care_nights": 120}
    assert sorted(view.applied) == [1, 2]


async def test_bad_changes_are_rejected_and_nothing_is_recorded(time_skipping_env, host) -> None:
    case = await start_case(time_skipping_env, host)
    for bad, error_type in ((change("lottery_win", {}, "2025-05-01"), "InvalidArgument"),
                            (change("shared_care_nights", {"child_id": "c-9", "nights": 60}, "2025-05-01"),
                             "InvalidArgument"),
                            (change("close_request", {}, "2026-01-01"), "InvalidArgument")):
        with pytest.raises(WorkflowUpdateFailedError) as failure:
            await case.execute_update(HostCaseWorkflow.report_change, bad)
        assert rejection_type(failure.value) == error_type
    assert await case.query(HostCaseWorkflow.open_changes) == []
    closed = await start_case(time_skipping_env, host, closed=True)
    with pytest.raises(WorkflowUpdateFailedError) as failure:
        await closed.execute_update(HostCaseWorkflow.report_change,
                                    change("address", {"party": "paying_parent"}, "2025-05-01"))
    assert rejection_type(failure.value) == "FailedPrecondition"


async def test_reviewed_change_reaches_the_case_after_the_caseworker_answers(time_skipping_env, host) -> None:
    case = await start_case(time_skipping_env, host)
    disputed = change("shared_care_nights", {"child_id": "c-1", "nights": 60}, "2025-05-01", evidence_disputed=True)
    receipt = await case.execute_update(HostCaseWorkflow.report_change, disputed)
    assert receipt.needs_caseworker and receipt.assigned_team == "changes-disputes"
    child = time_skipping_env.client.get_workflow_handle(receipt.workflow_id)
    for _ in range(200):
        if (await child.query(ChangeWorkflow.status)).stage == "awaiting_review":
            break
        await asyncio.sleep(0.05)
    with pytest.raises(WorkflowUpdateFailedError) as failure:
        await child.execute_update(ChangeWorkflow.review_decision, ReviewDecision(outcome="apply", reviewer="cw"))
    assert rejection_type(failure.value) == "InvalidArgument" and "reason" in str(failure.value.cause)
    answer = await child.execute_update(ChangeWorkflow.review_decision,
                                        ReviewDecision(outcome="apply", reason="diary checked", reviewer="cw-3"))
    assert answer.outcome == "recalculated"
    for _ in range(200):
        if (await case.query(HostCaseWorkflow.view)).applied:
            break
        await asyncio.sleep(0.05)
    view = await case.query(HostCaseWorkflow.view)
    assert view.inputs["receiving_parents"][0]["children"][0]["shared_care_nights"] == 60
    assert view.weekly_liability_pence is not None
