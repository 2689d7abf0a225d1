"""Other paths of the case lifecycle: default decision, closure at the 20th birthday, HMRC
permanent failure, caseworker updates (validated) and the closing update."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import psycopg
import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from tests.helpers.replay import CASE_HISTORIES, record_history
from workflows.case import CaseWorkflow
from workflows.case_messages import (
    CaseInput,
    ChildFacts,
    CloseRequest,
    EducationEnded,
    HoldRequest,
    IncomeReport,
    NoteRequest,
    ReleaseRequest,
    SafeguardingFlag,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")


def _input(case_id: str, paying: str, children: list[ChildFacts] | None = None) -> CaseInput:
    return CaseInput(case_id=case_id, application_date="2025-01-10", receiving_parent_id=f"rp-{case_id}",
                     paying_parent_id=paying, children=children or [ChildFacts("c-1", "2015-03-01")],
                     publish_search_attributes=False)


async def _start(case_env, children=None, missing=False, down=False, income=2_600_000):
    case_id = f"p-{uuid.uuid4().hex[:8]}"
    paying = f"pp-{case_id}"
    hmrc = case_env["hmrc"]
    if missing:
        hmrc.missing.add(paying)
    elif down:
        hmrc.down.add(paying)
    else:
        hmrc.incomes[paying] = {"2000-01-01": income}
    handle = await case_env["start"](_input(case_id, paying, children))
    return case_id, handle


async def _rejection(update) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as failed:
        await update
    return str(failed.value.cause)


async def test_missing_information_for_28_days_gives_a_default_decision_until_it_arrives(case_env, database_url) -> None:
    case_id, handle = await _start(case_env, children=[ChildFacts("c-1", "2015-03-01"), ChildFacts("c-2", "2016-03-01")],
                                   missing=True)
    await case_env["env"].sleep(timedelta(days=27))
    view = await handle.query(CaseWorkflow.state)
    assert view.stage == "Assessment" and view.liability is None, "no decision before 28 days"
    await case_env["env"].sleep(timedelta(days=2))
    view = await handle.query(CaseWorkflow.state)
    # £51 a week for 2 qualifying children, from the initial effective date.
    assert (view.stage, view.liability.rate, view.liability.weekly_liability_pence) == ("Active", "default", 5100)
    assert view.liability.effective_date == "2025-01-12"

    await handle.signal(CaseWorkflow.income_received, IncomeReport(annual_pence=2_600_000))
    await case_env["env"].sleep(timedelta(days=1))
    view = await handle.query(CaseWorkflow.state)
    assert (view.liability.rate, view.liability.weekly_liability_pence) == ("basic", 8000)
    # The default decision is revised, not superseded: the calculation on the income applies from
    # the date the default took effect (s.16(3) CSA 1991).
    assert view.liability.effective_date == "2025-01-12"
    with psycopg.connect(database_url) as conn:
        templates = [t for (t,) in conn.execute(
            "SELECT template FROM case_api.notices WHERE case_id = %s AND recipient_party_id = %s ORDER BY created_at",
            (case_id, f"rp-{case_id}"))]
    # With each decision's letter, a payment schedule letter (Direct Pay: to both parents); and the
    # letter saying what the revision adds for the payment already due under the default.
    assert [t for t in templates if t != "payment_schedule"] == ["default_decision", "recalculation", "change_outcome"]
    assert templates.count("payment_schedule") == 2
    await record_history(handle, CASE_HISTORIES, "case_default_decision")


async def test_case_closes_when_the_last_child_turns_20(case_env, database_url) -> None:
    # In full-time education, so qualifying until the day before the 20th birthday (1 March 2025).
    case_id, handle = await _start(case_env, children=[ChildFacts("c-1", "2005-03-01", in_full_time_education=True)])
    outcome = await handle.result()
    assert outcome.stage == "Closed"
    assert (outcome.closure.reason, outcome.closure.closed_on) == ("no_qualifying_child", "2025-03-01")
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT stage, closure_reason, closed_on::text FROM case_api.cases WHERE case_id = %s",
                           (case_id,)).fetchone()
        stops = conn.execute("SELECT body->>'stop_from' FROM case_api.payment_requests "
                             "WHERE case_id = %s AND kind = 'stop_schedule'", (case_id,)).fetchall()
    assert row == ("Closed", "no_qualifying_child", "2025-03-01")
    assert stops == [("2025-03-01",)], "the schedule stops; arrears stay with payments"
    await record_history(handle, CASE_HISTORIES, "case_closed_at_20")


async def test_first_child_leaving_recalculates_for_the_rest(case_env) -> None:
    case_id, handle = await _start(case_env, children=[ChildFacts("c-1", "2009-02-01"), ChildFacts("c-2", "2015-03-01")])
    await case_env["env"].sleep(timedelta(days=3))
    view = await handle.query(CaseWorkflow.state)
    assert view.liability.weekly_liability_pence == 8000          # 2 QC: 16% of £498.63
    # c-1 turns 16 on 1 February 2025, not in education: she qualifies to 31 August (reg 76).
    await case_env["env"].sleep(timedelta(days=(date(2025, 9, 2) - date(2025, 1, 13)).days))
    view = await handle.query(CaseWorkflow.state)
    assert (view.liability.weekly_liability_pence, view.liability.effective_date) == (6000, "2025-09-01")
    assert view.stage == "Active"


async def test_hmrc_permanent_failure_routes_the_case_to_a_caseworker(case_env, database_url) -> None:
    case_id, handle = await _start(case_env, down=True)
    await case_env["env"].sleep(timedelta(days=1))
    view = await handle.query(CaseWorkflow.state)
    assert view.needs_caseworker and "HMRC" in view.caseworker_reason
    assert view.stage == "Assessment"
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT needs_caseworker, caseworker_reason, sla_due_at IS NOT NULL FROM case_api.cases "
                           "WHERE case_id = %s", (case_id,)).fetchone()
    assert row is not None, f"case {case_id} is not in the read model"
    assert row[0] is True and "HMRC" in row[1] and row[2]


async def test_caseworker_updates_are_validated_and_closing_returns_the_outcome(case_env, database_url) -> None:
    case_id, handle = await _start(case_env)
    await case_env["env"].sleep(timedelta(days=3))
    assert "text is required" in await _rejection(handle.execute_update(CaseWorkflow.add_note, NoteRequest(text="  ", author="cw-1")))
    assert "not on hold" in await _rejection(handle.execute_update(CaseWorkflow.release_hold, ReleaseRequest(actor="cw-1")))
    assert "reason must be one of" in await _rejection(
        handle.execute_update(CaseWorkflow.close_case, CloseRequest(reason="bored", actor="cw-1")))
    # A person typing JSON with a misspelt key gets an error, not a silently dropped field.
    assert "Failed decoding arguments" in await _rejection(
        handle.execute_update("add_note", {"text": "hi", "author": "cw-1", "urgent": True}))
    assert "Failed decoding" not in await _rejection(
        handle.execute_update("add_note", {"text": "", "author": "cw-1"})), "known keys decode"
    held = await handle.execute_update(CaseWorkflow.put_on_hold, HoldRequest(reason="awaiting court papers", actor="cw-1"))
    assert held.outcome == "on hold"
    closed = await handle.execute_update(CaseWorkflow.close_case,
                                         CloseRequest(reason="receiving_parent_request", actor="cw-1"))
    assert closed.outcome == "closed" and closed.closed_on == "2025-01-13"
    outcome = await handle.result()
    assert outcome.closure.reason == "receiving_parent_request"
    history = await handle.fetch_history()
    rejected = [e for e in history.events if e.HasField("workflow_execution_update_rejected_event_attributes")]
    assert not rejected, "rejected updates leave nothing in history"
    await record_history(handle, CASE_HISTORIES, "case_hold_and_close")


async def test_history_bound_continues_as_new_with_state_carried(case_env, database_url) -> None:
    case_id = f"p-{uuid.uuid4().hex[:8]}"
    paying = f"pp-{case_id}"
    case_env["hmrc"].incomes[paying] = {"2000-01-01": 2_600_000}
    case = _input(case_id, paying)
    case.max_events_per_run = 120
    handle = await case_env["start"](case)
    await case_env["env"].sleep(timedelta(days=3))
    latest = case_env["client"].get_workflow_handle(handle.id)
    for n in range(15):
        await latest.execute_update(CaseWorkflow.add_note, NoteRequest(text=f"note {n}", author="cw-1"))
        await case_env["env"].sleep(timedelta(hours=1))
    view = await latest.query(CaseWorkflow.state)
    assert view.runs >= 2, "a long history continues as new between reviews"
    assert (view.stage, view.initial_effective_date, view.liability.weekly_liability_pence) == ("Active", "2025-01-12", 6000)
    first = case_env["client"].get_workflow_handle(handle.id, run_id=handle.first_execution_run_id)
    # The bound is checked between steps, so a run ends a few events past it: the step that crossed
    # it (a note's update and the read-model write) and the closing continue-as-new.
    assert len((await first.fetch_history()).events) <= 135
    with psycopg.connect(database_url) as conn:
        notes = conn.execute("SELECT count(*) FROM case_api.timeline WHERE case_id = %s AND kind = 'note'",
                             (case_id,)).fetchone()
    assert notes == (15,), "no note lost across continue-as-new"


async def test_leaving_education_ends_the_last_child_and_closes_the_case(case_env) -> None:
    case_id, handle = await _start(case_env, children=[ChildFacts("c-1", "2007-03-01", in_full_time_education=True)])
    await case_env["env"].sleep(timedelta(days=5))
    await handle.signal(CaseWorkflow.education_ended, EducationEnded(child_id="c-1", on_date="2025-02-01"))
    outcome = await handle.result()
    # She qualifies to the terminal date after leaving, 28 February 2025 (SI 2021/738).
    assert (outcome.closure.reason, outcome.closure.closed_on) == ("no_qualifying_child", "2025-03-01")


async def test_hold_stops_the_annual_review_until_released(case_env) -> None:
    case_id, handle = await _start(case_env)
    await case_env["env"].sleep(timedelta(days=3))
    latest = case_env["client"].get_workflow_handle(handle.id)
    await latest.execute_update(CaseWorkflow.put_on_hold, HoldRequest(reason="fraud check", actor="cw-1"))
    await case_env["env"].sleep(timedelta(days=400))
    view = await latest.query(CaseWorkflow.state)
    assert view.on_hold and view.reviews_done == 0 and view.stage == "Active"
    await latest.execute_update(CaseWorkflow.release_hold, ReleaseRequest(actor="cw-1"))
    await case_env["env"].sleep(timedelta(days=1))
    view = await case_env["client"].get_workflow_handle(handle.id).query(CaseWorkflow.state)
    assert not view.on_hold and view.reviews_done == 1


async def test_transient_hmrc_failures_are_retried(case_env) -> None:
    case_id = f"p-{uuid.uuid4().hex[:8]}"
    paying = f"pp-{case_id}"
    case_env["hmrc"].incomes[paying] = {"2000-01-01": 2_600_000}
    case_env["hmrc"].flaky[paying] = 2
    handle = await case_env["start"](_input(case_id, paying))
    await case_env["env"].sleep(timedelta(days=3))
    view = await handle.query(CaseWorkflow.state)
    assert (view.stage, view.needs_caseworker, view.liability.rate) == ("Active", False, "basic")
    assert [call for call in case_env["hmrc"].income_calls if call[0] == paying] == [(paying, "2025-01-10")] * 3


async def test_close_case_on_a_case_continuing_as_new_on_its_history_bound(case_env) -> None:
    case_id = f"p-{uuid.uuid4().hex[:8]}"
    paying = f"pp-{case_id}"
    case_env["hmrc"].incomes[paying] = {"2000-01-01": 2_600_000}
    case = _input(case_id, paying)
    case.max_events_per_run = 10  # already past the bound when the case becomes active
    handle = await case_env["start"](case)
    await case_env["env"].sleep(timedelta(days=3))
    latest = case_env["client"].get_workflow_handle(handle.id)
    closed = await latest.execute_update(CaseWorkflow.close_case, CloseRequest(reason="party_left_uk", actor="cw-1"))
    assert closed.outcome == "closed"
    outcome = await case_env["client"].get_workflow_handle_for(CaseWorkflow.run, handle.id).result()
    assert outcome.closure.reason == "party_left_uk"


class _RefusingNotices:
    """A notifications service that refuses every letter for good (e.g. a template it lacks)."""

    async def send_all(self, notices) -> None:
        raise ApplicationError("template variable missing", non_retryable=True)


@pytest.mark.parametrize("case_notices", [_RefusingNotices()])
async def test_a_refused_decision_letter_routes_the_case_to_a_caseworker(case_env) -> None:
    case_id, handle = await _start(case_env)
    await case_env["env"].sleep(timedelta(days=5))
    view = await handle.query(CaseWorkflow.state)
    assert view.needs_caseworker and "refused" in view.caseworker_reason
    assert view.liability is not None  # the decision itself is kept for the caseworker
    description = await handle.describe()
    assert description.status == WorkflowExecutionStatus.RUNNING


async def test_caseworker_flags_safeguarding_after_application(case_env, database_url) -> None:
    case_id, handle = await _start(case_env)
    await case_env["env"].sleep(timedelta(days=1))
    flagged = await handle.execute_update(CaseWorkflow.flag_safeguarding,
                                          SafeguardingFlag(reason="disclosed on a call", actor="cw-9"))
    assert flagged.outcome == "safeguarded"
    assert (await handle.query(CaseWorkflow.state)).safeguarded
    assert "already has a safeguarding profile" in await _rejection(
        handle.execute_update(CaseWorkflow.flag_safeguarding, SafeguardingFlag(reason="again", actor="cw-9")))
    assert "reason is required" in await _rejection(
        handle.execute_update(CaseWorkflow.flag_safeguarding, SafeguardingFlag(reason=" ", actor="cw-9")))
    await case_env["env"].sleep(timedelta(days=1))
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT safeguarded FROM case_api.cases WHERE case_id = %s", (case_id,)).fetchone() == (True,)
        texts = [t for (t,) in conn.execute("SELECT text FROM case_api.timeline WHERE case_id = %s", (case_id,))]
    assert "Safeguarding profile set by cw-9" in texts
    assert not any("disclosed" in t for t in texts)  # the reason stays with staff
