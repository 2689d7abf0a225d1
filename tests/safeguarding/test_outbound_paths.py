"""A safeguarded case, walked through every outbound path: letters (PDF), SMS, email, the gRPC
responses of the notifications service, the service's logs, and the case workflow's search
attributes and memo. No protected field of the other party may appear on any of them.

The notifications service runs as a real process (`python -m services.notifications`, with its
in-process dispatcher and the file sink) so its letters, messages and JSON logs are exactly
what an operator would get.
"""

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import grpc
import pytest
from google.protobuf.json_format import MessageToJson
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cms.config import REPO_ROOT
from cms.infra.processes import free_port
from cms_proto.notifications.v1 import notifications_pb2 as pb
from domain.notifications import TEMPLATES
from tests.helpers.auth import caller_channel
from tests.notifications.support import (
    PP_DETAILS,
    RP_DETAILS,
    pdf_text,
    protected_of,
    set_up_case,
    stub_for,
    variables_for,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

CHANNELS = {"letter": pb.CHANNEL_LETTER, "email": pb.CHANNEL_EMAIL, "sms": pb.CHANNEL_SMS}
PARTIES = {"rp": RP_DETAILS, "pp": PP_DETAILS}


def _leaks(text: str, party_id: str) -> set[str]:
    return {value for value in protected_of(PARTIES[party_id]) if value in text}


def _sink_text(path: Path) -> str:
    return pdf_text(path.read_bytes()) if path.suffix == ".pdf" else path.read_text()


async def _start_service_process(database_url: str, folder: Path) -> tuple[subprocess.Popen, str, Path]:
    port = free_port()
    log_path = folder / "notifications.log"
    env = {**os.environ, "DATABASE_URL": database_url, "NOTIFICATIONS_PORT": str(port),
           "CMS_NOTIFY_SINK_DIR": str(folder / "sink"), "CMS_DISPATCH_POLL": "0.05", "CMS_DATA_DIR": str(folder),
           "PYTHONPATH": str(REPO_ROOT), "LOG_LEVEL": "INFO"}
    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "services.notifications"], cwd=REPO_ROOT, env=env,
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    address = f"127.0.0.1:{port}"
    for _ in range(300):
        if process.poll() is not None:
            raise AssertionError(f"the service exited: {log_path.read_text()}")
        try:
            async with caller_channel(address) as channel:
                await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
            return process, address, log_path
        except grpc.aio.AioRpcError:
            await asyncio.sleep(0.1)
    process.kill()
    raise AssertionError("the notifications service did not become healthy")


async def test_no_outbound_path_of_the_notifications_service_discloses_the_other_party(
        isolated_notifications_db: str, tmp_path: Path) -> None:
    case_id = f"C-{uuid.uuid4().hex[:8]}"
    process, address, log_path = await _start_service_process(isolated_notifications_db, tmp_path)
    responses: list[tuple[str, str]] = []  # (whose eyes, JSON of the response)
    try:
        async with caller_channel(address) as channel:
            stub = stub_for(channel)
            await set_up_case(stub, case_id, safeguarded=True)
            sent = {}
            for template in TEMPLATES:
                for channel_name, channel_value in CHANNELS.items():
                    for recipient in ("rp", "pp"):
                        request = pb.SendRequest(
                            idempotency_key=f"{case_id}:{template}:{channel_name}:{recipient}", case_id=case_id,
                            recipient_party_id=recipient, template=template, channel=channel_value,
                            variables_json=json.dumps(variables_for(template, case_id)),
                            requested_by=f"workflow:case-{case_id}", reason="walk")
                        reply = await stub.Send(request)
                        sent[reply.notification_id] = recipient
                        responses.append((recipient, MessageToJson(reply)))
                        preview_request = pb.SendRequest()
                        preview_request.CopyFrom(request)
                        preview_request.requested_by, preview_request.reason = "cw-1", "walk"
                        preview = await stub.Preview(preview_request)
                        responses.append((recipient, MessageToJson(preview)))
            for viewer, subject in (("pp", "rp"), ("rp", "pp")):
                party = await stub.GetParty(pb.GetPartyRequest(case_id=case_id, party_id=subject, viewer_party_id=viewer))
                responses.append((viewer, MessageToJson(party)))
            profile = await stub.GetSafeguardingProfile(pb.GetSafeguardingProfileRequest(case_id=case_id))
            responses += [("pp", MessageToJson(profile)), ("rp", MessageToJson(profile))]
            for _ in range(600):
                listed = await stub.ListForCase(pb.ListForCaseRequest(case_id=case_id))
                if all(n.status == "delivered" for n in listed.notifications):
                    break
                await asyncio.sleep(0.05)
            responses += [("pp", MessageToJson(listed)), ("rp", MessageToJson(listed))]
            for notification_id, recipient in sent.items():
                status = await stub.GetStatus(pb.GetStatusRequest(notification_id=notification_id))
                responses.append((recipient, MessageToJson(status)))
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)

    assert {n.status for n in listed.notifications} == {"delivered"}
    # The protected party (rp) asked for letters only and no phone: nothing else reached them.
    assert {n.channel for n in listed.notifications if n.recipient_party_id == "rp"} == {pb.CHANNEL_LETTER}

    sink = tmp_path / "sink"
    delivered = {path.name.split(".")[0]: path for path in sink.iterdir() if not path.name.startswith((".", "deliveries"))}
    assert set(delivered) == set(sent)
    for notification_id, path in delivered.items():
        recipient = sent[notification_id]
        other = "pp" if recipient == "rp" else "rp"
        text = _sink_text(path)
        assert PARTIES[recipient]["full_name"] in text or path.name.endswith(".sms.txt")
        assert _leaks(text, other) == set(), path.name
    # The check is able to see a leak: the recipient's own details are there where they belong.
    pp_letters = [p for i, p in delivered.items() if sent[i] == "pp" and p.suffix == ".pdf"]
    assert pp_letters and _leaks(_sink_text(pp_letters[0]), "pp") >= {"PV9 9OR"}

    for viewer, response in responses:
        other = "pp" if viewer == "rp" else "rp"
        assert _leaks(response, other) == set(), response

    log_text = log_path.read_text()
    assert '"notification_queued"' in log_text and '"notification_dispatched"' in log_text
    for party_id in PARTIES:
        assert _leaks(log_text, party_id) == set()
        assert PARTIES[party_id]["full_name"] not in log_text


