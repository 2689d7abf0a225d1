"""CaseService change RPCs (services.case_api.changes) over real gRPC, with the case workflow
stand-in on the time-skipping server and PostgreSQL, and the `cmsctl change`/`sla` commands."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import grpc
import pytest
import typer
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker
from typer.testing import CliRunner

from cms.cli import changes as change_cli
from cms.config import load_settings
from cms.infra.processes import free_port
from cms.worker_catalog import change_activities
from cms_proto.case.v1 import case_pb2, case_pb2_grpc
from services.case_api.changes import ChangeRpcs
from services.common.errors import field_violations_of
from services.common.server import serve
from tests.changes.host_case import HostCaseWorkflow, HostInput, terminate_running
from tests.helpers.auth import caller_channel
from workflows.change import ChangeWorkflow

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture(scope="module")
async def api(time_skipping_env: WorkflowEnvironment, database_url: str, change_pool, monkeypatch_module):
    queue = f"change-api-{uuid.uuid4().hex[:6]}"

    class Service(ChangeRpcs, case_pb2_grpc.CaseServiceServicer):
        def __init__(self, pool) -> None:
            self._pool = pool

        async def _temporal_client(self):
            return time_skipping_env.client

    async def register(server, pool, settings):
        # Only the change RPCs are served here: the generated servicer answers UNIMPLEMENTED for the
        # rest at run time, though its stub declares them abstract.
        case_pb2_grpc.add_CaseServiceServicer_to_server(Service(pool), server)  # type: ignore[abstract]

    settings = load_settings()
    settings = replace(settings, database_url=database_url, ports={**settings.ports, "case_api": free_port()})
    monkeypatch_module.setenv("CASE_API_PORT", str(settings.port_of("case_api")))
    stop = asyncio.Event()
    task = asyncio.create_task(serve("case_api", register, settings, stop))
    async with Worker(time_skipping_env.client, task_queue=queue, workflows=[HostCaseWorkflow, ChangeWorkflow],
                      activities=change_activities(change_pool)):
        async with caller_channel(settings.address_of("case_api")) as channel:
            stub = case_pb2_grpc.CaseServiceStub(channel)
            for _ in range(100):
                try:
                    await stub.GetSlaReport(case_pb2.GetSlaReportRequest(), timeout=2)
                    break
                except grpc.aio.AioRpcError:
                    await asyncio.sleep(0.1)
            yield stub, queue
        await terminate_running(time_skipping_env, STARTED)
    stop.set()
    await task


@pytest.fixture(scope="module")
def monkeypatch_module():
    patch = pytest.MonkeyPatch()
    yield patch
    patch.undo()


STARTED: list[str] = []


async def new_case(env: WorkflowEnvironment, queue: str, closed: bool = False) -> str:
    case_id = f"api-{uuid.uuid4().hex[:8]}"
    STARTED.append(f"case-{case_id}")
    await env.client.start_workflow(HostCaseWorkflow.run, HostInput(case_id, closed), id=f"case-{case_id}",
                                    task_queue=queue)
    return case_id


def report(case_id: str, **fields) -> case_pb2.ReportChangeRequest:
    base = dict(case_id=case_id, kind="shared_care_nights", effective_date="2025-05-01",
                details_json=json.dumps({"child_id": "c-1", "nights": 60}))
    return case_pb2.ReportChangeRequest(**{**base, **fields})


async def test_report_change_is_idempotent(time_skipping_env, api) -> None:
    stub, queue = api
    case_id = await new_case(time_skipping_env, queue)
    first = await stub.ReportChange(report(case_id, idempotency_key="online-123"))
    again = await stub.ReportChange(report(case_id, idempotency_key="online-123"))
    assert (first.change_no, first.already_existed) == (1, False)
    assert (again.change_no, again.already_existed, again.workflow_id) == (1, True, first.workflow_id)
    assert first.workflow_id == f"case-{case_id}/change-1" and first.sla_due_at.seconds > 0


@pytest.mark.parametrize(("fields", "field"), [
    ({"kind": "lottery_win"}, "kind"),
    ({"effective_date": "2030-01-01"}, "effective_date"),
    ({"details_json": "{not json"}, "details_json"),
    ({"details_json": json.dumps({"child_id": "c-1", "nights": 60, "colour": "red"})}, "details.colour"),
    # A caseworker records a day told before the report arrived only with a reason.
    ({"reported_by": "caseworker", "reported_date": "2025-05-01"}, "notification_reason"),
    ({"reported_by": "receiving_parent", "notification_reason": "told us in May"}, "notification_reason"),
])
async def test_bad_reports_are_invalid_argument_and_record_nothing(time_skipping_env, api, fields, field) -> None:
    stub, queue = api
    case_id = await new_case(time_skipping_env, queue)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.ReportChange(report(case_id, **fields))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in field_violations_of(error.value)] == [field]
    handle = time_skipping_env.client.get_workflow_handle(f"case-{case_id}")
    assert await handle.query(HostCaseWorkflow.open_changes) == []


async def test_closed_and_unknown_cases(time_skipping_env, api) -> None:
    stub, queue = api
    closed = await new_case(time_skipping_env, queue, closed=True)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.ReportChange(report(closed))
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.ReportChange(report("no-such-case"))
    assert error.value.code() == grpc.StatusCode.NOT_FOUND


async def test_review_through_the_api_and_the_sla_report(time_skipping_env, api) -> None:
    stub, queue = api
    case_id = await new_case(time_skipping_env, queue)
    receipt = await stub.ReportChange(report(case_id, evidence_disputed=True))
    assert receipt.needs_caseworker and receipt.assigned_team == "changes-disputes"
    child = time_skipping_env.client.get_workflow_handle(receipt.workflow_id)
    for _ in range(200):
        if (await child.query(ChangeWorkflow.status)).stage == "awaiting_review":
            break
        await asyncio.sleep(0.05)
    sla = await stub.GetSlaReport(case_pb2.GetSlaReportRequest(oldest=500))
    assert [b.band for b in sla.open_by_age] == ["0-7", "8-14", "15-21", "22-28", "28+"]
    assert any(item.case_id == case_id and item.needs_caseworker for item in sla.oldest)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.ReviewChange(case_pb2.ReviewChangeRequest(case_id=case_id, change_no=1, outcome="apply",
                                                             reviewer="cw-1"))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in field_violations_of(error.value)] == ["reason"]
    review = case_pb2.ReviewChangeRequest(case_id=case_id, change_no=1, outcome="apply", reason="diary checked",
                                          reviewer="cw-1", idempotency_key="review-click-1")
    answer = await stub.ReviewChange(review)
    assert answer.outcome == "recalculated"
    # The same click again (a retry after a timeout): applied once, answered with the first outcome.
    assert (await stub.ReviewChange(review)).outcome == "recalculated"
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.ReviewChange(case_pb2.ReviewChangeRequest(
            case_id=case_id, change_no=1, outcome="apply", reason="again", reviewer="cw-1"))
    assert error.value.code() in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND)
    sla = await stub.GetSlaReport(case_pb2.GetSlaReportRequest())
    assert sla.cleared_last_4_weeks >= 1 and 0 < sla.on_time_share <= 1


async def test_cmsctl_change_report_and_sla(time_skipping_env, api) -> None:
    _, queue = api
    case_id = await new_case(time_skipping_env, queue)
    app = typer.Typer()
    change_cli.register(app)
    runner = CliRunner()
    ok = await asyncio.to_thread(runner.invoke, app, [
        "change", "report", case_id, "--kind", "paying_parent_income", "--effective-date", "2025-05-01",
        "--details", '{"weekly_income_pence": 61000}'])
    assert ok.exit_code == 0, ok.output
    assert f"case-{case_id}/change-1" in ok.output
    bad = await asyncio.to_thread(runner.invoke, app, [
        "change", "report", case_id, "--kind", "lottery_win", "--effective-date", "2025-05-01"])
    assert bad.exit_code == 2 and "error: kind:" in bad.output
    sla = await asyncio.to_thread(runner.invoke, app, ["sla", "--json"])
    assert sla.exit_code == 0, sla.output
    assert "open_by_age" in json.loads(sla.output)


async def test_list_changes_for_the_queues_and_the_case_page(time_skipping_env, api) -> None:
    stub, queue = api
    case_id = await new_case(time_skipping_env, queue)
    receipt = await stub.ReportChange(report(case_id, evidence_disputed=True))
    child = time_skipping_env.client.get_workflow_handle(receipt.workflow_id)
    for _ in range(200):
        if (await child.query(ChangeWorkflow.status)).stage == "awaiting_review":
            break
        await asyncio.sleep(0.05)
    waiting = await stub.ListChanges(case_pb2.ListChangesRequest(waiting_for_review_only=True))
    [item] = [change for change in waiting.changes if change.case_id == case_id]
    assert (item.change_no, item.kind, item.review_reason, item.assigned_team) == (
        1, "shared_care_nights", "evidence_disputed", "changes-disputes")
    assert item.needs_caseworker and not item.breached and item.age_days == 0 and item.status != "cleared"
    # Soonest due first, across cases.
    dues = [change.sla_due_at.ToDatetime() for change in waiting.changes]
    assert dues == sorted(dues)
    # Breached and nearly breached: due before a moment; this one is due in 28 days.
    now = datetime.now(UTC)
    soon = case_pb2.ListChangesRequest()
    soon.due_before.FromDatetime(now)
    assert case_id not in {change.case_id for change in (await stub.ListChanges(soon)).changes}
    soon.due_before.FromDatetime(now + timedelta(days=29))
    assert case_id in {change.case_id for change in (await stub.ListChanges(soon)).changes}
    await stub.ReviewChange(case_pb2.ReviewChangeRequest(case_id=case_id, change_no=1, outcome="apply",
                                                         reason="diary checked", reviewer="cw-1"))
    for _ in range(200):
        history = await stub.ListChanges(case_pb2.ListChangesRequest(case_id=case_id, include_cleared=True))
        if history.changes and history.changes[0].status == "cleared":
            break
        await asyncio.sleep(0.05)
    [cleared] = history.changes
    assert (cleared.status, cleared.reviewer) == ("cleared", "cw-1") and cleared.outcome
    assert cleared.cleared_at.seconds > 0
    # Without include_cleared a case's list is its open changes only.
    assert not (await stub.ListChanges(case_pb2.ListChangesRequest(case_id=case_id))).changes
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.ListChanges(case_pb2.ListChangesRequest(include_cleared=True))
    assert [f for f, _ in field_violations_of(error.value)] == ["include_cleared"]
