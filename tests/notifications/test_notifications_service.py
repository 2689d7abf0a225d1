"""The gRPC API: idempotent Send, validation before anything is queued, status, list, preview,
party details with redaction and audit."""

import json
import uuid
from datetime import datetime, time

import grpc
import pytest

from cms_proto.notifications.v1 import notifications_pb2 as pb
from domain.notifications.channels import UK
from domain.safeguarding import REDACTED
from services.common.errors import field_violations_of
from tests.notifications.support import PP_DETAILS, RP_DETAILS, set_up_case, variables_for

pytestmark = pytest.mark.asyncio(loop_scope="session")


def _case() -> str:
    return f"C-{uuid.uuid4().hex[:10]}"


def _send(case_id: str, template: str, recipient: str = "rp", key: str | None = None, **overrides) -> pb.SendRequest:
    variables = {**variables_for(template, case_id), **overrides}
    return pb.SendRequest(idempotency_key=key or f"wf-{case_id}:{template}:{recipient}", case_id=case_id,
                          recipient_party_id=recipient, template=template, variables_json=json.dumps(variables),
                          requested_by=f"workflow:case-{case_id}")


async def _audit_rows(pool, case_id: str) -> list[dict]:
    from psycopg.rows import dict_row
    async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT * FROM notifications.audit_log WHERE case_id = %s ORDER BY audit_id", (case_id,))
        return await cur.fetchall()


async def test_send_is_idempotent_and_listed_for_the_case(notifications_stub) -> None:
    case_id = _case()
    await set_up_case(notifications_stub, case_id, safeguarded=False)
    first = await notifications_stub.Send(_send(case_id, "application_received"))
    again = await notifications_stub.Send(_send(case_id, "application_received"))
    other = await notifications_stub.Send(_send(case_id, "payment_received", recipient="pp"))
    assert first.notification_id == again.notification_id
    assert first.status == "queued" and first.channel == pb.CHANNEL_LETTER
    status = await notifications_stub.GetStatus(pb.GetStatusRequest(notification_id=first.notification_id))
    assert status.status == "queued" and status.case_id == case_id
    listed = await notifications_stub.ListForCase(pb.ListForCaseRequest(case_id=case_id))
    assert sorted(n.notification_id for n in listed.notifications) == sorted([first.notification_id, other.notification_id])


async def test_a_missing_variable_is_a_clear_error_and_queues_nothing(notifications_stub) -> None:
    case_id = _case()
    await set_up_case(notifications_stub, case_id, safeguarded=False)
    request = _send(case_id, "calculation_decision")
    variables = json.loads(request.variables_json)
    del variables["weekly_amount"]
    request.variables_json = json.dumps(variables)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await notifications_stub.Send(request)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations_of(error.value) == [
        ("variables_json", "template 'calculation_decision' needs variable 'weekly_amount', which was not given")]
    listed = await notifications_stub.ListForCase(pb.ListForCaseRequest(case_id=case_id))
    assert list(listed.notifications) == []


