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
from cms.notifications.v1 import notifications_pb2 as pb
from domain.notifications import TEMPLATES
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
            async with grpc.aio.insecure_channel(address) as channel:
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
        async with grpc.aio.insecure_channel(address) as channel:
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
    """Adapts to the case workflow that exists: it must start for a safeguarded case and publish
    its search attributes; its description (search attributes, memo) is then inspected."""
    import dataclasses

    from temporalio.worker import Worker

    from workflows.case import CaseInput, CaseWorkflow

    case_id = f"C-{uuid.uuid4().hex[:8]}"
    fields = {f.name for f in dataclasses.fields(CaseInput)}
    options = {"case_id": case_id}
    if "domestic_abuse" in fields:
        options["domestic_abuse"] = True
    case_input = CaseInput(**options)
    queue = f"safeguarding-{case_id}"
    # Only the workflow: its first task publishes the search attributes, then it waits on
    # activities nobody serves here, which is all this test needs.
    async with Worker(dev_temporal, task_queue=queue, workflows=[CaseWorkflow]):
        handle = await dev_temporal.start_workflow(CaseWorkflow.run, case_input, id=f"case-{case_id}",
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