async def test_case_workflow_search_attributes_and_memo_hold_no_personal_data(dev_temporal) -> None:
    """A safeguarded case starts and publishes its search attributes; its description (search
    attributes, memo) is then inspected for any party's details."""
    from temporalio.client import Client
    from temporalio.worker import Worker

    from tests.helpers.codec import codec_data_converter
    from workflows.case import CaseInput, CaseWorkflow

    # The worker's converter: search attributes are never encrypted, so they must hold nothing.
    client = Client(**{**dev_temporal.config(), "data_converter": codec_data_converter()})
    case_id = f"C-{uuid.uuid4().hex[:8]}"
    case_input = CaseInput(case_id=case_id, domestic_abuse=True)
    queue = f"safeguarding-{case_id}"
    # Only the workflow: its first task publishes the search attributes, then it waits on
    # activities nobody serves here, which is all this test needs.
    async with Worker(client, task_queue=queue, workflows=[CaseWorkflow]):
        handle = await client.start_workflow(CaseWorkflow.run, case_input, id=f"case-{case_id}",
                                                   task_queue=queue)
        try:
            for _ in range(200):
                description = await handle.describe()
                if description.typed_search_attributes and len(description.typed_search_attributes) > 0:
                    break
                await asyncio.sleep(0.05)
            memo = await description.memo()
        finally:
            await handle.terminate(reason="test finished")
    visible = json.dumps({
        "id": description.id,
        "search_attributes": {pair.key.name: str(pair.value) for pair in description.typed_search_attributes},
        "memo": memo,
    })
    assert "CaseStage" in visible
    for party_id, details in PARTIES.items():
        assert _leaks(visible, party_id) == set()
        assert details["full_name"] not in visible


