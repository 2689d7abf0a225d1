"""Which workflows and activities run on which task queue. The one place to add a new one."""

from __future__ import annotations

from collections.abc import Callable

from activities import case_decision, case_notifications, case_payments, case_records, hmrc
from activities import notifications as notification_activities
from activities import payments as payment_activities
from activities.changes import CHANGE_ACTIVITIES
from cms.config import TASK_QUEUE_CASES, TASK_QUEUE_NOTIFICATIONS, TASK_QUEUE_PAYMENTS
from workflows import payments as payment_workflows
from workflows.case import CaseWorkflow
from workflows.change import ChangeWorkflow

_WORKFLOWS: dict[str, list[type]] = {
    TASK_QUEUE_CASES: [CaseWorkflow, ChangeWorkflow],
    TASK_QUEUE_PAYMENTS: payment_workflows.ALL_WORKFLOWS,
}

_ACTIVITIES: dict[str, list[Callable]] = {
    TASK_QUEUE_PAYMENTS: payment_activities.ALL_ACTIVITIES,
    TASK_QUEUE_NOTIFICATIONS: [
        notification_activities.send_notification, notification_activities.set_party_details,
        notification_activities.set_safeguarding_profile,
    ],
    TASK_QUEUE_CASES: [
        case_records.sync_case_record, hmrc.verify_paying_parent_address, hmrc.request_hmrc_income,
        case_notifications.send_case_notices, case_payments.create_payment_schedule,
        case_payments.stop_payment_schedule, case_decision.write_decision, *CHANGE_ACTIVITIES,
    ],
}


def workflows_for(queue: str) -> list[type]:
    return list(_WORKFLOWS.get(queue, []))


def activities_for(queue: str) -> list[Callable]:
    return list(_ACTIVITIES.get(queue, []))


def all_workflows() -> list[type]:
    return [wf for workflows in _WORKFLOWS.values() for wf in workflows]
