"""EnforcementWorkflow on the time-skipping server with the real payments service: the ladder for
an employed and a self-employed payer, deductions at their limits, de-escalation, plans,
approvals, charges in the ledger and the redaction of every letter."""

from __future__ import annotations

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from domain.safeguarding import REDACTED
from tests.enforcement.enforcement_helpers import (
    EMPLOYER,
    approve,
    charges_in_ledger,
    enforcement_input,
    fail_step,
    next_case_id,
    pending,
    start,
    step_open,
    until,
)
from tests.helpers.replay import ENFORCEMENT_HISTORIES, record_history
from workflows.enforcement import EnforcementWorkflow
from workflows.enforcement_messages import (
    ApprovalRequest,
    ArrearsUpdate,
    OutcomeRequest,
    PlanRequest,
    WithdrawRequest,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

CW, SENIOR = "caseworker", "senior_caseworker"
AFTER_THE_LIABILITY_ORDER = [
    ("enforcement_agents", [("cw-1", CW)]),
    ("charging_order", [("cw-1", CW)]),
    ("driving_licence_disqualification", [("cw-1", CW), ("sc-2", SENIOR)]),
    ("passport_disqualification", [("cw-1", CW), ("sc-2", SENIOR)]),
    ("committal", [("cw-3", CW), ("sc-2", SENIOR)]),
]


async def climb_after_notice(handle, deduction_orders: list[str]) -> None:
    for order in deduction_orders:
        await fail_step(handle, order)
    await fail_step(handle, "liability_order", "granted")
    for step, approvers in AFTER_THE_LIABILITY_ORDER:
        await approve(handle, step, *approvers)
        await fail_step(handle, step)
    await until(handle, lambda s: s.needs_caseworker and s.caseworker_reason.startswith("no further"),
                "a caseworker asked once the ladder is climbed")
    await handle.execute_update(EnforcementWorkflow.withdraw, WithdrawRequest("cw-1", "nothing more can be done"))


def assert_letters_redacted(letters, data) -> None:
    to_receiving = letters.to(data.receiving_parent_id)
    assert to_receiving, "the receiving parent is told of each step"
    for notice in to_receiving:
        assert EMPLOYER not in str(notice.facts)
        if data.means.employer:
            assert notice.facts["employer"] == REDACTED
    for notice in letters.to(data.paying_parent_id):
        assert notice.facts.get("employer", "") == data.means.employer


async def test_the_whole_ladder_for_an_employed_payer(enforcement_env):
    case_id = next_case_id()
    data = enforcement_input(case_id, employed=True)
    handle = await start(enforcement_env, data)
    await climb_after_notice(handle, ["deduction_from_earnings_order", "regular_deduction_order",
                                      "lump_sum_deduction_order"])
    result = await handle.result()
    assert [s.step for s in result.steps] == [
        "contact", "arrears_notice", "deduction_from_earnings_order", "regular_deduction_order",
        "lump_sum_deduction_order", "liability_order", "enforcement_agents", "charging_order",
        "driving_licence_disqualification", "passport_disqualification", "committal"]
    assert [s.outcome for s in result.steps[:2]] == ["not_put_right", "not_put_right"]
    assert result.steps[-1].outcome == "ineffective"
    assert (result.closed, result.ended_because) == (True, "withdrawn")
    # The regular order asked for the whole £600 a period, more than the £400 the payer can spare
    # above protected earnings: refused (no charge) and moved on by a caseworker.
    assert result.steps[3].detail.startswith("refused: £600.00 a period would leave the paying parent below")
    assert [s.charge_pence for s in result.steps[2:6]] == [5000, 0, 20000, 30000]
    assert result.charges_posted_pence == await charges_in_ledger(enforcement_env, case_id) == 55_000
    letters = enforcement_env["letters"]
    assert len(letters.to(f"{data.paying_parent_id}:employer")) == 1, "the employer's instruction"
    assert all(n.facts.get("employer") == REDACTED for n in letters.to(f"{data.paying_parent_id}:employer"))
    assert_letters_redacted(letters, data)
    await record_history(handle, ENFORCEMENT_HISTORIES, "employed_ladder")


async def test_the_whole_ladder_for_a_self_employed_payer(enforcement_env):
    case_id = next_case_id()
    data = enforcement_input(case_id, employed=False, requested=20_000)
    handle = await start(enforcement_env, data)
    await climb_after_notice(handle, ["regular_deduction_order", "lump_sum_deduction_order"])
    result = await handle.result()
    assert "deduction_from_earnings_order" not in [s.step for s in result.steps]
    assert result.steps[2].detail == "£200.00 a period"
    assert result.charges_posted_pence == await charges_in_ledger(enforcement_env, case_id) == 55_000
    assert_letters_redacted(enforcement_env["letters"], data)
    await record_history(handle, ENFORCEMENT_HISTORIES, "self_employed_ladder")


async def test_an_earnings_order_at_the_forty_percent_cap(enforcement_env):
    handle = await start(enforcement_env, enforcement_input(next_case_id(), net=100_000, arrears=90_000))
    status = await until(handle, lambda s: step_open("deduction_from_earnings_order")(s) and s.charges_posted_pence > 0,
                         "the earnings order served")
    assert status.steps[-1].detail == "£399.00 a period; protected earnings £600.00"
    assert status.steps[-1].charge_pence == 5000


async def test_an_earnings_order_at_the_protected_earnings_edge_is_refused_to_a_caseworker(enforcement_env):
    case_id = next_case_id()
    handle = await start(enforcement_env, enforcement_input(case_id, net=100_000, other=40_000))
    status = await until(handle, lambda s: step_open("deduction_from_earnings_order")(s) and s.needs_caseworker,
                         "the refused earnings order")
    assert status.steps[-1].detail.startswith("refused: £0.01 a period would leave the paying parent below "
                                              "protected earnings of £600.00")
    assert status.charges_posted_pence == 0 == await charges_in_ledger(enforcement_env, case_id)
    await fail_step(handle, "deduction_from_earnings_order")
    await until(handle, step_open("regular_deduction_order"), "the caseworker moves it on")


async def test_paying_in_full_closes_enforcement_and_a_repeated_event_is_harmless(enforcement_env):
    data = enforcement_input(next_case_id())
    handle = await start(enforcement_env, data)
    await until(handle, step_open("deduction_from_earnings_order"), "the earnings order")
    await handle.signal(EnforcementWorkflow.arrears_changed, ArrearsUpdate("pay-1", 0))
    await handle.signal(EnforcementWorkflow.arrears_changed, ArrearsUpdate("pay-1", 0))
    result = await handle.result()
    assert (result.steps[-1].step, result.steps[-1].outcome) == ("deduction_from_earnings_order", "paid_in_full")
    assert result.collected_pence == 60_000 and result.closed
    closing = [n for n in enforcement_env["letters"].to(f"{data.paying_parent_id}:employer")]
    assert len(closing) == 2, "the employer is told to start, then to stop"
    await record_history(handle, ENFORCEMENT_HISTORIES, "paid_in_full")


async def test_a_plan_kept_closes_enforcement(enforcement_env):
    handle = await start(enforcement_env, enforcement_input(next_case_id()))
    await until(handle, step_open("deduction_from_earnings_order"), "the earnings order")
    await handle.execute_update(EnforcementWorkflow.agree_plan, PlanRequest(10_000, 6, 30, "cw-1", "asked to pay"))
    await until(handle, step_open("repayment_plan"), "the plan")
    await handle.signal(EnforcementWorkflow.arrears_changed, ArrearsUpdate("plan-paid", 0))
    result = await handle.result()
    assert [(s.step, s.outcome) for s in result.steps[2:]] == [
        ("deduction_from_earnings_order", "paused"), ("repayment_plan", "kept")]
    await record_history(handle, ENFORCEMENT_HISTORIES, "plan_kept")


async def test_a_plan_broken_resumes_at_the_step_it_left_without_charging_again(enforcement_env):
    case_id = next_case_id()
    handle = await start(enforcement_env, enforcement_input(case_id))
    await until(handle, step_open("deduction_from_earnings_order"), "the earnings order")
    await handle.execute_update(EnforcementWorkflow.agree_plan, PlanRequest(10_000, 6, 30, "cw-1", "asked to pay"))
    await fail_step(handle, "repayment_plan", "broken")
    status = await until(handle, step_open("deduction_from_earnings_order"), "the order again")
    assert [(s.step, s.outcome) for s in status.steps[2:]] == [
        ("deduction_from_earnings_order", "paused"), ("repayment_plan", "broken"),
        ("deduction_from_earnings_order", "")]
    assert status.charges_posted_pence == 5000 == await charges_in_ledger(enforcement_env, case_id)
    await record_history(handle, ENFORCEMENT_HISTORIES, "plan_broken")


async def test_a_plan_below_protected_earnings_is_refused_with_the_figure(enforcement_env):
    handle = await start(enforcement_env, enforcement_input(next_case_id()))
    await until(handle, step_open("deduction_from_earnings_order"), "the earnings order")
    assert (await refused(handle, EnforcementWorkflow.agree_plan, PlanRequest(50_000, 2, 30, "cw-1", "asked"))
            ).startswith(
        "£500.00 a period would leave the paying parent below protected earnings of £600.00")
    assert (await handle.query(EnforcementWorkflow.status)).steps[-1].outcome == ""


async def refused(handle, update, request) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as error:
        await handle.execute_update(update, request)
    cause = error.value.cause
    assert isinstance(cause, ApplicationError)
    return cause.message


async def test_two_approvers_for_a_court_sanction_and_bad_approvals_refused(enforcement_env):
    handle = await start(enforcement_env, enforcement_input(next_case_id(), employed=False, bank_account=False))
    await fail_step(handle, "liability_order", "granted")
    await until(handle, pending("enforcement_agents"), "enforcement agents waiting for approval")
    assert await refused(handle, EnforcementWorkflow.approve, ApprovalRequest("committal", "cw-1", CW, "why")) == \
        "committal is not pending; the pending step is enforcement_agents"
    assert await refused(handle, EnforcementWorkflow.approve,
                         ApprovalRequest("enforcement_agents", "cw-1", CW, "")) == "an approval needs a reason"
    assert await refused(handle, EnforcementWorkflow.record_outcome,
                         OutcomeRequest("committal", "ineffective", "cw-1", "why")) == \
        "committal is not open; the open step is none"
    await approve(handle, "enforcement_agents", ("cw-1", CW))
    await fail_step(handle, "enforcement_agents")
    await approve(handle, "charging_order", ("cw-1", CW))
    await fail_step(handle, "charging_order")
    await approve(handle, "driving_licence_disqualification", ("cw-1", CW))
    step = "driving_licence_disqualification"
    assert (await refused(handle, EnforcementWorkflow.approve, ApprovalRequest(step, "cw-1", SENIOR, "why"))
            ).startswith("cw-1 has already approved")
    assert await refused(handle, EnforcementWorkflow.approve, ApprovalRequest(step, "cw-9", CW, "why")) == \
        "driving_licence_disqualification needs the approval of a senior caseworker"
    assert (await handle.query(EnforcementWorkflow.status)).pending_approval == step
    await handle.execute_update(EnforcementWorkflow.approve, ApprovalRequest(step, "sc-2", SENIOR, "why"))
    status = await until(handle, step_open(step), "the disqualification started")
    assert [(a.staff_id, a.role) for a in status.approvals if a.step == step] == [("cw-1", CW), ("sc-2", SENIOR)]
    await record_history(handle, ENFORCEMENT_HISTORIES, "two_approvers")


async def test_withdrawal_needs_a_reason(enforcement_env):
    handle = await start(enforcement_env, enforcement_input(next_case_id()))
    assert await refused(handle, EnforcementWorkflow.withdraw, WithdrawRequest("cw-1", " ")) == "a reason is required"
    await handle.execute_update(EnforcementWorkflow.withdraw, WithdrawRequest("cw-1", "paid through the court"))
    result = await handle.result()
    assert (result.closed, result.ended_because, result.steps[-1].outcome) == (True, "withdrawn", "withdrawn")
