"""The activities workflows call: idempotent on workflow id + business key; bad input is final."""

import dataclasses
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.case_messages import CaseNotice
from activities.notification_messages import NotificationRequest, PartyDetailsRequest, SafeguardingRequest
from activities.notifications import NotificationActivities, NotificationsNoticeSender
from cms.grpc_client import Channels, ServiceClient
from cms.worker_catalog import notifications_client
from cms_proto.notifications.v1 import notifications_pb2 as pb
from cms_proto.notifications.v1.notifications_pb2_grpc import NotificationsServiceStub
from tests.notifications.support import PP_DETAILS, RP_DETAILS, variables_for

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(loop_scope="session")
async def service(notifications_address: str) -> AsyncIterator[ServiceClient[NotificationsServiceStub]]:
    """The worker's client of the notifications service under test."""
    channels = Channels()
    yield notifications_client(notifications_address, channels)
    await channels.close()


async def test_send_notification_is_idempotent_per_workflow_and_business_key(notifications_stub, service) -> None:
    activities = NotificationActivities(service)
    case_id = f"C-{uuid.uuid4().hex[:8]}"
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, workflow_id=f"case-{case_id}")
    await env.run(activities.set_party_details, PartyDetailsRequest(
        case_id, "rp", "receiving_parent", RP_DETAILS, channel="sms", safe_from="18:00", safe_until="21:00"))
    await env.run(activities.set_party_details, PartyDetailsRequest(case_id, "pp", "paying_parent", PP_DETAILS))
    await env.run(activities.set_safeguarding_profile,
                  SafeguardingRequest(case_id, True, ["rp"], "declared", "email", True))
    request = NotificationRequest(case_id, "rp", "application_received", "application-received",
                                  variables_for("application_received", case_id), channel="sms")
    first = await env.run(activities.send_notification, request)
    again = await env.run(activities.send_notification, request)
    assert first == again and first.channel == "email"  # safe channel wins over the SMS wish
    listed = await notifications_stub.ListForCase(pb.ListForCaseRequest(case_id=case_id))
    assert [n.idempotency_key for n in listed.notifications] == [f"case-{case_id}:application-received"]

    broken = NotificationRequest(case_id, "rp", "payment_received", "payment:1", {"case_reference": case_id})
    with pytest.raises(ApplicationError, match="needs variable 'amount'") as error:
        await env.run(activities.send_notification, broken)
    assert error.value.non_retryable and error.value.type == "InvalidNotification"


@pytest.mark.parametrize("template,facts,explanation", [
    ("notice_of_application", {"initial_effective_date": "2026-04-01"}, []),
    ("calculation", {"effective_date": "2026-04-01", "rate": "basic", "weekly_liability_pence": "8412",
                     "paying_parent_pays_pence": "8412", "receiving_parent_receives_pence": "8412"},
     ["Gross weekly income £594.52", "Basic rate 16%"]),
    ("default_decision", {"effective_date": "2026-04-01", "rate": "default", "weekly_liability_pence": "5100"},
     ["Default decision: 2 children"]),
    ("closure", {"closed_on": "2030-01-01", "reason": "last_child_stopped_qualifying"}, []),
    ("recalculation", {"effective_date": "2026-06-01", "rate": "basic", "weekly_liability_pence": "9000",
                       "paying_parent_pays_pence": "9000", "receiving_parent_receives_pence": "9000"},
     ["Income information received", "Basic rate 16%"]),
    ("change_outcome", {"change_kind": "income change", "reported_on": "2026-05-01", "outcome": "no change",
                        "outcome_reason": ""}, []),
])
async def test_the_case_workflows_notices_render_through_the_service(
        notifications_stub, service, template, facts, explanation) -> None:
    case_id = f"C-{uuid.uuid4().hex[:8]}"
    await ActivityEnvironment().run(NotificationActivities(service).set_party_details,
                                    PartyDetailsRequest(case_id, "pp-1", "paying_parent", PP_DETAILS))
    sender = NotificationsNoticeSender(service)
    notice = CaseNotice(f"case-{case_id}/{template}/pp-1", case_id, "pp-1", template, facts, explanation)
    await sender.send(notice)
    await sender.send(notice)
    listed = await notifications_stub.ListForCase(pb.ListForCaseRequest(case_id=case_id))
    assert len(listed.notifications) == 1
