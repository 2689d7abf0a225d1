"""The statutory date and income rules of domain.changes (docs/rules.md): the day told, the duty
to report an income increase, the 25% test at and before an annual review, and the revision of a
default decision. Pure rules: no workflow, no clock."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.calculation import calculate, parse_request
from domain.calculation.income import historic_weekly_income
from domain.changes import (
    CaseContext,
    ChangeValidationError,
    apply_in_order,
    day_told,
    decide,
    duty_to_report_increase,
    parse_change,
    review_keeps_current_income,
)
from domain.rulesets import rules_for

TODAY = date(2025, 6, 2)
REVIEW = date(2025, 6, 20)
HMRC_ANNUAL = 3_120_000              # £31,200 a year: £598.36 a week (÷ 365 × 7)
HMRC_WEEKLY = 59_836


def inputs(weekly_income: int | None = 40_000, hmrc_annual: int | None = None) -> dict:
    paying_parent: dict = {"relevant_other_children": 0}
    if hmrc_annual is not None:
        paying_parent["income"] = {"hmrc_annual_pence": hmrc_annual}
    else:
        paying_parent["gross_weekly_income_pence"] = weekly_income
    return {"paying_parent": paying_parent,
            "receiving_parents": [{"id": "rp-1", "children": [{"id": "c-1", "shared_care_nights": 0}]}],
            "service_type": "direct_pay"}


def income_change(weekly: int, effective: str = "2025-06-01", reported: str = "2025-06-02", **extra) -> dict:
    details = {"weekly_income_pence": weekly, **extra.pop("details", {})}
    return {"kind": "paying_parent_income", "reported_date": reported, "effective_date": effective,
            "details": details, **extra}


def decided(raw: dict, case_inputs: dict, context: CaseContext | None = None):
    return decide(parse_change(raw, TODAY), case_inputs, context or CaseContext())


def test_the_figures_used_here() -> None:
    assert historic_weekly_income(HMRC_ANNUAL, rules_for(REVIEW)) == HMRC_WEEKLY


# --- the day the service was told -------------------------------------------------------------

@pytest.mark.parametrize("reporter", ["paying_parent", "receiving_parent", "hmrc"])
@given(claimed_days_back=st.integers(min_value=-30, max_value=3000))
def test_a_parents_or_hmrcs_reported_date_is_never_taken(reporter: str, claimed_days_back: int) -> None:
    claimed = (TODAY - timedelta(days=claimed_days_back)).isoformat()
    assert day_told(reporter, claimed, TODAY) == TODAY
    assert day_told(reporter, claimed, TODAY, "they say they phoned in March") == TODAY


def test_no_reported_date_means_the_day_the_report_arrives() -> None:
    assert day_told("caseworker", "", TODAY) == TODAY


def test_a_caseworker_records_an_earlier_day_told_only_with_a_reason() -> None:
    with pytest.raises(ChangeValidationError) as refused:
        day_told("caseworker", "2025-05-01", TODAY)
    assert refused.value.field == "notification_reason"
    assert day_told("caseworker", "2025-05-01", TODAY, "phone call on 1 May, logged late") == date(2025, 5, 1)
    assert day_told("caseworker", TODAY.isoformat(), TODAY) == TODAY


def test_a_caseworker_cannot_record_a_day_told_in_the_future() -> None:
    with pytest.raises(ChangeValidationError) as refused:
        day_told("caseworker", "2025-06-03", TODAY, "a reason")
    assert refused.value.field == "reported_date"


def test_an_earlier_day_told_goes_to_a_caseworker() -> None:
    raw = income_change(60_000, reported="2025-05-01", reported_by="caseworker",
                        notification_reason="phone call on 1 May, logged late")
    decision = decided(raw, inputs())
    assert (decision.review_reason, decision.team) == ("earlier_notification", "changes-review")
    assert decided(income_change(60_000), inputs()).review_reason is None


def test_only_a_caseworker_gives_a_notification_reason() -> None:
    with pytest.raises(ChangeValidationError) as refused:
        parse_change(income_change(60_000, notification_reason="I told them before"), TODAY)
    assert refused.value.field == "notification_reason"


# --- the duty to report an income increase ------------------------------------------------------

def test_the_duty_holds_from_the_day_notice_was_sent() -> None:
    notice = date(2025, 3, 5)
    assert duty_to_report_increase(notice, date(2025, 3, 5))
    assert duty_to_report_increase(notice, date(2025, 5, 1))
    assert not duty_to_report_increase(notice, date(2025, 3, 4))
    assert not duty_to_report_increase(None, date(2025, 5, 1))


def test_a_late_reported_increase_under_the_duty_counts_from_when_it_happened() -> None:
    # £400 → £600 a week (+50%), happened 1 May, told 2 June: reg 18(4), from 1 May.
    raw = income_change(60_000, effective="2025-05-01", details={"duty_to_report": True})
    assert decided(raw, inputs()).effective_date == date(2025, 5, 1)
    raw = income_change(60_000, effective="2025-05-01", details={"duty_to_report": False})
    assert decided(raw, inputs()).effective_date == TODAY


# --- the 25% test in the 30 days before an annual review ---------------------------------------

def in_review(test: bool) -> CaseContext:
    return CaseContext(annual_review_date=REVIEW, review_income_test=test)


def test_income_reported_before_a_review_meets_the_25_percent_test_against_the_figure_taken() -> None:
    review_inputs = inputs(hmrc_annual=HMRC_ANNUAL)
    # £598.36 × 1.25 = £747.95: £747.94 is short of it, £747.95 reaches it.
    short = decided(income_change(74_794), review_inputs, in_review(test=True))
    assert not short.counts
    assert "less than 25% of the HMRC figure the annual review takes" in short.reason
    reaches = decided(income_change(74_795), review_inputs, in_review(test=True))
    assert reaches.counts and reaches.effective_date == REVIEW
    assert reaches.new_inputs["paying_parent"]["gross_weekly_income_pence"] == 74_795


def test_without_the_test_any_income_change_in_a_review_flowed_through() -> None:
    assert decided(income_change(60_000), inputs(hmrc_annual=HMRC_ANNUAL), in_review(test=False)).counts


@given(current=st.integers(min_value=0, max_value=300_000), annual=st.integers(min_value=0, max_value=10_000_000))
def test_review_window_changes_and_the_review_apply_one_test(current: int, annual: int) -> None:
    """A change reported in the window counts exactly when the review would keep it as current
    income: both are reg 34(2)(a) against the figure the review takes."""
    historic = historic_weekly_income(annual, rules_for(REVIEW))
    decision = decided(income_change(current), inputs(hmrc_annual=annual), in_review(test=True))
    assert decision.counts == (current != historic and review_keeps_current_income(annual, current, REVIEW))


# --- the annual review keeps current income 25% away from the HMRC figure ------------------------

def test_the_review_keeps_current_income_25_percent_or_more_from_the_new_hmrc_figure() -> None:
    assert review_keeps_current_income(HMRC_ANNUAL, 44_877, REVIEW)       # 25.0% below £598.36
    assert not review_keeps_current_income(HMRC_ANNUAL, 44_878, REVIEW)   # 24.99% below
    assert review_keeps_current_income(HMRC_ANNUAL, 74_795, REVIEW)
    assert not review_keeps_current_income(HMRC_ANNUAL, 74_794, REVIEW)
    assert review_keeps_current_income(0, 1, REVIEW)                      # reg 34(2A)
    assert not review_keeps_current_income(0, 0, REVIEW)


@given(annual=st.integers(min_value=1, max_value=10_000_000), current=st.integers(min_value=0, max_value=300_000))
def test_the_review_test_is_symmetric_in_its_distance(annual: int, current: int) -> None:
    historic = historic_weekly_income(annual, rules_for(REVIEW))
    mirrored = 2 * historic - current
    if mirrored >= 0:
        assert review_keeps_current_income(annual, current, REVIEW) == review_keeps_current_income(
            annual, mirrored, REVIEW)


# --- revising a default decision ------------------------------------------------------------------

DEFAULT_FROM = date(2025, 3, 5)


def test_income_on_a_default_decision_revises_it_from_the_date_it_took_effect() -> None:
    raw = income_change(52_345, effective="2025-06-01")
    decision = decided(raw, inputs(weekly_income=0), CaseContext(default_decision_from=DEFAULT_FROM))
    assert decision.counts and decision.effective_date == DEFAULT_FROM
    assert decision.new_inputs["paying_parent"]["gross_weekly_income_pence"] == 52_345
    assert "default decision is revised" in decision.reason
    # 12% of £523.45 = £62.81, to the pound £63.
    assert calculate(parse_request(decision.new_inputs), effective_date=DEFAULT_FROM).weekly_liability_pence == 6300


def test_income_of_nil_on_a_default_decision_still_revises_it() -> None:
    decision = decided(income_change(0), inputs(weekly_income=0), CaseContext(default_decision_from=DEFAULT_FROM))
    assert decision.counts and decision.effective_date == DEFAULT_FROM


def test_the_receiving_parents_report_of_income_does_not_revise_a_default_by_itself() -> None:
    raw = income_change(52_345, reported_by="receiving_parent")
    decision = decided(raw, inputs(weekly_income=0), CaseContext(default_decision_from=DEFAULT_FROM))
    assert decision.effective_date == TODAY and decision.review_reason == "rules_cannot_decide"


def test_a_replay_decides_a_default_revision_with_the_context_it_was_decided_in() -> None:
    change = parse_change(income_change(52_345), TODAY)
    _, decisions = apply_in_order(inputs(weekly_income=0), [(1, change)], CaseContext(),
                                  {1: CaseContext(default_decision_from=DEFAULT_FROM)})
    assert decisions[0][1].effective_date == DEFAULT_FROM
