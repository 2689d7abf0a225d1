"""One recalculation at a time: a change of circumstances clearing while a payment event moves the
case to Collect & Pay. Both facts reach the case in the same workflow task (the worker is stopped
while they are sent), so the change's handler and the main line's move start together. Each
recalculation must run whole before the next: the schedule versions go to payments once each, in
order, each calculated with the fees of the service type it is handed over on, and the case ends
on Collect & Pay with the new income."""

from __future__ import annotations

import uuid
from datetime import timedelta

import psycopg
import pytest
from temporalio.client import Client
from temporalio.worker import Worker

from cms.config import TASK_QUEUE_CASES
from cms.worker_catalog import case_activities
from domain.calculation import calculate, parse_request
from tests.helpers.codec import codec_data_converter
from tests.helpers.replay import CASE_HISTORIES, record_history
from workflows.case import CaseWorkflow
from workflows.case_messages import CaseInput, ChildFacts
from workflows.change_messages import ChangeOutcome, ReportedChange
from workflows.payments import PAYMENT_EVENT_SIGNAL, PaymentEvent

pytestmark = pytest.mark.asyncio(loop_scope="session")

# Recorded with CMS_RECORD_HISTORIES=1 for the replay tests: a run through "one-recalculation-at-a-time".
HISTORY = "change_clears_while_moving_to_collect_and_pay"
ANNUAL_INCOME = 2_600_000       # £26,000 a year: basic rate, one child
NEW_WEEKLY_INCOME = 70_000      # £700 a week: far more than 25% up


def _missed(case_id: str, n: int, due_date: str) -> PaymentEvent:
    source = f"case-{case_id}/direct-pay-report-{n}"
    return PaymentEvent(f"{source}/direct_pay_missed", case_id, "direct_pay_missed", -1, due_date, 34_666, 0,
                        34_666 * n, source)


def _income_change_cleared(case_id: str, on: str) -> ChangeOutcome:
    """As ChangeWorkflow reports a counted income change when it clears."""
    change = ReportedChange(kind="paying_parent_income", reported_date=on, effective_date=on,
                            details={"weekly_income_pence": NEW_WEEKLY_INCOME})
    return ChangeOutcome(case_id=case_id, n=1, kind="paying_parent_income", outcome="recalculated",
                         reason="The income changed by more than 25%", effective_date=on, new_inputs={},
                         liability=None, weekly_liability_pence=None, adjustment_pence=0, on_time=True,
                         escalated=False, breached=False, cleared_day=on, applied_change=change.as_raw(),
                         reported_date=on)


def _schedules(database_url: str, case_id: str) -> list[dict]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT body FROM case_api.payment_requests WHERE case_id = %s "
                            "AND kind = 'create_schedule' ORDER BY created_at, (body->>'version')::int",
                            (case_id,)).fetchall()
    return [row[0] for row in rows]


def _weekly(weekly_income_pence: int, service_type: str, on: str) -> tuple[int, int]:
    """(weekly liability, what the paying parent pays a week) on the given income and service."""
    from datetime import date

    result = calculate(parse_request({
        "paying_parent": {"gross_weekly_income_pence": weekly_income_pence, "relevant_other_children": 0},
        "receiving_parents": [{"id": "rp", "children": [{"id": "c-1", "shared_care_nights": 0}]}],
        "service_type": service_type}), effective_date=date.fromisoformat(on))
    return result.weekly_liability_pence, result.paying_parent_pays_pence


async def test_a_change_clearing_while_the_case_moves_to_collect_and_pay_recalculates_one_at_a_time(
        time_skipping_env, case_pool, hmrc, database_url) -> None:
    env = time_skipping_env
    client = Client(**{**env.client.config(), "data_converter": codec_data_converter()})
    queue = f"{TASK_QUEUE_CASES}-one-recalc-{uuid.uuid4().hex[:6]}"
    case_id = f"race-{uuid.uuid4().hex[:8]}"
    paying = f"pp-{case_id}"
    hmrc.incomes[paying] = {"2025-01-01": ANNUAL_INCOME}
    case = CaseInput(case_id=case_id, application_date="2025-01-10", paying_parent_id=paying,
                     receiving_parent_id=f"rp-{case_id}", children=[ChildFacts("c-1", "2015-03-01")],
                     publish_search_attributes=False)

    def worker() -> Worker:
        # No sticky cache: the next workflow task goes to the task queue, not to a stopped worker.
        return Worker(client, task_queue=queue, workflows=[CaseWorkflow], activities=case_activities(case_pool, hmrc),
                      max_cached_workflows=0)

    async with worker():
        handle = await client.start_workflow(CaseWorkflow.run, case, id=f"case-{case_id}", task_queue=queue)
        await env.sleep(timedelta(days=3))
        await handle.signal(PAYMENT_EVENT_SIGNAL, _missed(case_id, 1, "2025-02-12"))
        await env.sleep(timedelta(days=30))
        active = await handle.query(CaseWorkflow.state)
    assert (active.stage, active.service_type) == ("Active", "direct_pay")
    today = active.today

    # No worker: both facts wait for the same workflow task.
    await handle.signal(PAYMENT_EVENT_SIGNAL, _missed(case_id, 2, "2025-03-12"))
    await handle.signal("change_cleared", _income_change_cleared(case_id, today))
    try:
        async with worker():
            await env.sleep(timedelta(days=1))
            view = await handle.query(CaseWorkflow.state)
            await record_history(handle, CASE_HISTORIES, HISTORY)
    finally:
        await handle.terminate("test finished")

    switch = view.collect_and_pay_switch
    assert view.service_type == "collect_and_pay" and switch is not None
    schedules = _schedules(database_url, case_id)
    versions = [body["version"] for body in schedules]
    assert versions == [1, 2, 3], "each version handed to payments once, in order"
    initial, change, move = schedules
    # The change is taken in first (its handler started first) on Direct Pay, no fees ...
    assert (change["service_type"], change["effective_from"]) == ("direct_pay", today)
    assert (change["weekly_liability_pence"], change["paying_parent_pays_weekly_pence"]) == \
        _weekly(NEW_WEEKLY_INCOME, "direct_pay", today)
    # ... then the move, on the new income with the Collect & Pay fees, from the next period.
    assert (move["service_type"], move["effective_from"]) == ("collect_and_pay", switch.effective_from)
    assert (move["weekly_liability_pence"], move["paying_parent_pays_weekly_pence"]) == \
        _weekly(NEW_WEEKLY_INCOME, "collect_and_pay", switch.effective_from)
    assert view.liability is not None
    assert view.liability.paying_parent_pays_pence == move["paying_parent_pays_weekly_pence"]
    assert view.liability.effective_date == switch.effective_from
