"""CaseService over gRPC against a real Temporal dev server (visibility, search attributes) and
PostgreSQL, with a case worker on a fast calendar (a case day is 50 ms)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import uuid
from dataclasses import replace
from typing import Any

import grpc
import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.worker import Worker

from cms.config import TASK_QUEUE_CASES, load_settings
from cms.search_attributes import ASSIGNED_TEAM
from cms.worker_catalog import case_activities
from cms_proto.case.v1 import case_pb2, case_pb2_grpc
from domain.safeguarding import REDACTED
from services.case_api.service import CaseService
from services.common.errors import field_violations_of
from tests.helpers.auth import caller_channel, token
from tests.helpers.codec import codec_data_converter
from workflows.case import CaseWorkflow

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(loop_scope="session")
async def case_api(dev_temporal: Client, case_pool, hmrc):
    config = dev_temporal.config()
    config["data_converter"] = codec_data_converter()
    client = Client(**config)
    queue = f"{TASK_QUEUE_CASES}-api-{uuid.uuid4().hex[:6]}"
    settings = replace(load_settings(), seconds_per_day=0.05)
    server = grpc.aio.server()
    case_pb2_grpc.add_CaseServiceServicer_to_server(CaseService(case_pool, settings, client, queue), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with Worker(client, task_queue=queue, workflows=[CaseWorkflow], activities=case_activities(case_pool, hmrc)):
        async with caller_channel(f"127.0.0.1:{port}") as channel:
            yield {"stub": case_pb2_grpc.CaseServiceStub(channel), "client": client, "hmrc": hmrc, "pool": case_pool,
                   "port": port}
        async for execution in client.list_workflows(f"TaskQueue = '{queue}' AND ExecutionStatus = 'Running'"):
            # Visibility lags: a case listed as running may have closed since (a demo case does).
            with contextlib.suppress(RPCError):
                await client.get_workflow_handle(execution.id).terminate("test finished")
    await server.stop(None)


def application(key: str, paying: str, **overrides) -> case_pb2.CreateApplicationRequest:
    fields: dict[str, Any] = dict(
        idempotency_key=key,
        receiving_parent=case_pb2.Party(party_id=f"rp-{key}", full_name="Alex Receiving", address="1 Safe Street",
                                        phone="07000 000001"),
        paying_parent=case_pb2.Party(party_id=paying, full_name="Sam Paying", address="9 Other Road",
                                     employer="Acme Ltd"),
        children=[case_pb2.Child(child_id="c-1", date_of_birth="2016-05-01")],
    )
    fields.update(overrides)
    return case_pb2.CreateApplicationRequest(**fields)


async def eventually(check, attempts: int = 200):
    """Visibility and the read model are eventually consistent: retry a check until it holds."""
    for _ in range(attempts):
        value = await check()
        if value:
            return value
        await asyncio.sleep(0.1)
    raise AssertionError("condition never held")


async def test_bad_application_is_rejected_with_field_violations(case_api) -> None:
    bad = application("bad-1", "pp-bad", children=[case_pb2.Child(child_id="c-1", date_of_birth="2030-01-01")],
                      idempotency_key="")
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await case_api["stub"].CreateApplication(bad)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    fields = {field for field, _ in field_violations_of(error.value)}
    assert fields == {"idempotency_key", "children[0].date_of_birth"}


@pytest.mark.parametrize("application_date", ["9999-12-31", "2012-12-09"])
async def test_an_application_date_outside_the_window_is_refused(case_api, application_date) -> None:
    request = application(f"far-{application_date}", f"pp-far-{application_date}", application_date=application_date)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await case_api["stub"].CreateApplication(request)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [field for field, _ in field_violations_of(error.value)] == ["application_date"]


async def test_application_is_idempotent_safeguarded_listed_and_driven(case_api) -> None:
    stub, client = case_api["stub"], case_api["client"]
    key = f"app-{uuid.uuid4().hex[:8]}"
    paying = f"pp-{key}"
    case_api["hmrc"].incomes[paying] = {"2000-01-01": 2_600_000}
    request = application(key, paying, domestic_abuse=True)
    first, second = await asyncio.gather(stub.CreateApplication(request), stub.CreateApplication(request))
    assert first.case_id == second.case_id and first.case_id.startswith("c") and key not in first.case_id
    assert sorted([first.already_existed, second.already_existed]) == [False, True]
    third = await stub.CreateApplication(request)
    assert third.already_existed and third.case_id == first.case_id
    # Keyed with the server's secret: nobody can test a guessed key (an NI number) against the id.
    assert first.case_id != "c" + hashlib.sha256(key.encode()).hexdigest()[:15]
    runs = [e async for e in client.list_workflows(f"WorkflowId = '{first.workflow_id}'")]
    assert len(runs) == 1, "one workflow per idempotency key"
    case_id = first.case_id

    async def active():
        case = await stub.GetCase(case_pb2.GetCaseRequest(case_id=case_id, viewer_party_id=paying))
        return case if case.stage == "Active" else None
    case = await eventually(active)
    # Safeguarding: Collect & Pay without the other parent's consent; the other party's
    # protected details withheld, the viewer's own shown.
    # The marker is for the protected party and staff only: the paying parent is not told.
    assert case.service_type == case_pb2.SERVICE_TYPE_COLLECT_AND_PAY and not case.safeguarded
    assert case.receiving_parent.address == REDACTED and case.receiving_parent.phone == REDACTED
    assert case.paying_parent.address == "9 Other Road"
    # £60 basic rate + 20% Collect & Pay fee = £72 paid a week.
    assert (case.liability.weekly_liability_pence, case.liability.paying_parent_pays_pence) == (6000, 7200)

    # A case page before anyone gives a reason: the protected fields withheld, and nothing audited.
    withheld = await stub.GetCase(case_pb2.GetCaseRequest(case_id=case_id, staff_id="cw-9", reason="case page",
                                                          withhold_protected=True))
    assert withheld.receiving_parent.full_name == "Alex Receiving" and withheld.safeguarded
    assert (withheld.receiving_parent.address, withheld.receiving_parent.phone, withheld.paying_parent.employer) == (
        REDACTED, REDACTED, REDACTED)
    staff = await stub.GetCase(case_pb2.GetCaseRequest(case_id=case_id, staff_id="cw-9", reason="complaint call"))
    assert staff.receiving_parent.address == "1 Safe Street" and staff.safeguarded
    async with case_api["pool"].connection() as conn:
        audit = await (await conn.execute("SELECT staff_id, reason, fields FROM case_api.audit WHERE case_id = %s",
                                          (case_id,))).fetchall()
    assert audit == [("cw-9", "complaint call", ["address", "employer", "phone"])], "one audit row per staff read"

    async def listed():
        page = await stub.ListCases(case_pb2.ListCasesRequest(stage="Active"))
        return any(c.case_id == case_id for c in page.cases)
    await eventually(listed)

    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.SignalCase(case_pb2.SignalCaseRequest(case_id=case_id, action="add_note", actor="cw-9",
                                                         payload_json='{"text": "hi", "urgnt": true}'))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert ("payload_json.urgnt", "unknown field") in field_violations_of(error.value)
    noted = await stub.SignalCase(case_pb2.SignalCaseRequest(case_id=case_id, action="add_note", actor="cw-9",
                                                             payload_json='{"text": "Spoke to RP"}'))
    assert noted.accepted
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.SignalCase(case_pb2.SignalCaseRequest(case_id=case_id, action="release_hold", actor="cw-9"))
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "not on hold" in error.value.details()

    # A double click: the same idempotency key twice is one note, and both answers agree.
    clicked = case_pb2.SignalCaseRequest(case_id=case_id, action="add_note", actor="cw-9",
                                         payload_json='{"text": "Clicked twice"}', idempotency_key=f"click-{key}")
    first, again = await stub.SignalCase(clicked), await stub.SignalCase(clicked)
    assert first.accepted and again.accepted and first.outcome == again.outcome
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.SignalCase(case_pb2.SignalCaseRequest(case_id=case_id, action="add_note", actor="cw-9",
                                                         payload_json='{"text": "x"}', idempotency_key="k" * 201))
    assert [f for f, _ in field_violations_of(error.value)] == ["idempotency_key"]

    async def noted_in_timeline():
        timeline = await stub.GetTimeline(case_pb2.GetTimelineRequest(case_id=case_id))
        return any(e.kind == "note" and "Spoke to RP" in e.text for e in timeline.entries)
    await eventually(noted_in_timeline)
    timeline = await stub.GetTimeline(case_pb2.GetTimelineRequest(case_id=case_id))
    assert sum("Clicked twice" in e.text for e in timeline.entries) == 1

    closed = await stub.SignalCase(case_pb2.SignalCaseRequest(
        case_id=case_id, action="close_case", actor="cw-9", payload_json='{"reason": "receiving_parent_request"}'))
    assert closed.outcome == "closed"

    async def listed_closed():
        page = await stub.ListCases(case_pb2.ListCasesRequest(stage="Closed"))
        return any(c.case_id == case_id for c in page.cases)
    await eventually(listed_closed)


async def test_hmrc_permanent_failure_is_visible_to_operators(case_api) -> None:
    key = f"down-{uuid.uuid4().hex[:8]}"
    paying = f"pp-{key}"
    case_api["hmrc"].down.add(paying)
    created = await case_api["stub"].CreateApplication(application(key, paying))

    async def flagged():
        page = await case_api["stub"].ListCases(case_pb2.ListCasesRequest(stage="Assessment", needs_caseworker_only=True))
        return [c for c in page.cases if c.case_id == created.case_id]
    [summary] = await eventually(flagged)
    assert summary.needs_caseworker and summary.sla_due_at.seconds > 0
    # Why, in words, for the caseworker's queue; the team is the AssignedTeam search attribute.
    assert summary.caseworker_reason == "HMRC income request failed permanently"
    attributes = (await case_api["client"].get_workflow_handle(created.workflow_id).describe()).typed_search_attributes
    assert summary.assigned_team == (attributes.get(ASSIGNED_TEAM) or "")
    assert (summary.workflow_id, summary.workflow_type) == (created.workflow_id, "CaseWorkflow")
    # The queue's listing takes in change and enforcement workflows too, by the same filter.
    everything = await case_api["stub"].ListCases(case_pb2.ListCasesRequest(
        needs_caseworker_only=True, with_changes_and_enforcement=True, page_size=1000))
    assert created.case_id in {c.case_id for c in everything.cases}

    # Operators filter on SlaDueAt: a cutoff after the due date finds it, one before does not.
    def listed_before(seconds: int) -> case_pb2.ListCasesRequest:
        request = case_pb2.ListCasesRequest(stage="Assessment", needs_caseworker_only=True)
        request.sla_due_before.seconds = seconds
        return request
    after = await case_api["stub"].ListCases(listed_before(summary.sla_due_at.seconds + 60))
    before = await case_api["stub"].ListCases(listed_before(summary.sla_due_at.seconds - 60))
    assert created.case_id in {c.case_id for c in after.cases}
    assert created.case_id not in {c.case_id for c in before.cases}

    # No personal data in the workflow ID, search attributes or memo.
    description = await case_api["client"].get_workflow_handle(created.workflow_id).describe()
    visible = " ".join([created.workflow_id, *map(str, description.search_attributes.values()),
                        str(await description.memo())])
    for personal in ("Alex", "Sam", "Safe Street", "Other Road", "07000", "Acme", key):
        assert personal not in visible


async def test_cmsctl_drives_a_case(case_api, monkeypatch) -> None:
    from typer.testing import CliRunner

    from cms.cli.cmsctl import app

    monkeypatch.setenv("CASE_API_PORT", str(case_api["port"]))
    key = f"cli-{uuid.uuid4().hex[:8]}"
    paying = f"pp-{key}"
    case_api["hmrc"].incomes[paying] = {"2000-01-01": 2_600_000}
    case_id = (await case_api["stub"].CreateApplication(application(key, paying))).case_id

    async def cmsctl(*args: str):
        # The CLI runs its own event loop, so it runs in a thread here.
        return await asyncio.to_thread(CliRunner().invoke, app, ["case", *args])

    async def active():
        return (await case_api["stub"].GetCase(case_pb2.GetCaseRequest(case_id=case_id, viewer_party_id=paying))).stage == "Active"
    await eventually(active)

    noted = await cmsctl("note", case_id, "Called the paying parent", "--author", "cw-3")
    assert noted.exit_code == 0, noted.output
    held = await cmsctl("hold", case_id, "--reason", "awaiting papers", "--actor", "cw-3")
    assert held.exit_code == 0 and "on hold" in held.output
    assert (await cmsctl("release", case_id, "--actor", "cw-3")).exit_code == 0
    again = await cmsctl("release", case_id, "--actor", "cw-3")
    assert again.exit_code == 3 and "not on hold" in again.output
    flagged = await cmsctl("safeguard", case_id, "--reason", "disclosed on a call", "--actor", "cw-3")
    assert flagged.exit_code == 0 and "safeguarded" in flagged.output, flagged.output
    empty = await cmsctl("note", case_id, "", "--author", "cw-3")
    assert empty.exit_code == 3 and "text is required" in empty.output

    async def shown():
        result = await cmsctl("show", case_id, "--staff", "cw-3", "--reason", "training", "--json")
        return result if "Called the paying parent" in result.output else None
    result = await eventually(shown)
    assert json.loads(result.output)["case"]["stage"] == "Active"
    missing_reason = await cmsctl("show", case_id, "--staff", "cw-3")
    assert missing_reason.exit_code == 2 and "reason" in missing_reason.output
    nobody = await cmsctl("show", case_id)
    assert nobody.exit_code == 2 and "--staff" in nobody.output and "--party" in nobody.output
    plain = await cmsctl("show", case_id, "--staff", "cw-3", "--reason", "training")
    assert plain.exit_code == 0 and "£60.00 a week" in plain.output, plain.output


async def test_demo_seeding_is_valid_and_idempotent(case_api) -> None:
    from cms.demo import seed_demo_cases

    settings = replace(load_settings(), ports={**load_settings().ports, "case_api": case_api["port"]})
    seeder = token("demo-seeder", "service")
    assert await seed_demo_cases(case_api["client"], settings, seeder) == 7
    assert await seed_demo_cases(case_api["client"], settings, seeder) == 7
    async with case_api["pool"].connection() as conn:
        count = await (await conn.execute(
            "SELECT count(*) FROM case_api.cases WHERE idempotency_key LIKE 'demo-%%'")).fetchone()
    assert count == (7,)


async def test_caseworker_flags_safeguarding_through_signal_case(case_api) -> None:
    key = f"flag-{uuid.uuid4().hex[:8]}"
    paying = f"pp-{key}"
    case_api["hmrc"].incomes[paying] = {"2000-01-01": 2_600_000}
    stub = case_api["stub"]
    case_id = (await stub.CreateApplication(application(key, paying))).case_id
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await stub.SignalCase(case_pb2.SignalCaseRequest(
            case_id=case_id, action="flag_safeguarding", payload_json='{"reason": "x", "where": "y"}', actor="cw-5"))
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    flagged = await stub.SignalCase(case_pb2.SignalCaseRequest(
        case_id=case_id, action="flag_safeguarding", payload_json='{"reason": "disclosed on a call"}', actor="cw-5"))
    assert flagged.accepted and flagged.outcome == "safeguarded"

    async def safeguarded():
        return (await stub.GetCase(case_pb2.GetCaseRequest(case_id=case_id, viewer_party_id=paying))).safeguarded
    await eventually(safeguarded)
    with pytest.raises(grpc.aio.AioRpcError) as again:
        await stub.SignalCase(case_pb2.SignalCaseRequest(
            case_id=case_id, action="flag_safeguarding", payload_json='{"reason": "again"}', actor="cw-5"))
    assert again.value.code() == grpc.StatusCode.FAILED_PRECONDITION
