"""Dates that decide a case's liability, on the real CaseWorkflow (time-skipping server, real
PostgreSQL read model): a caseworker's closure from the date of the event or the day the receiving
parent asked for (reg 18(3)(b)-(c), Sch 1 para 16, s.4(5)), and the first Collect & Pay
collection 10 working days after the payment schedule letter, the liability before it spread as
initial arrears (SI 2012/2785 reg 4)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import psycopg
import pytest
from temporalio.client import WorkflowUpdateFailedError

from tests.helpers.replay import CASE_HISTORIES, record_history
from workflows.case import CaseWorkflow
from workflows.case_messages import CaseInput, CaseQuery, ChildFacts, CloseRequest

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def _active_case(case_env, prefix: str, **overrides):
    """Applied 10 January 2025 (a Friday), £26,000 a year, one child: £60 a week (12% of £498.63)
    from the initial effective date, Sunday 12 January."""
    case_id = f"{prefix}-{uuid.uuid4().hex[:8]}"
    paying = f"pp-{case_id}"
    case_env["hmrc"].incomes[paying] = {"2000-01-01": 2_600_000}
    handle = await case_env["start"](CaseInput(**{
        **dict(case_id=case_id, application_date="2025-01-10", receiving_parent_id=f"rp-{case_id}",
               paying_parent_id=paying, children=[ChildFacts("c-1", "2015-03-01")], publish_search_attributes=False),
        **overrides}))
    await case_env["env"].sleep(timedelta(days=3))
    view = await handle.query(CaseWorkflow.state)
    assert (view.stage, view.initial_effective_date) == ("Active", "2025-01-12")
    return case_id, handle


def _rows(database_url: str, sql: str, *args):
    with psycopg.connect(database_url) as conn:
        return conn.execute(sql, args).fetchall()


async def _refusal(handle, request: CloseRequest) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(CaseWorkflow.close_case, request)
    return str(refused.value.cause)


async def test_a_death_ends_liability_from_its_date_and_what_fell_due_after_it_is_reversed(
        case_env, database_url) -> None:
    case_id, handle = await _active_case(case_env, "died")
    await case_env["env"].sleep(timedelta(days=40))          # today: 21 February 2025
    # Refused, leaving nothing in the history: a date that is not ISO, in the future, before the
    # initial effective date; a receiving parent's request dated in the past.
    assert "not an ISO date" in await _refusal(handle, CloseRequest("paying_parent_died", "cw-1", event_date="3/2/25"))
    assert "in the future" in await _refusal(handle, CloseRequest("paying_parent_died", "cw-1", event_date="2025-02-23"))
    assert "before the initial effective date" in await _refusal(
        handle, CloseRequest("party_left_uk", "cw-1", event_date="2025-01-11"))
    assert "implausibly far ahead" in await _refusal(
        handle, CloseRequest("receiving_parent_request", "cw-1", event_date="9999-12-31"))
    assert "in the past" in await _refusal(
        handle, CloseRequest("receiving_parent_request", "cw-1", event_date="2025-02-10"))

    closed = await handle.execute_update(CaseWorkflow.close_case, CloseRequest(
        "paying_parent_died", "cw-1", note="death certificate seen", event_date="2025-02-03"))
    assert (closed.outcome, closed.closed_on) == ("closed", "2025-02-03")
    outcome = await handle.result()
    assert (outcome.closure.reason, outcome.closure.closed_on) == ("paying_parent_died", "2025-02-03")
    # Payments stops the schedule from the date of death: the February instalment charged for the
    # 12 February period is adjusted back by payments (services/payments/ledger/schedules.py).
    stops = _rows(database_url, "SELECT body->>'stop_from', body->>'reason' FROM case_api.payment_requests "
                                "WHERE case_id = %s AND kind = 'stop_schedule'", case_id)
    assert stops == [("2025-02-03", "paying_parent_died")]
    assert _rows(database_url, "SELECT stage, closed_on::text FROM case_api.cases WHERE case_id = %s", case_id) == \
        [("Closed", "2025-02-03")]
    texts = [e.text for e in await handle.query(CaseWorkflow.timeline, CaseQuery(recent=60))]
    assert any("Liability ends on 2025-02-02" in t and "from 2025-02-03 is reversed" in t for t in texts)
    history = await handle.fetch_history()
    assert not [e for e in history.events if e.HasField("workflow_execution_update_rejected_event_attributes")]
    await record_history(handle, CASE_HISTORIES, "case_closed_from_event_date")


async def test_the_receiving_parents_request_closes_the_case_on_the_day_asked(case_env, database_url) -> None:
    case_id, handle = await _active_case(case_env, "asked")
    closing = await handle.execute_update(CaseWorkflow.close_case, CloseRequest(
        "receiving_parent_request", "cw-2", event_date="2025-01-31"))
    assert (closing.outcome, closing.closed_on) == ("closing", "2025-01-31")
    await case_env["env"].sleep(timedelta(days=10))          # 22 or 23 January: liability still runs
    view = await handle.query(CaseWorkflow.state)
    assert (view.stage, view.closure) == ("Active", None)
    assert "closed or closing" in await _refusal(handle, CloseRequest("party_left_uk", "cw-2"))
    outcome = await handle.result()
    assert (outcome.stage, outcome.closure.closed_on) == ("Closed", "2025-01-31")
    assert _rows(database_url, "SELECT body->>'stop_from' FROM case_api.payment_requests "
                               "WHERE case_id = %s AND kind = 'stop_schedule'", case_id) == [("2025-01-31",)]
    await record_history(handle, CASE_HISTORIES, "case_closed_on_day_asked")


async def test_collect_and_pay_is_first_collected_10_working_days_after_the_schedule_letter(
        case_env, database_url) -> None:
    case_id, handle = await _active_case(case_env, "first", requested_service_type="collect_and_pay",
                                         payment_method="standing_order")
    # Decision and schedule letter on 12 January (Sunday): 10 working days later is Friday
    # 24 January. Monthly periods start on the 12th: the one due 12 January (£260 + £52 fee:
    # 52 × £60 / 12, 52 × £12 / 12) is initial arrears, spread over the 11 instalments from
    # 12 February: £23.63 + £4.72 each (the remainders, 7p and 8p, with the first).
    schedule = _rows(database_url, "SELECT body FROM case_api.payment_requests "
                                   "WHERE case_id = %s AND kind = 'create_schedule'", case_id)[0][0]
    assert (schedule["method"], schedule["first_collection_date"], schedule["first_due_date"]) == \
        ("standing_order", "2025-01-24", "2025-02-12")
    letter = _rows(database_url, "SELECT body->'facts' FROM case_api.notices WHERE case_id = %s AND "
                                 "template = 'payment_schedule' AND recipient_party_id = %s", case_id, f"pp-{case_id}")
    facts = letter[0][0]
    assert (facts["next_due_on"], facts["next_payment_pence"]) == ("2025-02-12", str(26000 + 5200 + 2363 + 7 + 472 + 8))
    assert facts["instalment_pence"] == str(26000 + 5200 + 2363 + 472)
    view = await handle.query(CaseWorkflow.state)
    assert view.missed_payments == 0
    await record_history(handle, CASE_HISTORIES, "case_first_collection")


async def test_a_direct_pay_case_has_no_first_collection(case_env, database_url) -> None:
    case_id, _ = await _active_case(case_env, "dpfirst")
    schedule = _rows(database_url, "SELECT body FROM case_api.payment_requests "
                                   "WHERE case_id = %s AND kind = 'create_schedule'", case_id)[0][0]
    assert (schedule["method"], schedule["first_collection_date"]) == ("direct_debit", "")