async def test_bad_requests_name_their_fields(notifications_stub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await notifications_stub.Send(pb.SendRequest(variables_json="[1]"))
    fields = {name for name, _ in field_violations_of(error.value)}
    assert fields == {"idempotency_key", "case_id", "recipient_party_id", "template", "variables_json"}
    case_id = _case()
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await notifications_stub.Send(_send(case_id, "case_closed"))
    assert field_violations_of(error.value)[0][0] == "recipient_party_id"
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await notifications_stub.SetParty(pb.SetPartyRequest(
            case_id=case_id, party_id="pp", details_json="{}",
            preferences=pb.ContactPreferences(safe_from="25:00", safe_until="07:00")))
    assert field_violations_of(error.value)[0][0] == "preferences"
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await notifications_stub.GetStatus(pb.GetStatusRequest(notification_id=str(uuid.uuid4())))
    assert error.value.code() == grpc.StatusCode.NOT_FOUND


async def test_contact_preferences_choose_the_channel_and_defer_to_safe_times(notifications_stub) -> None:
    case_id = _case()
    await set_up_case(notifications_stub, case_id, safeguarded=False,
                      pp_preferences=pb.ContactPreferences(channel=pb.CHANNEL_EMAIL, safe_from="03:00",
                                                           safe_until="03:01"))
    sent = await notifications_stub.Send(_send(case_id, "payment_missed", recipient="pp"))
    assert sent.channel == pb.CHANNEL_EMAIL
    deliver_after = datetime.fromisoformat(sent.deliver_after)
    created = datetime.fromisoformat(sent.created_at)
    inside_window = time(3, 0) <= created.astimezone(UK).time() < time(3, 1)
    if not inside_window:  # deferred to 03:00 UK time on the next occasion
        assert deliver_after > created and deliver_after.astimezone(UK).time() == time(3, 0)


async def test_preview_renders_without_sending_and_audits_the_read(notifications_stub, notifications_pool) -> None:
    case_id = _case()
    await set_up_case(notifications_stub, case_id, safeguarded=True)
    request = _send(case_id, "calculation_decision", recipient="pp")
    request.requested_by, request.reason = "cw-17", "checking the letter before a call"
    preview = await notifications_stub.Preview(request)
    assert preview.channel == pb.CHANNEL_LETTER
    assert "£84.12 a week" in preview.body
    assert list(preview.address_lines) == ["Sam Payer", "9 Open Road", "Payville", "PV9 9OR"]
    listed = await notifications_stub.ListForCase(pb.ListForCaseRequest(case_id=case_id))
    assert list(listed.notifications) == []
    audit = await _audit_rows(notifications_pool, case_id)
    assert [(a["actor"], a["subject_party_id"], a["reason"]) for a in audit] == [
        ("staff:cw-17", "pp", "checking the letter before a call")]
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await notifications_stub.Preview(_send(case_id, "case_closed"))
    assert {name for name, _ in field_violations_of(error.value)} == {"reason"}


async def test_get_party_redacts_for_the_other_party_and_audits_unredacted_reads(notifications_stub, notifications_pool) -> None:
    case_id = _case()
    await set_up_case(notifications_stub, case_id, safeguarded=True)
    as_other = await notifications_stub.GetParty(pb.GetPartyRequest(case_id=case_id, party_id="rp", viewer_party_id="pp"))
    shown = json.loads(as_other.details_json)
    # A safeguarded case: the other party learns nothing of the protected party, not even the name.
    assert shown["full_name"] == REDACTED
    assert all(RP_DETAILS[key] not in as_other.details_json
               for key in ("full_name", "address", "postcode", "phone", "email", "employer", "bank_sort_code", "town"))
    assert await _audit_rows(notifications_pool, case_id) == []
    as_staff = await notifications_stub.GetParty(pb.GetPartyRequest(case_id=case_id, party_id="rp", staff_id="cw-3",
                                                                    reason="tracing query"))
    assert json.loads(as_staff.details_json)["address"] == RP_DETAILS["address"]
    own = await notifications_stub.GetParty(pb.GetPartyRequest(case_id=case_id, party_id="pp", viewer_party_id="pp"))
    assert json.loads(own.details_json)["phone"] == PP_DETAILS["phone"]
    audit = await _audit_rows(notifications_pool, case_id)
    assert [(a["actor"], a["subject_party_id"], a["reason"]) for a in audit] == [
        ("staff:cw-3", "rp", "tracing query"), ("party:pp", "pp", "party viewing own details")]
    assert "address" in audit[0]["fields_read"] and "bank_sort_code" in audit[0]["fields_read"]
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await notifications_stub.GetParty(pb.GetPartyRequest(case_id=case_id, party_id="rp", staff_id="cw-3"))
    assert field_violations_of(error.value)[0][0] == "reason"


async def test_safeguarding_profile_round_trips_and_forces_the_safe_channel(notifications_stub) -> None:
    case_id = _case()
    await set_up_case(notifications_stub, case_id, safeguarded=True,
                      rp_preferences=pb.ContactPreferences(channel=pb.CHANNEL_SMS))
    profile = await notifications_stub.GetSafeguardingProfile(pb.GetSafeguardingProfileRequest(case_id=case_id))
    assert profile.active and list(profile.protected_party_ids) == ["rp"] and profile.no_phone
    request = _send(case_id, "payment_received")
    request.channel = pb.CHANNEL_SMS
    sent = await notifications_stub.Send(request)
    assert sent.channel == pb.CHANNEL_LETTER


@pytest.mark.parametrize("safeguarded", [False, True], ids=["ordinary", "safeguarded"])
async def test_every_template_renders_for_both_parents_on_an_ordinary_and_a_safeguarded_case(
        notifications_stub, safeguarded: bool) -> None:
    from domain.notifications import TEMPLATES
    from tests.notifications.support import protected_of

    case_id = _case()
    await set_up_case(notifications_stub, case_id, safeguarded=safeguarded)
    details = {"rp": RP_DETAILS, "pp": PP_DETAILS}
    for template in TEMPLATES:
        for recipient, other in (("rp", "pp"), ("pp", "rp")):
            request = _send(case_id, template, recipient=recipient)
            request.channel, request.requested_by, request.reason = pb.CHANNEL_SMS, "cw-1", "test"
            preview = await notifications_stub.Preview(request)
            protected_rp = safeguarded and recipient == "rp"
            assert preview.channel == (pb.CHANNEL_LETTER if protected_rp else pb.CHANNEL_SMS)
            text = "\n".join([preview.subject, preview.body, *preview.address_lines])
            assert {v for v in protected_of(details[other]) if v in text} == set()
            assert case_id in text


async def test_a_letters_pdf_for_staff_is_the_letter_as_sent_and_audited(notifications_stub, notifications_pool) -> None:
    from io import BytesIO

    from pypdf import PdfReader

    case_id = _case()
    await set_up_case(notifications_stub, case_id, safeguarded=True)
    sent = await notifications_stub.Send(_send(case_id, "calculation_decision", recipient="pp"))
    letter = await notifications_stub.LetterPdf(pb.LetterPdfRequest(
        notification_id=sent.notification_id, requested_by="cw-17", reason="the parent says it never came"))
    assert letter.case_id == case_id and letter.pdf.startswith(b"%PDF")
    text = PdfReader(BytesIO(letter.pdf)).pages[0].extract_text()
    assert "9 Open Road" in text and "£84.12 a week" in text
    audit = await _audit_rows(notifications_pool, case_id)
    assert [(a["actor"], a["subject_party_id"], a["reason"]) for a in audit][-1] == (
        "staff:cw-17", "pp", "the parent says it never came")
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await notifications_stub.LetterPdf(pb.LetterPdfRequest(notification_id=sent.notification_id, requested_by="cw-17"))
    assert {name for name, _ in field_violations_of(error.value)} == {"reason"}
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await notifications_stub.LetterPdf(pb.LetterPdfRequest(notification_id=str(uuid.uuid4()), requested_by="cw-17",
                                                               reason="x"))
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
