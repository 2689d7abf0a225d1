"""Direct Pay to Collect & Pay (docs/rules.md section 10): a pattern of missed Direct Pay payments
moves the case by itself; a caseworker can move it from the first miss with the validated
`switch_to_collect_and_pay` update. Either way the liability is recalculated with the Collect &
Pay fees from the next collection period, both parents get a letter, payments gets a new schedule
version on Collect & Pay and the timeline says what happened. Signals are sent as payments'
DirectPayReportWorkflow sends them."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, timedelta
from fractions import Fraction

import psycopg
import pytest
from temporalio.client import WorkflowUpdateFailedError, WorkflowUpdateStage
from temporalio.service import RPCError

from domain.lifecycle import add_months
from domain.money import round_half_up
from tests.helpers.auth import caller_channel
from tests.helpers.replay import CASE_HISTORIES, record_history
from workflows.case import CaseWorkflow
from workflows.case_messages import (
    CaseInput,
    CaseQuery,
    CaseState,
    ChildFacts,
    ClosureRecord,
    CollectAndPayRequest,
    LiabilityRecord,
    ServiceSwitch,
)
from workflows.payments import PAYMENT_EVENT_SIGNAL, PaymentEvent

pytestmark = pytest.mark.asyncio(loop_scope="session")

ANNUAL_INCOME = 2_600_000   # £26,000 a year: basic rate, one child


def _dp_missed(case_id: str, n: int, due_date: str, due: int = 34666, arrears: int = 34666) -> PaymentEvent:
    source = f"case-{case_id}/direct-pay-report-{n}"
    return PaymentEvent(f"{source}/direct_pay_missed", case_id, "direct_pay_missed", -1, due_date, due, 0,
                        arrears, source)


async def _active_case(case_env, prefix: str, **overrides):
    case_id = f"{prefix}-{uuid.uuid4().hex[:8]}"
    paying = f"pp-{case_id}"
    case_env["hmrc"].incomes[paying] = {"2025-01-01": ANNUAL_INCOME}
    fields = dict(case_id=case_id, application_date="2025-01-10", paying_parent_id=paying,
                  receiving_parent_id=f"rp-{case_id}", children=[ChildFacts("c-1", "2015-03-01")],
                  publish_search_attributes=False)
    handle = await case_env["start"](CaseInput(**{**fields, **overrides}))
    await case_env["env"].sleep(timedelta(days=3))
    view = await handle.query(CaseWorkflow.state)
    assert view.stage == "Active"
    return case_id, handle, view


def _next_period_start(initial_effective: str, today: str) -> str:
    """Monthly periods counted from the initial effective date: the first starting on or after today."""
    start, k = date.fromisoformat(initial_effective), 0
    while add_months(start, k) < date.fromisoformat(today):
        k += 1
    return add_months(start, k).isoformat()


def _rows(database_url: str, sql: str, *args):
    with psycopg.connect(database_url) as conn:
        return conn.execute(sql, args).fetchall()


def _latest_schedule(database_url: str, case_id: str) -> dict:
    return _rows(database_url, "SELECT body FROM case_api.payment_requests "
                               "WHERE case_id = %s AND kind = 'create_schedule' "
                               "ORDER BY (body->>'version')::int DESC LIMIT 1", case_id)[0][0]


async def _refused(handle, payload) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(CaseWorkflow.switch_to_collect_and_pay, payload)
    return str(refused.value.cause)


async def test_a_second_missed_direct_pay_payment_within_3_months_moves_the_case_to_collect_and_pay(
        case_env, database_url) -> None:
    env = case_env["env"]
    case_id, handle, active = await _active_case(case_env, "dpsw")
    assert active.service_type == "direct_pay" and active.liability.paying_parent_pays_pence == \
        active.liability.weekly_liability_pence
    weekly = active.liability.weekly_liability_pence

    # One miss is a conversation: the caseworker is told, and told the move is theirs to make.
    first = _dp_missed(case_id, 1, "2025-02-11")
    await handle.signal(PAYMENT_EVENT_SIGNAL, first)
    view = await handle.query(CaseWorkflow.state)
    assert view.service_type == "direct_pay" and view.collect_and_pay_switch is None
    assert view.needs_caseworker and "switch_to_collect_and_pay" in view.caseworker_reason
    await handle.signal(PAYMENT_EVENT_SIGNAL, first)     # a repeated delivery is no second miss
    assert (await handle.query(CaseWorkflow.state)).service_type == "direct_pay"
    # The first miss also brings the written warning a move needs (SI 2014/1386 reg 6): only a miss
    # reported after it counts.
    await env.sleep(timedelta(days=1))
    timeline = await handle.query(CaseWorkflow.timeline, CaseQuery(recent=50))
    assert [entry.kind for entry in timeline].count("direct_pay_warning") == 1

    # A second one falling due within 3 months is a pattern: the case moves by itself.
    await handle.signal(PAYMENT_EVENT_SIGNAL, _dp_missed(case_id, 2, "2025-03-11", arrears=69332))
    await env.sleep(timedelta(days=1))
    view = await handle.query(CaseWorkflow.state)
    switch = view.collect_and_pay_switch
    assert view.service_type == "collect_and_pay"
    assert (switch.reason, switch.actor) == ("direct_pay_missed", "system")
    assert switch.effective_from == _next_period_start(view.initial_effective_date, switch.decided_on)
    fee_pp = round_half_up(Fraction(weekly * 20, 100))
    fee_rp = round_half_up(Fraction(weekly * 4, 100))
    assert view.liability.weekly_liability_pence == weekly
    assert view.liability.paying_parent_pays_pence == weekly + fee_pp
    assert view.liability.receiving_parent_receives_pence == weekly - fee_rp
    assert view.liability.effective_date == switch.effective_from
    assert view.needs_caseworker and "moving to Collect & Pay" in view.caseworker_reason

    # Payments: a new schedule version on Collect & Pay with the fees, from the period start.
    schedule = _latest_schedule(database_url, case_id)
    assert (schedule["version"], schedule["service_type"], schedule["effective_from"]) == \
        (2, "collect_and_pay", switch.effective_from)
    assert (schedule["paying_parent_fee_pence"], schedule["receiving_parent_fee_pence"]) == (fee_pp, fee_rp)
    assert schedule["paying_parent_pays_weekly_pence"] == weekly + fee_pp

    # Both parents: a letter explaining the move, with the new amounts.
    letters = _rows(database_url, "SELECT recipient_party_id, body FROM case_api.notices "
                                  "WHERE case_id = %s AND template = 'service_type_change'", case_id)
    assert sorted(r for r, _ in letters) == sorted([f"pp-{case_id}", f"rp-{case_id}"])
    facts = letters[0][1]["facts"]
    assert facts["switch_reason"] == "Direct Pay payments were reported missed"
    assert (facts["effective_date"], facts["paying_parent_pays_pence"]) == (switch.effective_from, str(weekly + fee_pp))
    assert letters[0][1]["explanation"]

    # The timeline, the read model (ServiceType is published from the same state).
    timeline = await handle.query(CaseWorkflow.timeline, CaseQuery(recent=50))
    kinds = [entry.kind for entry in timeline]
    decided = kinds.index("collect_and_pay_decided")
    assert kinds[decided:].index("service_type") < kinds[decided:].index("calculation") \
        < kinds[decided:].index("schedule")
    moved_entry = timeline[kinds.index("service_type", decided)]
    assert f"Service type: Collect & Pay from {switch.effective_from}" in moved_entry.text
    assert _rows(database_url, "SELECT service_type FROM case_api.cases WHERE case_id = %s", case_id) == \
        [("collect_and_pay",)]

    # Already on Collect & Pay: a caseworker's move is refused, a further miss moves nothing.
    assert "already on Collect & Pay" in await _refused(handle, CollectAndPayRequest("direct_pay_missed", "cw-1"))
    await handle.signal(PAYMENT_EVENT_SIGNAL, _dp_missed(case_id, 3, "2025-04-11"))
    await env.sleep(timedelta(days=1))
    assert _latest_schedule(database_url, case_id)["version"] == 2
    await record_history(handle, CASE_HISTORIES, "case_direct_pay_switch")


async def test_misses_further_apart_than_3_months_are_no_pattern(case_env) -> None:
    env = case_env["env"]
    case_id, handle, _ = await _active_case(case_env, "dpfar")
    await handle.signal(PAYMENT_EVENT_SIGNAL, _dp_missed(case_id, 1, "2025-02-11"))
    await handle.signal(PAYMENT_EVENT_SIGNAL, _dp_missed(case_id, 2, "2025-05-12"))   # 3 months and a day
    await env.sleep(timedelta(days=1))
    view = await handle.query(CaseWorkflow.state)
    assert view.service_type == "direct_pay" and view.missed_payments == 2
    await handle.signal(PAYMENT_EVENT_SIGNAL, _dp_missed(case_id, 3, "2025-08-12"))   # within 3 months of the second
    await env.sleep(timedelta(days=1))
    assert (await handle.query(CaseWorkflow.state)).service_type == "collect_and_pay"


async def test_a_case_on_hold_is_not_moved_by_itself_the_caseworker_is_told(case_env) -> None:
    env = case_env["env"]
    case_id, handle, _ = await _active_case(case_env, "dphold")
    await handle.execute_update(CaseWorkflow.put_on_hold, {"reason": "court papers", "actor": "cw-1"})
    for n, due in ((1, "2025-02-11"), (2, "2025-03-11")):
        await handle.signal(PAYMENT_EVENT_SIGNAL, _dp_missed(case_id, n, due))
    await env.sleep(timedelta(days=1))
    view = await handle.query(CaseWorkflow.state)
    assert view.service_type == "direct_pay" and view.collect_and_pay_switch is None
    assert "move the case to Collect & Pay" in view.caseworker_reason
    assert "on hold" in await _refused(handle, CollectAndPayRequest("direct_pay_missed", "cw-1"))


async def test_caseworker_moves_the_case_at_the_first_miss_and_bad_requests_are_refused(
        case_env, database_url) -> None:
    env, client = case_env["env"], case_env["client"]
    case_id = f"dpcw-{uuid.uuid4().hex[:8]}"
    case_env["hmrc"].incomes[f"pp-{case_id}"] = {"2025-01-01": ANNUAL_INCOME}
    handle = await case_env["start"](CaseInput(
        case_id=case_id, application_date="2025-01-10", paying_parent_id=f"pp-{case_id}",
        receiving_parent_id=f"rp-{case_id}", children=[ChildFacts("c-1", "2015-03-01")],
        publish_search_attributes=False))
    # Still in assessment: the service type is part of it.
    assert "no payment schedule yet" in await _refused(handle, CollectAndPayRequest("direct_pay_missed", "cw-1"))
    await env.sleep(timedelta(days=3))
    await handle.signal(PAYMENT_EVENT_SIGNAL, _dp_missed(case_id, 1, "2025-02-11"))

    # Incomplete, unknown or mistyped requests change nothing.
    assert "reason must be one of" in await _refused(handle, CollectAndPayRequest("paying_parent_asked", "cw-1"))
    assert "actor is required" in await _refused(handle, CollectAndPayRequest("direct_pay_missed", " "))
    assert "reason is required" in await _refused(handle, CollectAndPayRequest("", "cw-1"))
    with pytest.raises(WorkflowUpdateFailedError):    # the strict converter: an unknown key
        await client.get_workflow_handle(handle.id).execute_update(
            "switch_to_collect_and_pay", {"reason": "direct_pay_missed", "actor": "cw-1", "when": "now"})
    assert (await handle.query(CaseWorkflow.state)).collect_and_pay_switch is None

    moved = await handle.execute_update(
        CaseWorkflow.switch_to_collect_and_pay,
        {"reason": "receiving_parent_request", "actor": "cw-2", "note": "asked on the phone"})
    view = await handle.query(CaseWorkflow.state)
    effective = _next_period_start(view.initial_effective_date, view.today)
    assert moved.outcome == f"moving to Collect & Pay from {effective}"
    await env.sleep(timedelta(days=1))
    view = await handle.query(CaseWorkflow.state)
    assert view.service_type == "collect_and_pay"
    assert (view.collect_and_pay_switch.actor, view.collect_and_pay_switch.note) == ("cw-2", "asked on the phone")
    schedule = _latest_schedule(database_url, case_id)
    assert (schedule["service_type"], schedule["effective_from"]) == ("collect_and_pay", effective)
    assert "already on Collect & Pay" in await _refused(handle, CollectAndPayRequest("safeguarding", "cw-2"))
    timeline = await handle.query(CaseWorkflow.timeline, CaseQuery(recent=50))
    assert not any("asked on the phone" in entry.text for entry in timeline)   # the note stays with staff


async def test_a_closing_case_is_not_moved(case_env) -> None:
    case_id, handle, _ = await _active_case(case_env, "dpcl")
    # close_case waits for the closure; the move asked for meanwhile is refused by the validator,
    # or (usually: closing takes one round of local activities) by the server, the case having closed.
    closing = await handle.start_update(CaseWorkflow.close_case,
                                        {"reason": "receiving_parent_request", "actor": "cw-2"},
                                        wait_for_stage=WorkflowUpdateStage.ACCEPTED)
    with pytest.raises((WorkflowUpdateFailedError, RPCError)) as refused:
        await handle.execute_update(CaseWorkflow.switch_to_collect_and_pay,
                                    CollectAndPayRequest("direct_pay_missed", "cw-2"))
    if isinstance(refused.value, WorkflowUpdateFailedError):
        assert "closed or closing" in str(refused.value.cause)
    await closing.result()
    assert (await handle.query(CaseWorkflow.state)).service_type == "direct_pay"


async def test_safeguarding_flag_then_a_move_that_never_says_why(case_env, database_url) -> None:
    env = case_env["env"]
    case_id, handle, _ = await _active_case(case_env, "dpsg")
    await handle.execute_update(CaseWorkflow.flag_safeguarding, {"reason": "disclosed on a call", "actor": "cw-4"})
    assert (await handle.query(CaseWorkflow.state)).safeguarded
    await handle.execute_update(CaseWorkflow.switch_to_collect_and_pay,
                                {"reason": "safeguarding", "actor": "cw-4",
                                 "note": "bank details would reveal the town"})
    await env.sleep(timedelta(days=1))
    view = await handle.query(CaseWorkflow.state)
    assert view.service_type == "collect_and_pay" and view.safeguarded
    texts = " ".join(entry.text for entry in await handle.query(CaseWorkflow.timeline, CaseQuery(recent=50)))
    assert "disclosed" not in texts and "town" not in texts
    letters = _rows(database_url, "SELECT body FROM case_api.notices WHERE case_id = %s "
                                  "AND template = 'service_type_change'", case_id)
    assert len(letters) == 2
    assert {body["facts"]["switch_reason"] for (body,) in letters} == \
        {"the Child Maintenance Service decided it is needed for this case"}
    await record_history(handle, CASE_HISTORIES, "case_flag_safeguarding")


def _validator_with(**state) -> CaseWorkflow:
    """The validator reads only the state: run it outside a worker on a state built for the case."""
    workflow_object = object.__new__(CaseWorkflow)
    base = dict(case_id="v-1", phase="active", stage="Active", initial_effective_date="2025-01-12",
                liability=LiabilityRecord("basic", 5000, 5000, 5000, "2025-01-12", "r", 50000))
    workflow_object._s = CaseState(**{**base, **state})
    return workflow_object


@pytest.mark.parametrize("state,request_fields,refusal", [
    ({}, ("direct_pay_missed", "cw-1", ""), None),
    ({}, ("late_payments", "cw-1", ""), "reason must be one of"),
    ({}, ("direct_pay_missed", "", ""), "actor is required"),
    ({}, ("direct_pay_missed", "cw-1", "x" * 2001), "note must be text"),
    ({"phase": "closing"}, ("direct_pay_missed", "cw-1", ""), "closed or closing"),
    ({"phase": "closed", "stage": "Closed"}, ("direct_pay_missed", "cw-1", ""), "closed or closing"),
    ({"close_requested": ClosureRecord("receiving_parent_request", "2025-02-01", "cw-2")},
     ("direct_pay_missed", "cw-1", ""), "closed or closing"),
    ({"service_type": "collect_and_pay"}, ("safeguarding", "cw-1", ""), "already on Collect & Pay"),
    ({"pending_switch": ServiceSwitch("direct_pay_missed", "system", "2025-02-01", "2025-02-12")},
     ("receiving_parent_request", "cw-1", ""), "already moving to Collect & Pay from 2025-02-12"),
    ({"phase": "assessment", "stage": "Assessment", "liability": None}, ("safeguarding", "cw-1", ""),
     "no payment schedule yet"),
    ({"stage": "AnnualReview"}, ("safeguarding", "cw-1", ""), "annual review is under way"),
    ({"on_hold": True}, ("safeguarding", "cw-1", ""), "on hold"),
], ids=["accepted", "unknown-reason", "no-actor", "long-note", "closing", "closed", "close-requested",
        "already-cp", "already-moving", "assessment", "annual-review", "on-hold"])
async def test_the_validator_refuses_what_it_must(state, request_fields, refusal) -> None:
    validate = _validator_with(**state)._validate_switch_to_collect_and_pay
    if refusal is None:
        validate(CollectAndPayRequest(*request_fields))
        return
    with pytest.raises(ValueError, match=refusal):
        validate(CollectAndPayRequest(*request_fields))


async def test_signal_case_and_cmsctl_move_a_case(case_env, monkeypatch) -> None:
    """CaseService.SignalCase maps `switch_to_collect_and_pay` to the update; `cmsctl case
    collect-and-pay` calls it (here against the time-skipping server's case worker)."""
    import grpc
    from typer.testing import CliRunner

    from cms.cli.cmsctl import app
    from cms.config import load_settings
    from cms_proto.case.v1 import case_pb2, case_pb2_grpc
    from services.case_api.service import CaseService

    server = grpc.aio.server()
    case_pb2_grpc.add_CaseServiceServicer_to_server(
        CaseService(case_env["pool"], load_settings(), case_env["client"], case_env["queue"],
                    publish_search_attributes=False), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with caller_channel(f"127.0.0.1:{port}") as channel:
            stub = case_pb2_grpc.CaseServiceStub(channel)
            case_id, handle, _ = await _active_case(case_env, "dpapi")
            with pytest.raises(grpc.aio.AioRpcError) as unknown:
                await stub.SignalCase(case_pb2.SignalCaseRequest(
                    case_id=case_id, action="switch_to_collect_and_pay", actor="cw-7",
                    payload_json='{"reason": "direct_pay_missed", "urgent": "yes"}'))
            assert unknown.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.SignalCase(case_pb2.SignalCaseRequest(
                    case_id=case_id, action="switch_to_collect_and_pay", actor="cw-7",
                    payload_json='{"reason": "because"}'))
            assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert "reason must be one of" in refused.value.details()
            moved = await stub.SignalCase(case_pb2.SignalCaseRequest(
                case_id=case_id, action="switch_to_collect_and_pay", actor="cw-7",
                payload_json='{"reason": "receiving_parent_request"}'))
            assert moved.accepted and moved.outcome.startswith("moving to Collect & Pay from ")
            await case_env["env"].sleep(timedelta(days=1))
            assert (await handle.query(CaseWorkflow.state)).service_type == "collect_and_pay"

            other_id, other, _ = await _active_case(case_env, "dpcli")
            monkeypatch.setenv("CASE_API_PORT", str(port))

            async def cmsctl(*args: str):
                # The CLI runs its own event loop, so it runs in a thread here.
                return await asyncio.to_thread(CliRunner().invoke, app, ["case", *args])

            bad = await cmsctl("collect-and-pay", other_id, "--reason", "nope", "--actor", "cw-8")
            assert bad.exit_code == 3 and "reason must be one of" in bad.output
            done = await cmsctl("collect-and-pay", other_id, "--reason", "direct_pay_missed", "--actor", "cw-8",
                                "--note", "third call unanswered")
            assert done.exit_code == 0 and "moving to Collect & Pay from" in done.output, done.output
            await case_env["env"].sleep(timedelta(days=1))
            view = await other.query(CaseWorkflow.state)
            assert view.service_type == "collect_and_pay"
            assert (view.collect_and_pay_switch.actor, view.collect_and_pay_switch.note) == \
                ("cw-8", "third call unanswered")
    finally:
        await server.stop(None)