async def test_case_service_responses_and_the_case_letters_disclose_nothing_of_the_other_party(
        isolated_notifications_db: str, database_url: str, dev_temporal, tmp_path: Path) -> None:
    """The whole path of `make run`: CaseService registers the parties with notifications, the
    case workflow's letters go through its outbox (RecordedAndSentNotices) and are delivered;
    the paying parent's GetCase, the timeline and the case list, and every letter, are read for
    the protected details of the other party."""
    from dataclasses import replace

    from psycopg_pool import AsyncConnectionPool
    from temporalio.client import Client
    from temporalio.worker import Worker

    from cms.config import TASK_QUEUE_CASES, load_settings
    from cms.grpc_client import Channels
    from cms.worker_catalog import build_activities
    from cms_proto.case.v1 import case_pb2, case_pb2_grpc
    from services.case_api.service import CaseService
    from tests.helpers.codec import codec_data_converter
    from workflows.case import CaseWorkflow

    case_fields = ("full_name", "address", "phone", "email", "employer", "bank_sort_code")
    key = f"safe-{uuid.uuid4().hex[:8]}"
    rp_id, pp_id = f"rp-{key}", f"pp-{key}"
    details = {rp_id: RP_DETAILS, pp_id: PP_DETAILS}

    def leaks(text: str, owner: str) -> set[str]:
        return {value for value in protected_of({k: details[owner][k] for k in case_fields}) if value in text}

    process, address, _ = await _start_service_process(isolated_notifications_db, tmp_path)
    client = Client(**{**dev_temporal.config(), "data_converter": codec_data_converter()})
    queue = f"{TASK_QUEUE_CASES}-safeguarding-{uuid.uuid4().hex[:6]}"
    defaults = load_settings()
    # `make run`'s worker: letters recorded and sent through the notifications service.
    settings = replace(defaults, seconds_per_day=0.05, case_notices_via_notifications=True,
                       ports={**defaults.ports, "notifications": int(address.rpartition(":")[2])})
    pool = AsyncConnectionPool(database_url, open=False, min_size=1, max_size=4)
    await pool.open()
    channels = Channels()
    server = grpc.aio.server()
    case_pb2_grpc.add_CaseServiceServicer_to_server(
        CaseService(pool, settings, client, queue, notifications_address=address), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    responses: list[tuple[str, str]] = []   # (whose details must not appear, JSON of the response)
    try:
        async with Worker(client, task_queue=queue, workflows=[CaseWorkflow],
                          activities=build_activities(settings, pool, channels)[TASK_QUEUE_CASES]), \
                caller_channel(f"127.0.0.1:{port}") as case_channel, \
                caller_channel(address) as notify_channel:
            cases = case_pb2_grpc.CaseServiceStub(case_channel)
            created = await cases.CreateApplication(case_pb2.CreateApplicationRequest(
                idempotency_key=key, domestic_abuse=True, requested_by=rp_id,
                receiving_parent=case_pb2.Party(party_id=rp_id, **{k: RP_DETAILS[k] for k in case_fields}),
                paying_parent=case_pb2.Party(party_id=pp_id, **{k: PP_DETAILS[k] for k in case_fields}),
                children=[case_pb2.Child(child_id="c-1", date_of_birth="2016-05-01")]))
            case_id = created.case_id
            for _ in range(600):
                case = await cases.GetCase(case_pb2.GetCaseRequest(case_id=case_id, viewer_party_id=pp_id))
                if case.stage == "Active":
                    break
                await asyncio.sleep(0.05)
            # The paying parent is not the protected party: the marker is not shown to him.
            assert case.stage == "Active" and not case.safeguarded
            responses.append((rp_id, MessageToJson(case)))
            timeline = await cases.GetTimeline(case_pb2.GetTimelineRequest(case_id=case_id))
            assert any(entry.kind == "calculation" for entry in timeline.entries)
            responses += [(rp_id, MessageToJson(timeline)), (pp_id, MessageToJson(timeline))]
            listed_cases = await cases.ListCases(case_pb2.ListCasesRequest(page_size=1000))
            responses += [(rp_id, MessageToJson(listed_cases)), (pp_id, MessageToJson(listed_cases))]

            notify = stub_for(notify_channel)
            for _ in range(600):
                letters = (await notify.ListForCase(pb.ListForCaseRequest(case_id=case_id))).notifications
                if len(letters) >= 4 and all(n.status == "delivered" for n in letters):
                    break
                await asyncio.sleep(0.05)
            await client.get_workflow_handle(created.workflow_id).terminate("test finished")
    finally:
        await server.stop(None)
        await channels.close()
        await pool.close()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)

    # The notice of application to the paying parent, both parents' calculation letters and the paying
    # parent's payment schedule (on Collect & Pay the receiving parent has the statement instead).
    sent = sorted((n.recipient_party_id, n.template) for n in letters)
    assert sent == [(pp_id, "calculation_decision"), (pp_id, "notice_to_paying_parent"),
                    (pp_id, "payment_schedule"), (rp_id, "calculation_decision")]
    assert {n.status for n in letters} == {"delivered"}
    # The protected party (rp) gets letters only.
    assert {n.channel for n in letters if n.recipient_party_id == rp_id} == {pb.CHANNEL_LETTER}
    files = {path.name.split(".")[0]: path for path in (tmp_path / "sink").iterdir()}
    for letter in letters:
        other = rp_id if letter.recipient_party_id == pp_id else pp_id
        text = _sink_text(files[letter.notification_id])
        assert leaks(text, other) == set(), files[letter.notification_id].name
        if files[letter.notification_id].suffix == ".pdf":
            assert details[letter.recipient_party_id]["full_name"] in text
    # The check sees a leak where there would be one: the paying parent's own view shows their address.
    assert leaks(responses[0][1], pp_id)
    for owner, response in responses:
        assert leaks(response, owner) == set(), response
