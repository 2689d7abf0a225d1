"""The activities workflows call: idempotent on workflow id + business key; bad input is final."""

import dataclasses
import uuid

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

import activities.notifications as notification_activities
from activities.notifications import (
    NotificationRequest,
    PartyDetailsRequest,
    SafeguardingRequest,
    send_notification,
    set_party_details,
    set_safeguarding_profile,
)
from cms.notifications.v1 import notifications_pb2 as pb
from tests.notifications.support import PP_DETAILS, RP_DETAILS, variables_for

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_send_notification_is_idempotent_per_workflow_and_business_key(notifications_stub, notifications_address) -> None:
    notification_activities.use_notifications_address(notifications_address)
    case_id = f"C-{uuid.uuid4().hex[:8]}"
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, workflow_id=f"case-{case_id}")
    await env.run(set_party_details, PartyDetailsRequest(case_id, "rp", "receiving_parent", RP_DETAILS,
                                                         channel="sms", safe_from="18:00", safe_until="21:00"))
    await env.run(set_party_details, PartyDetailsRequest(case_id, "pp", "paying_parent", PP_DETAILS))
    await env.run(set_safeguarding_profile, SafeguardingRequest(case_id, True, ["rp"], "declared", "email", True))
    request = NotificationRequest(case_id, "rp", "application_received", "application-received",
                                  variables_for("application_received", case_id), channel="sms")
    first = await env.run(send_notification, request)
    again = await env.run(send_notification, request)
    assert first == again and first.channel == "email"  # safe channel wins over the SMS wish
    listed = await notifications_stub.ListForCase(pb.ListForCaseRequest(case_id=case_id))
    assert [n.idempotency_key for n in listed.notifications] == [f"case-{case_id}:application-received"]

    broken = NotificationRequest(case_id, "rp", "payment_received", "payment:1", {"case_reference": case_id})
    with pytest.raises(ApplicationError, match="needs variable 'amount'") as error:
        await env.run(send_notification, broken)
    assert error.value.non_retryable and error.value.type == "InvalidNotification"
