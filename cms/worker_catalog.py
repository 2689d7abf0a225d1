"""The worker's composition root: which workflows and activities run on which task queue, and
the one place the activities are built with their clients. The one place to add a new one.

Each activity class takes what it talks to in its constructor (a database pool, a gRPC
service client, the HMRC adapter); `build_activities` makes one instance of each from the
Settings, and the worker registers their bound methods. Tests build the same classes with fakes
through `case_activities`, `change_activities`, `payment_activities` and
`notification_activities`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import grpc

from activities.adapters.hmrc import FakeHmrc, HmrcAdapter
from activities.case_decision import DecisionActivities
from activities.case_notifications import CaseNoticeActivities, NoticeSender, RecordedAndSentNotices, RecordingNotices
from activities.case_payments import CasePaymentActivities, GrpcPayments, PaymentsGateway, RecordingPayments
from activities.case_records import CaseRecordActivities
from activities.changes import ChangeActivities
from activities.hmrc import HmrcActivities
from activities.notification_messages import INVALID_NOTIFICATION
from activities.notifications import NotificationActivities, NotificationsNoticeSender
from activities.payments import PaymentsActivities
from cms.config import TASK_QUEUE_CASES, TASK_QUEUE_NOTIFICATIONS, TASK_QUEUE_PAYMENTS, Settings
from cms.grpc_client import Channels, ServiceClient
from cms_proto.notifications.v1.notifications_pb2_grpc import NotificationsServiceStub
from cms_proto.payments.v1.payments_pb2_grpc import PaymentsServiceStub
from domain.rulesets import packaged_rule_sets
from workflows import payments as payment_workflows
from workflows.case import CaseWorkflow
from workflows.change import ChangeWorkflow
from workflows.enforcement import EnforcementWorkflow

if TYPE_CHECKING:
    from psycopg_pool import AsyncConnectionPool

Activity = Callable[..., Any]

_WORKFLOWS: dict[str, list[type]] = {
    TASK_QUEUE_CASES: [CaseWorkflow, ChangeWorkflow, EnforcementWorkflow],
    TASK_QUEUE_PAYMENTS: payment_workflows.ALL_WORKFLOWS,
}


def _read_rule_sets() -> None:
    """Workflow code calls the pure calculation and must never be the first to read the rule-set
    files (it would read them inside the sandbox): whatever registers the workflows reads them."""
    packaged_rule_sets()


def workflows_for(queue: str) -> list[type]:
    _read_rule_sets()
    return list(_WORKFLOWS.get(queue, []))


def all_workflows() -> list[type]:
    """Every workflow any queue runs (what the replay tests replay against)."""
    _read_rule_sets()
    return [wf for workflows in _WORKFLOWS.values() for wf in workflows]


# --- the activities of each task queue --------------------------------------------------------

def change_activities(pool: AsyncConnectionPool) -> list[Activity]:
    """A change of circumstances' records (case_api.change_records)."""
    changes = ChangeActivities(pool)
    return [changes.record_change_opened, changes.record_change_status, changes.schedule_payment_change,
            changes.notify_parents_of_change, changes.record_change_cleared, changes.record_change_decision,
            changes.record_change_arrears]


def case_activities(pool: AsyncConnectionPool, hmrc: HmrcAdapter, notices: NoticeSender | None = None,
                    schedules: PaymentsGateway | None = None) -> list[Activity]:
    """Everything on cms-cases: the read model, HMRC, letters, schedules and the changes. Letters
    and schedules are only recorded in the case read model unless `notices` / `schedules` say
    where else they go."""
    _read_rule_sets()   # the tests register CaseWorkflow next to these without workflows_for
    records = CaseRecordActivities(pool)
    hmrc_activities = HmrcActivities(hmrc)
    letters = CaseNoticeActivities(notices or RecordingNotices(pool))
    handovers = CasePaymentActivities(schedules or RecordingPayments(pool))
    decisions = DecisionActivities(letters, handovers, records)
    return [records.sync_case_record, hmrc_activities.verify_paying_parent_address,
            hmrc_activities.request_hmrc_income, letters.send_case_notices, handovers.create_payment_schedule,
            handovers.stop_payment_schedule, decisions.write_decision, *change_activities(pool)]


def payment_activities(payments: ServiceClient[PaymentsServiceStub]) -> list[Activity]:
    """Everything on cms-payments: the ledger's operations the payment workflows call."""
    ledger = PaymentsActivities(payments)
    return [ledger.charge_period, ledger.check_period, ledger.disburse, ledger.post_enforcement_charge,
            ledger.create_schedule, ledger.report_direct_payment, ledger.reconcile]


def notification_activities(notifications: ServiceClient[NotificationsServiceStub]) -> list[Activity]:
    """Everything on cms-notifications."""
    service = NotificationActivities(notifications)
    return [service.send_notification, service.set_party_details, service.set_safeguarding_profile]


# --- the clients ------------------------------------------------------------------------------

def payments_client(address: str, channels: Channels) -> ServiceClient[PaymentsServiceStub]:
    return ServiceClient("payments", address, PaymentsServiceStub, channels)


def notifications_client(address: str, channels: Channels) -> ServiceClient[NotificationsServiceStub]:
    # A request the service refuses as invalid is a notification that can never be sent as asked.
    return ServiceClient("notifications", address, NotificationsServiceStub, channels,
                         error_types={grpc.StatusCode.INVALID_ARGUMENT: INVALID_NOTIFICATION})


def build_activities(settings: Settings, pool: AsyncConnectionPool, channels: Channels) -> dict[str, list[Activity]]:
    """Every activity of the worker by task queue, each class built once from `settings`."""
    payments = payments_client(settings.address_of("payments"), channels)
    notifications = notifications_client(settings.address_of("notifications"), channels)
    notices: NoticeSender = RecordingNotices(pool)
    if settings.case_notices_via_notifications:
        notices = RecordedAndSentNotices(pool, NotificationsNoticeSender(notifications))
    recorded_schedules = RecordingPayments(pool)
    schedules: PaymentsGateway = recorded_schedules
    if settings.case_payments_via_grpc:
        schedules = GrpcPayments(payments, record=recorded_schedules, start_collections=True)
    hmrc = FakeHmrc(max_delay_seconds=settings.hmrc_max_delay_seconds,
                    transient_failure_rate=settings.hmrc_failure_rate)
    return {
        TASK_QUEUE_CASES: case_activities(pool, hmrc, notices, schedules),
        TASK_QUEUE_PAYMENTS: payment_activities(payments),
        TASK_QUEUE_NOTIFICATIONS: notification_activities(notifications),
    }
