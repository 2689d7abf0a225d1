"""The activity classes built with fakes, as a test builds them; the names the worker registers
(recorded in every history); and what importing a workflow loads."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from typing import Any

import pytest
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.adapters.hmrc import HmrcIncome, HmrcPermanentFailure, HmrcUnavailable
from activities.case_decision import DecisionActivities
from activities.case_messages import (
    PERMANENT_FAILURE_TYPE,
    AddressCheck,
    CaseNotice,
    CaseSnapshot,
    DecisionWrites,
    IncomeRequest,
    ScheduleRequest,
    StopScheduleRequest,
)
from activities.case_notifications import CaseNoticeActivities
from activities.case_payments import CasePaymentActivities
from activities.case_records import CaseRecordActivities
from activities.hmrc import HmrcActivities
from activities.payments import PaymentsActivities
from activities.payments_messages import DisbursementRequest
from activities.payments_messages import ScheduleRequest as LedgerScheduleRequest
from cms.config import REPO_ROOT, TASK_QUEUE_CASES, TASK_QUEUE_NOTIFICATIONS, TASK_QUEUE_PAYMENTS, Settings
from cms.grpc_client import Channels
from cms.worker_catalog import build_activities

in_loop = pytest.mark.asyncio(loop_scope="session")

# The activity type names in recorded histories: a worker that registers another name leaves
# every running case's next activity unanswered.
REGISTERED = {
    TASK_QUEUE_CASES: {"sync_case_record", "verify_paying_parent_address", "request_hmrc_income", "send_case_notices",
                       "create_payment_schedule", "stop_payment_schedule", "write_decision", "record_change_opened",
                       "record_change_status", "schedule_payment_change", "notify_parents_of_change",
                       "record_change_cleared", "record_change_decision", "record_change_arrears"},
    TASK_QUEUE_PAYMENTS: {"charge_period", "check_period", "disburse", "post_enforcement_charge", "create_schedule",
                          "report_direct_payment", "reconcile"},
    TASK_QUEUE_NOTIFICATIONS: {"send_notification", "set_party_details", "set_safeguarding_profile"},
}


def _activity_name(method: Any) -> str:
    # The SDK keeps the definition on the function; it has no public reader for it.
    name = activity._Definition.must_from_callable(method).name
    assert name is not None, "every registered activity has a name"
    return name


@pytest.mark.parametrize("grpc_hand_overs", [False, True])
def test_the_worker_registers_every_activity_under_its_recorded_name(grpc_hand_overs: bool) -> None:
    settings = Settings(ports={"payments": 1, "notifications": 2}, case_payments_via_grpc=grpc_hand_overs,
                        case_notices_via_notifications=grpc_hand_overs)
    built = build_activities(settings, pool=object(), channels=Channels())  # type: ignore[arg-type]  # never opened
    assert {queue: {_activity_name(method) for method in methods} for queue, methods in built.items()} == REGISTERED
    assert all(len(methods) == len(REGISTERED[queue]) for queue, methods in built.items())


# --- fakes ------------------------------------------------------------------------------------

class _Hmrc:
    def __init__(self, failure: Exception | None = None):
        self._failure = failure

    async def verify_address(self, party_id: str) -> bool:
        if self._failure:
            raise self._failure
        return True

    async def latest_annual_income(self, party_id: str, requested_on: str) -> HmrcIncome:
        if self._failure:
            raise self._failure
        return HmrcIncome(True, 2_600_000, "2025-26")


@in_loop
async def test_hmrc_answers_and_a_permanent_failure_is_final_while_a_transient_one_is_retried() -> None:
    answer = await HmrcActivities(_Hmrc()).request_hmrc_income(IncomeRequest("c-1", "pp-1", "2026-04-01"))
    assert (answer.found, answer.annual_pence, answer.tax_year) == (True, 2_600_000, "2025-26")
    with pytest.raises(ApplicationError) as permanent:
        await HmrcActivities(_Hmrc(HmrcPermanentFailure("identity not matched"))).verify_paying_parent_address(
            AddressCheck("c-1", "pp-1"))
    assert (permanent.value.type, permanent.value.non_retryable) == (PERMANENT_FAILURE_TYPE, True)
    with pytest.raises(HmrcUnavailable):   # an ordinary exception: Temporal retries it
        await HmrcActivities(_Hmrc(HmrcUnavailable("timed out"))).request_hmrc_income(
            IncomeRequest("c-1", "pp-1", "2026-04-01"))


class _Letters:
    def __init__(self, log: list[str]):
        self._log = log

    async def send_all(self, notices: list[CaseNotice]) -> None:
        self._log += [f"letter {notice.recipient_party_id}" for notice in notices]


class _Schedules:
    def __init__(self, log: list[str]):
        self._log = log

    async def create_schedule(self, request: ScheduleRequest) -> None:
        self._log.append(f"schedule {request.version}")

    async def stop_schedule(self, request: StopScheduleRequest) -> None:
        self._log.append("stop")


class _Records(CaseRecordActivities):
    def __init__(self, log: list[str]):
        self._log = log

    async def sync_case_record(self, snapshot: CaseSnapshot) -> None:
        self._log.append(f"record {snapshot.stage}")


def _schedule(version: int) -> ScheduleRequest:
    return ScheduleRequest(f"case-c-1/schedule-{version}", "c-1", version, "collect_and_pay", "monthly", "2026-04-01",
                           5000, 6000, 26000, 26000, 12, "2026-04-01", 312000)


@in_loop
async def test_a_decision_writes_letters_then_the_schedule_then_the_record() -> None:
    log: list[str] = []
    decisions = DecisionActivities(CaseNoticeActivities(_Letters(log)), CasePaymentActivities(_Schedules(log)),
                                   _Records(log))
    snapshot = CaseSnapshot("c-1", "Active", "collect_and_pay", False, "2026-03-01", "2026-04-01")
    letters = [CaseNotice(f"case-c-1/calculation/{who}", "c-1", who, "calculation") for who in ("pp-1", "rp-1")]
    await decisions.write_decision(DecisionWrites(snapshot, letters, _schedule(1)))
    assert log == ["letter pp-1", "letter rp-1", "schedule 1", "record Active"]
    log.clear()
    await decisions.write_decision(DecisionWrites(snapshot))
    assert log == ["record Active"]


class _Ledger:
    """The payments service client: its `stub` RPCs answer from here and are recorded."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    @property
    def stub(self) -> _Ledger:
        return self

    async def call(self, method: Any, request: Any, timeout_seconds: float = 20.0) -> Any:
        self.calls.append((method.__name__, request))
        return await method(request)

    async def Disburse(self, request: Any) -> Any:
        return dataclasses.make_dataclass("Reply", ["amount_pence", "due_by", "bank_reference"])(
            4800, "2026-01-13", "DISB-1")


