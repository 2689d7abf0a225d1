"""Through the gRPC API: a party's language and accessible format stored with them and honoured,
the English fallback recorded, braille and audio letters held for a caseworker, children named in
words, and an address that cannot fit the envelope window refused with its field named."""

import json
import uuid

import grpc
import pytest

from cms_proto.notifications.v1 import notifications_pb2 as pb
from services.common.errors import field_violations_of
from tests.notifications.support import PP_DETAILS, RP_DETAILS, set_up_case, variables_for

pytestmark = pytest.mark.asyncio(loop_scope="session")


def _case() -> str:
    return f"L-{uuid.uuid4().hex[:10]}"


def _send(case_id: str, template: str, recipient: str = "rp", channel=pb.CHANNEL_UNSPECIFIED, **overrides):
    variables = {**variables_for(template, case_id), **overrides}
    return pb.SendRequest(idempotency_key=f"wf-{case_id}:{template}:{recipient}:{channel}", case_id=case_id,
                          recipient_party_id=recipient, template=template, variables_json=json.dumps(variables),
                          channel=channel, requested_by="caseworker-7", reason="checking the letter")


async def test_the_language_preference_is_stored_and_every_channel_honours_it(notifications_stub) -> None:
    case_id = _case()
    await set_up_case(notifications_stub, case_id, safeguarded=False,
                      rp_preferences=pb.ContactPreferences(language="cy", accessible_format="large_print"))
    party = await notifications_stub.GetParty(pb.GetPartyRequest(case_id=case_id, party_id="rp", viewer_party_id="rp"))
    assert (party.preferences.language, party.preferences.accessible_format) == ("cy", "large_print")
    for channel in (pb.CHANNEL_LETTER, pb.CHANNEL_EMAIL, pb.CHANNEL_SMS):
        preview = await notifications_stub.Preview(_send(case_id, "payment_received", channel=channel))
        assert "28 Ebrill 2026" in preview.body, channel
        sent = await notifications_stub.Send(_send(case_id, "payment_received", channel=channel))
        assert (sent.language, sent.language_note) == ("cy", "")


async def test_a_language_without_templates_is_sent_in_english_and_the_fallback_recorded(notifications_stub) -> None:
    case_id = _case()
    await set_up_case(notifications_stub, case_id, safeguarded=False,
                      rp_preferences=pb.ContactPreferences(language="pl"))
    sent = await notifications_stub.Send(_send(case_id, "case_closed"))
    assert sent.language == "en"
    assert "'pl'" in sent.language_note
    status = await notifications_stub.GetStatus(pb.GetStatusRequest(notification_id=sent.notification_id))
    assert status.language_note == sent.language_note


async def test_braille_and_audio_letters_wait_for_a_caseworker(notifications_stub) -> None:
    for accessible_format in ("braille", "audio"):
        case_id = _case()
        await set_up_case(notifications_stub, case_id, safeguarded=False,
                          pp_preferences=pb.ContactPreferences(accessible_format=accessible_format))
        letter = await notifications_stub.Send(_send(case_id, "payment_missed", recipient="pp"))
        assert letter.status == "for_caseworker"
        assert accessible_format in letter.failure_reason
        sms = await notifications_stub.Send(_send(case_id, "payment_missed", recipient="pp", channel=pb.CHANNEL_SMS))
        assert sms.status == "queued"


async def test_an_unknown_format_or_a_non_language_is_refused(notifications_stub) -> None:
    for preferences in (pb.ContactPreferences(accessible_format="giant"), pb.ContactPreferences(language="Welsh!")):
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await notifications_stub.SetParty(pb.SetPartyRequest(
                case_id=_case(), party_id="rp", details_json=json.dumps(RP_DETAILS), preferences=preferences))
        assert field_violations_of(error.value)[0][0] == "preferences"


async def test_children_are_named_in_words_in_the_explanation(notifications_stub) -> None:
    case_id = _case()
    await set_up_case(notifications_stub, case_id, safeguarded=False)
    await notifications_stub.SetChildren(pb.SetChildrenRequest(case_id=case_id, children=[
        pb.CaseChild(child_id="c-1", name="Aled", date_of_birth="2016-03-03"),
        pb.CaseChild(child_id="c-2", date_of_birth="2018-11-20")]))
    explanation = ["Shared care: rp: nights a year with the paying parent (c-1 0 nights, c-2 110 nights)."]
    preview = await notifications_stub.Preview(_send(case_id, "calculation_decision", explanation=explanation))
    assert "Shared care: the receiving parent: nights a year with the paying parent (Aled 0 nights, your child born " \
           "20 November 2018 110 nights)." in preview.body


async def test_an_address_that_cannot_fit_the_window_is_refused_naming_the_field(notifications_stub) -> None:
    case_id = _case()
    cases = [
        ({**PP_DETAILS, "address": "\n".join(f"Line {n}" for n in range(1, 8))}, "details_json.address", "holds 7"),
        ({**PP_DETAILS, "address": "Flat 2, " + "Very Long Building Name " * 4}, "details_json.address", "too long"),
        ({**PP_DETAILS, "full_name": "Alexandra " * 8}, "details_json.full_name", "too long"),
        ({**PP_DETAILS, "address": "中文地址"}, "details_json.address", "no glyph"),
    ]
    for details, field, problem in cases:
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await notifications_stub.SetParty(pb.SetPartyRequest(case_id=case_id, party_id="pp", role="paying_parent",
                                                                 details_json=json.dumps(details)))
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        violations = field_violations_of(error.value)
        assert [name for name, _ in violations] == [field], violations
        assert problem in violations[0][1]
