"""Enforcement rules (docs/rules.md section 5): the ladder, deductions, charges, approvals, plans
and the Direct Pay warning."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain import enforcement as e
from domain.rulesets import current_rules, packaged_rule_sets

RULES = current_rules()
EMPLOYED = e.Payer(employed=True, has_bank_account=True)
SELF_EMPLOYED = e.Payer(employed=False, has_bank_account=True)
NO_MEANS = e.Payer(employed=False, has_bank_account=False)


def climb(payer: e.Payer, **outcomes: str) -> list[str]:
    """The steps the ladder takes when every step ends with its usual failure."""
    history: list[e.StepRecord] = []
    while (step := e.next_step(history, payer)) is not None:
        default = e.GRANTED if step == e.LIABILITY_ORDER else (
            e.NOT_PUT_RIGHT if step in (e.CONTACT, e.ARREARS_NOTICE) else e.INEFFECTIVE)
        history.append(e.StepRecord(step, outcomes.get(step, default)))
    return [record.step for record in history]


def test_the_employed_payer_climbs_through_a_deduction_from_earnings_order_first():
    assert climb(EMPLOYED) == list(e.LADDER)


def test_the_self_employed_payer_skips_the_earnings_order():
    assert climb(SELF_EMPLOYED) == [s for s in e.LADDER if s != e.DEDUCTION_FROM_EARNINGS_ORDER]


def test_a_payer_without_employer_or_account_goes_from_the_notice_to_a_liability_order():
    assert climb(NO_MEANS)[:3] == [e.CONTACT, e.ARREARS_NOTICE, e.LIABILITY_ORDER]


def test_a_liability_order_that_is_not_made_stops_the_ladder_for_a_caseworker():
    assert climb(NO_MEANS, liability_order=e.NOT_MADE)[-1] == e.LIABILITY_ORDER


def test_step_preconditions_are_explained():
    history = [e.StepRecord(e.CONTACT, e.NOT_PUT_RIGHT)]
    assert e.step_start_problem(e.LIABILITY_ORDER, history, EMPLOYED) == "an arrears notice must be sent first"
    history.append(e.StepRecord(e.ARREARS_NOTICE, e.NOT_PUT_RIGHT))
    assert e.step_start_problem(e.LIABILITY_ORDER, history, EMPLOYED) == \
        "a deduction_from_earnings_order must be tried first"
    assert "no employer" in e.step_start_problem(e.DEDUCTION_FROM_EARNINGS_ORDER, history, SELF_EMPLOYED)
    assert e.step_start_problem(e.COMMITTAL, history, EMPLOYED) == "a court must first grant a liability order"
    history.append(e.StepRecord(e.DEDUCTION_FROM_EARNINGS_ORDER))
    assert e.step_start_problem(e.REGULAR_DEDUCTION_ORDER, history, EMPLOYED) == \
        "deduction_from_earnings_order is still open"
    assert e.step_start_problem("bailiffs", history, EMPLOYED).endswith("not a step of the enforcement ladder")


def test_court_sanctions_need_a_failed_remedy_after_the_liability_order():
    history = [e.StepRecord(s, e.NOT_PUT_RIGHT) for s in (e.CONTACT, e.ARREARS_NOTICE)]
    history.append(e.StepRecord(e.LIABILITY_ORDER, e.GRANTED))
    assert e.step_start_problem(e.DRIVING_LICENCE_DISQUALIFICATION, history, NO_MEANS) == \
        "enforcement agents or a charging order must first have failed"
    history.append(e.StepRecord(e.CHARGING_ORDER, e.INEFFECTIVE))
    assert e.step_start_problem(e.COMMITTAL, history, NO_MEANS) == ""


@pytest.mark.parametrize("outcome", e.CLOSING_OUTCOMES)
def test_paying_in_full_a_kept_plan_or_withdrawal_closes_enforcement(outcome):
    history = [e.StepRecord(e.CONTACT, e.NOT_PUT_RIGHT), e.StepRecord(e.ARREARS_NOTICE, outcome)]
    assert e.is_closed(history)
    assert e.next_step(history, EMPLOYED) is None
    assert e.step_start_problem(e.DEDUCTION_FROM_EARNINGS_ORDER, history, EMPLOYED) == "enforcement is closed"


def test_notice_periods_come_from_the_rule_set():
    day = date(2026, 3, 2)
    assert e.put_right_by(day, RULES) == date(2026, 3, 9)
    assert e.arrears_notice_due_by(day, RULES) == date(2026, 3, 16)
    assert e.employer_liable_from(day, RULES) == date(2026, 3, 9)
    assert e.liability_order_application_from(day, RULES) == date(2026, 3, 9)
    assert e.liability_order_hearing_by(day, RULES) == date(2026, 8, 3)  # 22 weeks


# --- deduction from earnings: 40% maximum, 60% protected ------------------------------------

def test_a_deduction_from_earnings_order_stops_at_the_forty_percent_cap():
    period = e.earnings_deduction(100_000, requested_pence=90_000, rules=RULES)
    assert period.means.protected_pence == 60_000
    assert period.deduction_pence == 39_900  # 40% less the employer's £1, kept inside the protection
    assert period.employer_admin_pence == 100
    assert period.left_to_payer_pence == 60_000
    assert period.shortfall_pence == 50_100


def test_a_deduction_below_the_cap_is_taken_in_full():
    period = e.earnings_deduction(100_000, requested_pence=20_000, rules=RULES)
    assert (period.deduction_pence, period.shortfall_pence, period.left_to_payer_pence) == (20_000, 0, 79_900)


def test_at_the_protected_earnings_edge_nothing_is_taken():
    # Other deductions already leave exactly the protected 60%: no room, and no admin charge.
    period = e.earnings_deduction(100_000, requested_pence=10_000, rules=RULES, other_deductions_pence=40_000)
    assert (period.deduction_pence, period.employer_admin_pence, period.left_to_payer_pence) == (0, 0, 60_000)
    one_penny_of_room = e.earnings_deduction(100_000, 10_000, RULES, other_deductions_pence=39_899)
    assert one_penny_of_room.deduction_pence == 1 and one_penny_of_room.left_to_payer_pence == 60_000


def test_protected_earnings_round_in_the_payers_favour():
    assert e.ability_to_pay(1, 0, RULES).protected_pence == 1
    assert e.earnings_deduction(1, 1, RULES).deduction_pence == 0


@given(net=st.integers(0, 2_000_000), requested=st.integers(0, 2_000_000),
       other=st.integers(0, 2_000_000), rules=st.sampled_from(packaged_rule_sets()))
def test_a_deduction_never_exceeds_forty_percent_nor_breaks_protected_earnings(net, requested, other, rules):
    period = e.earnings_deduction(net, requested, rules, other_deductions_pence=other)
    assert 0 <= period.deduction_pence <= requested
    assert period.deduction_pence * 100 <= net * 40
    if period.deduction_pence:
        assert period.left_to_payer_pence >= period.means.protected_pence
        assert period.left_to_payer_pence * 100 >= net * 60 - 100 * other
    assert (period.employer_admin_pence == 0) == (period.deduction_pence == 0)


@given(net=st.integers(0, 2_000_000), other=st.integers(0, 2_000_000), amount=st.integers(0, 2_000_000))
def test_an_affordable_amount_always_leaves_protected_earnings(net, other, amount):
    means = e.ability_to_pay(net, other, RULES)
    if amount and not e.affordability_problem(amount, means):
        assert net - other - amount >= means.protected_pence


def test_deductions_refuse_amounts_that_are_not_whole_pence():
    with pytest.raises(ValueError, match="whole non-negative"):
        e.earnings_deduction(-1, 0, RULES)
    with pytest.raises(ValueError, match="whole non-negative"):
        e.earnings_deduction(100, 1.5, RULES)  # type: ignore[arg-type]  # a float on purpose


def test_an_unaffordable_step_is_refused_with_the_figure():
    means = e.ability_to_pay(50_000, 5_000, RULES)
    assert means.available_pence == 15_000
    assert e.affordability_problem(15_000, means) == ""
    assert e.affordability_problem(15_001, means) == (
        "£150.01 a period would leave the paying parent below protected earnings of £300.00; "
        "at most £150.00 a period can be taken")


# --- charges --------------------------------------------------------------------------------

@pytest.mark.parametrize(("step", "pence"), [
    (e.DEDUCTION_FROM_EARNINGS_ORDER, 5_000), (e.REGULAR_DEDUCTION_ORDER, 5_000),
    (e.LUMP_SUM_DEDUCTION_ORDER, 20_000), (e.LIABILITY_ORDER, 30_000),
    (e.CONTACT, 0), (e.ARREARS_NOTICE, 0), (e.COMMITTAL, 0)])
def test_each_charged_step_has_its_charge(step, pence):
    assert e.charge_pence(step, RULES) == pence


def test_a_waived_charge_is_nothing_and_an_unknown_waiver_is_an_error():
    assert e.charge_pence(e.LIABILITY_ORDER, RULES, waiver="liability_order_not_made") == 0
    assert e.charge_pence(e.DEDUCTION_FROM_EARNINGS_ORDER, RULES, waiver="reissued_on_change") == 0
    with pytest.raises(ValueError, match="unknown charge waiver 'goodwill'"):
        e.charge_pence(e.LIABILITY_ORDER, RULES, waiver="goodwill")


def test_the_charge_key_names_the_enforcement_and_the_step():
    assert e.charge_idempotency_key("case-c-1/enforcement-1", e.LIABILITY_ORDER) == \
        "case-c-1/enforcement-1/charge/liability_order"


# --- approvals ------------------------------------------------------------------------------

def approval(step=e.COMMITTAL, staff="s-1", role=e.CASEWORKER, reason="wilful refusal"):
    return e.Approval(step=step, staff_id=staff, role=role, reason=reason)


def test_one_caseworker_approves_enforcement_agents_and_charging_orders():
    assert e.approval_problem(approval(e.ENFORCEMENT_AGENTS), e.ENFORCEMENT_AGENTS, []) == ""
    assert e.approvals_complete(e.CHARGING_ORDER, [approval(e.CHARGING_ORDER)])
    assert e.approval_problem(approval(e.CHARGING_ORDER, staff="s-2"), e.CHARGING_ORDER,
                              [approval(e.CHARGING_ORDER)]) == "charging_order is already approved"


@pytest.mark.parametrize("step", e.COURT_SANCTIONS)
def test_court_sanctions_need_a_caseworker_and_a_different_senior_caseworker(step):
    first = approval(step)
    assert e.approval_problem(first, step, []) == ""
    assert not e.approvals_complete(step, [first])
    assert e.approval_problem(approval(step, role=e.SENIOR_CASEWORKER), step, [first]).startswith(
        "s-1 has already approved")
    assert e.approval_problem(approval(step, staff="s-2"), step, [first]) == \
        f"{step} needs the approval of a senior caseworker"
    second = approval(step, staff="s-2", role=e.SENIOR_CASEWORKER)
    assert e.approval_problem(second, step, [first]) == ""
    assert e.approvals_complete(step, [first, second])


def test_approvals_without_reason_or_for_a_step_not_pending_are_refused():
    assert e.approval_problem(approval(reason="  "), e.COMMITTAL, []) == "an approval needs a reason"
    assert e.approval_problem(approval(staff=""), e.COMMITTAL, []) == "an approval needs the approver's staff id"
    assert e.approval_problem(approval(), e.CHARGING_ORDER, []) == \
        "committal is not pending; the pending step is charging_order"
    assert e.approval_problem(approval(), None, []) == "committal is not pending; no step is waiting for approval"
    assert e.approval_problem(approval(role="clerk"), e.COMMITTAL, []) == \
        "committal needs the approval of a caseworker"


# --- repayment plans ------------------------------------------------------------------------

def test_a_plan_kept_closes_and_a_plan_broken_resumes_where_it_left():
    plan = e.RepaymentPlan(amount_per_period_pence=10_000, periods=6, left_step=e.REGULAR_DEDUCTION_ORDER)
    assert e.after_plan(plan, e.KEPT) is None
    assert e.after_plan(plan, e.BROKEN) == e.REGULAR_DEDUCTION_ORDER
    with pytest.raises(ValueError):
        e.after_plan(plan, e.GRANTED)


def test_a_plan_must_cover_the_arrears_and_be_affordable():
    means = e.ability_to_pay(50_000, 0, RULES)  # £200 a period available
    plan = e.RepaymentPlan(10_000, 6, e.CONTACT)
    assert e.repayment_plan_problem(plan, 60_000, means) == ""
    assert e.repayment_plan_problem(plan, 60_001, means) == "the plan pays £600.00, less than the arrears of £600.01"
    assert e.repayment_plan_problem(e.RepaymentPlan(0, 6, e.CONTACT), 0, means) == \
        "a repayment plan needs a positive amount a period"
    assert e.repayment_plan_problem(e.RepaymentPlan(100, 0, e.CONTACT), 0, means) == \
        "a repayment plan needs a term of at least one period"
    assert e.repayment_plan_problem(e.RepaymentPlan(25_000, 2, e.CONTACT), 50_000, means).startswith(
        "£250.00 a period would leave the paying parent below protected earnings of £300.00")


# --- Direct Pay -----------------------------------------------------------------------------

def test_add_months_keeps_the_day_or_takes_the_months_last():
    assert e.add_months(date(2025, 1, 31), 1) == date(2025, 2, 28)
    assert e.add_months(date(2024, 2, 29), 12) == date(2025, 2, 28)
    assert e.add_months(date(2025, 11, 15), 3) == date(2026, 2, 15)


def test_direct_pay_moves_only_after_a_warning_in_the_last_twelve_months_and_a_later_miss():
    warned, today = date(2025, 3, 1), date(2026, 2, 20)
    assert e.move_to_collect_and_pay_problem(warned, date(2026, 2, 19), today, RULES) == ""
    assert e.move_to_collect_and_pay_problem(None, date(2026, 2, 19), today, RULES).startswith(
        "the paying parent has not been warned")
    assert e.move_to_collect_and_pay_problem(warned, None, today, RULES) == \
        "the receiving parent has reported no miss since the warning of 2025-03-01"
    assert e.move_to_collect_and_pay_problem(warned, warned, today, RULES).startswith(
        "the receiving parent has reported no miss")
    assert e.move_to_collect_and_pay_problem(warned, date(2026, 3, 1), date(2026, 3, 1), RULES) == ""
    assert e.move_to_collect_and_pay_problem(warned, date(2026, 3, 2), date(2026, 3, 2), RULES) == \
        "the warning of 2025-03-01 is more than 12 months old"