@in_loop
async def test_a_disbursement_is_keyed_by_workflow_and_business_key_and_bad_pence_never_reach_payments() -> None:
    ledger = _Ledger()
    payments = PaymentsActivities(ledger)  # type: ignore[arg-type]  # a fake of the service client
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, workflow_id="case-c-1/collection-3")
    for _ in range(2):   # a retry sends the same key
        done = await env.run(payments.disburse, DisbursementRequest("c-1", "2026-01-09", "disburse-3"))
        assert (done.amount_pence, done.due_by, done.bank_reference) == (4800, "2026-01-13", "DISB-1")
    assert [request.idempotency_key for _, request in ledger.calls] == ["case-c-1/collection-3/disburse-3"] * 2
    with pytest.raises(ApplicationError) as refused:
        await env.run(payments.create_schedule, LedgerScheduleRequest(
            "c-1", "collect_and_pay", "weekly", "direct_debit", "2026-01-05", 50.5, 0, "calc-1"))  # type: ignore[arg-type]
    assert (refused.value.type, refused.value.non_retryable) == ("InvalidAmount", True)
    assert len(ledger.calls) == 2


# --- what a workflow loads --------------------------------------------------------------------

def _modules_after(statement: str) -> set[str]:
    script = f"import sys\nbefore = set(sys.modules)\n{statement}\nimport json\n" \
             "print(json.dumps(sorted(set(sys.modules) - before)))"
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout))


def test_activity_messages_need_only_the_standard_library() -> None:
    loaded = _modules_after("import activities.case_messages, activities.change_messages, "
                            "activities.payments_messages, activities.notification_messages")
    ours = {name for name in loaded if name.split(".")[0] == "activities"}
    assert ours == {"activities", "activities.case_messages", "activities.change_messages",
                    "activities.payments_messages", "activities.notification_messages"}
    assert {name.split(".")[0] for name in loaded - ours} <= set(sys.stdlib_module_names)


def test_importing_the_workflows_loads_neither_the_database_driver_nor_our_grpc_clients() -> None:
    loaded = _modules_after("import workflows.case, workflows.change, workflows.payments")
    assert "workflows.case" in loaded
    assert not {name for name in loaded if name.split(".")[0] in ("psycopg", "psycopg_pool")}
    assert not {name for name in loaded if name == "cms.grpc_client" or
                (name.startswith("cms_proto.") and name.endswith("_pb2_grpc"))}
