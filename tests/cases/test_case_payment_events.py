"""Payment events from payments reach the case: a missed payment opens a collections task due
in 7 case days, a part payment is recorded, a repeated delivery is dropped, a malformed or
misaddressed event changes nothing. Signals are sent here as payments' workflows send them."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import psycopg
import pytest

from tests.helpers.replay import CASE_HISTORIES, record_history
from workflows.case import CaseWorkflow
from workflows.case_messages import CaseInput, CaseQuery, ChildFacts
from workflows.payments import PAYMENT_EVENT_SIGNAL, PaymentEvent

pytestmark = pytest.mark.asyncio(loop_scope="session")


def _event(case_id: str, kind: str, n: int, paid: int, arrears: int, event_id: str = "") -> PaymentEvent:
    source = f"case-{case_id}/collection-{n}"
    return PaymentEvent(event_id or f"{source}/{kind}", case_id, kind, n, "2025-02-11", 34666, paid, arrears, source)


def _read_model_sla(database_url: str, case_id: str):
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT sla_due_at FROM case_api.cases WHERE case_id = %s", (case_id,)).fetchone()
    assert row is not None, f"case {case_id} is not in the read model"
    return row[0]


async def test_missed_and_part_payments_are_recorded_once_and_a_missed_one_goes_to_collections(
        case_env, database_url) -> None:
    env = case_env["env"]
    case_id = f"pay-{uuid.uuid4().hex[:8]}"
    paying = f"pp-{case_id}"
    case_env["hmrc"].incomes[paying] = {"2025-01-01": 2_600_000}
    handle = await case_env["start"](CaseInput(
        case_id=case_id, application_date="2025-01-10", paying_parent_id=paying,
        children=[ChildFacts("c-1", "2015-03-01")], requested_service_type="collect_and_pay",
        publish_search_attributes=False))
    await env.sleep(timedelta(days=3))
    active = await handle.query(CaseWorkflow.state)
    assert active.stage == "Active"
    sla_while_active = _read_model_sla(database_url, case_id)   # due at the next review

    part = _event(case_id, "part_paid", 0, 20000, 14666)
    missed = _event(case_id, "missed", 1, 0, 49332)
    for event in (part, missed, missed, part):                      # each delivered twice
        await handle.signal(PAYMENT_EVENT_SIGNAL, event)
    await handle.signal(PAYMENT_EVENT_SIGNAL, _event("another-case", "missed", 2, 0, 1, "x/1"))
    await handle.signal(PAYMENT_EVENT_SIGNAL, _event(case_id, "missed", 3, -5, 1, "x/2"))

    view = await handle.query(CaseWorkflow.state)
    assert (view.arrears_pence, view.missed_payments) == (49332, 1)
    assert view.needs_caseworker and view.caseworker_reason == "Missed payment: contact the paying parent"
    timeline = await handle.query(CaseWorkflow.timeline, CaseQuery(recent=50))
    kinds = [entry.kind for entry in timeline]
    assert kinds.count("payment_part_paid") == 1 and kinds.count("payment_missed") == 1
    assert "Missed payment: £0.00 paid of £346.66 due 2025-02-11; arrears £493.32" in [e.text for e in timeline]

    await env.sleep(timedelta(days=1))   # the read model catches up
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT needs_caseworker, caseworker_reason FROM case_api.cases "
                           "WHERE case_id = %s", (case_id,)).fetchone()
    assert row is not None, f"case {case_id} is not in the read model"
    needs, reason = row
    assert needs and reason.startswith("Missed payment")
    # Now due 7 case days after the day the event arrived, instead of at the next review.
    contact_by = date.fromisoformat(view.today) + timedelta(days=7)
    moved = (date.fromisoformat(active.next_review_date) - contact_by).days
    assert sla_while_active - _read_model_sla(database_url, case_id) == timedelta(days=moved)

    # A caseworker's contact closes the task; the arrears stay.
    await handle.execute_update(CaseWorkflow.complete_manual_review, {"actor": "cw-1", "note": "called"})
    view = await handle.query(CaseWorkflow.state)
    assert not view.needs_caseworker and view.arrears_pence == 49332
    await record_history(handle, CASE_HISTORIES, "case_payment_events")
