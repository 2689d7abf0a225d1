"""The pure rules of changes of circumstances (domain.changes) and the SLA view (domain.sla)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from domain.calculation import calculate, parse_request
from domain.changes import (
    CHANGE_KINDS,
    CaseContext,
    ChangeValidationError,
    StoppedChild,
    apply_in_order,
    check_against_case,
    decide,
    fold_into_review,
    income_change_counts,
    liability_adjustment_pence,
    parse_change,
)
from domain.sla import SlaItem, age_band, sla_report

TODAY = date(2025, 6, 2)


def base_inputs(nights: int = 0, income: int = 40_000, roc: int = 0, service: str = "collect_and_pay") -> dict:
    return {
        "paying_parent": {"gross_weekly_income_pence": income, "relevant_other_children": roc},
        "receiving_parents": [{"id": "rp-1", "children": [{"id": "c-1", "shared_care_nights": nights},
                                                          {"id": "c-2", "shared_care_nights": 0}]}],
        "service_type": service,
    }


def change(kind: str, details: dict | None = None, reported: str = "2025-06-01", effective: str = "2025-05-01",
           **extra) -> dict:
    return {"kind": kind, "reported_date": reported, "effective_date": effective, "details": details or {}, **extra}


def decided(raw: dict, inputs: dict | None = None, context: CaseContext | None = None):
    return decide(parse_change(raw, TODAY), inputs or base_inputs(), context or CaseContext())


def weekly(inputs: dict, on: date) -> int:
    return calculate(parse_request(inputs), effective_date=on).weekly_liability_pence


# --- income: the 25% tolerance and the effective date ------------------------------------------

def test_income_change_of_24_percent_does_not_count() -> None:
    decision = decided(change("paying_parent_income", {"weekly_income_pence": 49_600}))
    assert (decision.counts, decision.outcome) == (False, "no_change")
    assert "24%" in decision.reason and "annual review" in decision.reason
    assert decision.new_inputs == base_inputs()


def test_income_change_of_25_percent_counts_from_the_reported_date() -> None:
    decision = decided(change("paying_parent_income", {"weekly_income_pence": 50_000}))
    assert decision.counts and decision.outcome == "recalculated"
    assert decision.effective_date == date(2025, 6, 1)  # reported; reg 18(6)
    assert decision.new_inputs["paying_parent"]["gross_weekly_income_pence"] == 50_000
    assert weekly(decision.new_inputs, decision.effective_date) > weekly(base_inputs(), decision.effective_date)


def test_income_decrease_of_25_percent_counts_too() -> None:
    assert decided(change("paying_parent_income", {"weekly_income_pence": 30_000})).counts
    assert not decided(change("paying_parent_income", {"weekly_income_pence": 30_001})).counts


def test_tolerance_edges_exactly() -> None:
    assert income_change_counts(40_000, 50_000) and not income_change_counts(40_000, 49_999)
    assert income_change_counts(0, 1) and not income_change_counts(40_000, 40_000)
    assert income_change_counts(40_000, 40_001, in_annual_review=True)


def test_reportable_increase_counts_from_the_date_it_happened_and_creates_arrears() -> None:
    decision = decided(change("paying_parent_income", {"weekly_income_pence": 60_000, "duty_to_report": True}))
    assert decision.effective_date == date(2025, 5, 1)
    old, new = weekly(base_inputs(), decision.effective_date), weekly(decision.new_inputs, decision.effective_date)
    arrears = liability_adjustment_pence(old, new, decision.effective_date, date(2025, 6, 5))
    assert arrears == round((new - old) * 35 / 7) and arrears > 0


def test_a_change_expected_in_future_counts_from_that_date() -> None:
    decision = decided(change("paying_parent_income", {"weekly_income_pence": 80_000}, effective="2025-07-01"))
    assert decision.effective_date == date(2025, 7, 1)


# --- shared care: only a band edge counts ---------------------------------------------------

def test_shared_care_51_to_52_nights_crosses_a_band_edge() -> None:
    decision = decided(change("shared_care_nights", {"child_id": "c-1", "nights": 52}), base_inputs(nights=51))
    assert decision.counts and "0–51" in decision.reason and "52–103" in decision.reason
    assert weekly(decision.new_inputs, decision.effective_date) < weekly(base_inputs(nights=51), decision.effective_date)


def test_shared_care_within_a_band_does_not_count() -> None:
    decision = decided(change("shared_care_nights", {"child_id": "c-1", "nights": 103}), base_inputs(nights=52))
    assert not decision.counts and "still in the 52–103" in decision.reason
    assert not decided(change("shared_care_nights", {"child_id": "c-1", "nights": 51}), base_inputs(nights=0)).counts


# --- each other kind --------------------------------------------------------------------------

def test_benefit_start_and_stop_count_from_the_date_of_the_change() -> None:
    started = decided(change("flat_rate_benefit_started"))
    assert started.counts and started.effective_date == date(2025, 5, 1)
    assert weekly(started.new_inputs, started.effective_date) == 700
    stopped = decided(change("flat_rate_benefit_stopped"), started.new_inputs)
    assert stopped.counts and stopped.effective_date == date(2025, 5, 1)
    assert not decided(change("flat_rate_benefit_stopped")).counts


def test_child_leaving_education_is_recorded_for_the_case_to_stop_them_at_the_terminal_date() -> None:
    decision = decided(change("child_left_education", {"child_id": "c-2"}))
    assert (decision.counts, decision.outcome, decision.effective_date) == (False, "recorded", date(2025, 5, 1))
    assert "terminal date" in decision.reason and decision.new_inputs == base_inputs()


def test_child_continuing_in_education_is_recorded() -> None:
    decision = decided(change("child_continuing_education", {"child_id": "c-2"}, effective="2025-06-01"))
    assert (decision.counts, decision.outcome) == (False, "recorded")
    assert "continues in full-time non-advanced education" in decision.reason


def test_child_leaving_education_counted_from_the_leaving_date_in_cases_decided_before_terminal_dates() -> None:
    decision = decided(change("child_left_education", {"child_id": "c-2"}),
                       context=CaseContext(education_is_a_fact=False))
    assert decision.counts and decision.effective_date == date(2025, 5, 1)
    assert [c["id"] for c in decision.new_inputs["receiving_parents"][0]["children"]] == ["c-1"]
    assert weekly(decision.new_inputs, decision.effective_date) < weekly(base_inputs(), decision.effective_date)


def test_last_child_leaving_ends_the_case() -> None:
    inputs = base_inputs()
    inputs["receiving_parents"][0]["children"].pop()
    decision = decided(change("child_left", {"child_id": "c-1"}), inputs)
    assert decision.closes_case and decision.effective_date == date(2025, 5, 1)


def test_child_added_counts() -> None:
    decision = decided(change("child_added", {"receiving_parent_id": "rp-1", "child_id": "c-3"}))
    assert decision.counts and decision.effective_date == date(2025, 6, 1)
    assert weekly(decision.new_inputs, decision.effective_date) > weekly(base_inputs(), decision.effective_date)


def test_new_relevant_other_child_counts_from_the_day_told_up_to_three() -> None:
    # Born on 1 May, reported on 1 June: counts from 1 June (reg 18(6)); reg 18(3)(a) backdates only a child who stops.
    decision = decided(change("relevant_other_children", {"count": 1}))
    assert decision.counts and decision.effective_date == date(2025, 6, 1)
    assert weekly(decision.new_inputs, decision.effective_date) < weekly(base_inputs(), decision.effective_date)
    assert not decided(change("relevant_other_children", {"count": 4}), base_inputs(roc=3)).counts


def test_relevant_other_child_who_stops_counting_goes_back_to_the_date_of_the_change() -> None:
    decision = decided(change("relevant_other_children", {"count": 0}), base_inputs(roc=1))
    assert decision.counts and decision.effective_date == date(2025, 5, 1)


def test_new_relevant_other_child_from_its_date_in_cases_decided_before_the_rule() -> None:
    decision = decided(change("relevant_other_children", {"count": 1}), context=CaseContext(new_roc_from_day_told=False))
    assert decision.counts and decision.effective_date == date(2025, 5, 1)


def test_service_type_switch_changes_the_fees_not_the_liability() -> None:
    decision = decided(change("service_type", {"service_type": "direct_pay"}))
    assert decision.counts and decision.new_inputs["service_type"] == "direct_pay"
    result = calculate(parse_request(decision.new_inputs), effective_date=decision.effective_date)
    assert result.paying_parent_pays_pence == result.weekly_liability_pence


def test_address_and_employment_without_income_are_recorded_only() -> None:
    assert decided(change("address", {"party": "paying_parent"})).outcome == "recorded"
    assert decided(change("employment", {"party": "paying_parent", "status": "started"})).outcome == "recorded"
    employed = decided(change("employment", {"party": "paying_parent", "status": "started",
                                             "weekly_income_pence": 80_000}))
    assert employed.counts


def test_close_request_ends_the_case() -> None:
    decision = decided(change("close_request", effective="2025-06-30"))
    assert decision.closes_case and decision.effective_date == date(2025, 6, 30)


# --- manual review --------------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "context", "reason", "team"), [
    (change("shared_care_nights", {"child_id": "c-1", "nights": 60}, evidence_disputed=True), CaseContext(),
     "evidence_disputed", "changes-disputes"),
    (change("address", {"party": "receiving_parent"}), CaseContext(safeguarded=True), "safeguarding",
     "changes-safeguarding"),
    (change("paying_parent_income", {"weekly_income_pence": 90_000}, reported_by="receiving_parent"), CaseContext(),
     "rules_cannot_decide", "changes-review"),
    (change("child_added", {"receiving_parent_id": "rp-9", "child_id": "c-9"}), CaseContext(),
     "rules_cannot_decide", "changes-review"),
])
def test_review_is_needed(raw, context, reason, team) -> None:
    decision = decided(raw, context=context)
    assert decision.needs_review and (decision.review_reason, decision.team) == (reason, team)
    assert not decide(parse_change(raw, TODAY), base_inputs(), context, reviewed=True).needs_review


def test_safeguarded_case_income_change_needs_no_review() -> None:
    assert not decided(change("paying_parent_income", {"weekly_income_pence": 90_000}),
                       context=CaseContext(safeguarded=True)).needs_review


# --- bad input ------------------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "field"), [
    (change("lottery_win"), "kind"),
    (change("paying_parent_income", {"weekly_income_pence": 1}, reported="2025-06-03"), "reported_date"),
    (change("paying_parent_income", {"weekly_income_pence": 1}, effective="2025-09-03"), "effective_date"),
    (change("paying_parent_income", {"weekly_income_pence": 1}, effective="2001-01-01"), "effective_date"),
    (change("paying_parent_income", {"weekly_income_pence": 1.5}), "details.weekly_income_pence"),
    (change("paying_parent_income", {}), "details.weekly_income_pence"),
    (change("shared_care_nights", {"child_id": "c-1", "nights": 400}), "details.nights"),
    (change("address", {"party": "paying_parent", "street": "x"}), "details.street"),
    (change("service_type", {"service_type": "cash"}), "details.service_type"),
    (change("address", {"party": "paying_parent"}, reported_by="neighbour"), "reported_by"),
])
def test_bad_changes_name_the_field(raw, field) -> None:
    with pytest.raises(ChangeValidationError) as error:
        parse_change(raw, TODAY)
    assert error.value.field == field


def test_effective_date_up_to_three_months_ahead_is_allowed() -> None:
    assert parse_change(change("close_request", effective="2025-09-02"), TODAY).effective_date == date(2025, 9, 2)
    assert set(CHANGE_KINDS) >= {"paying_parent_income", "shared_care_nights", "child_added", "child_left",
                                 "child_left_education", "relevant_other_children", "flat_rate_benefit_started",
                                 "flat_rate_benefit_stopped", "address", "employment", "service_type", "close_request"}


# --- several changes, annual review ----------------------------------------------------------

def test_changes_apply_in_effective_date_order_whatever_order_they_arrive() -> None:
    later = parse_change(change("shared_care_nights", {"child_id": "c-1", "nights": 110}, effective="2025-05-20"), TODAY)
    earlier = parse_change(change("flat_rate_benefit_started", effective="2025-05-10"), TODAY)
    final, decisions = apply_in_order(base_inputs(), [(1, later), (2, earlier)], CaseContext())
    assert [n for n, _ in decisions] == [2, 1]
    assert final["paying_parent"]["flat_rate_benefit"] is True
    assert final["receiving_parents"][0]["children"][0]["shared_care_nights"] == 110
    reverse, _ = apply_in_order(base_inputs(), [(2, earlier), (1, later)], CaseContext())
    assert reverse == final


def test_a_change_during_annual_review_is_folded_in_without_tolerance() -> None:
    small = parse_change(change("paying_parent_income", {"weekly_income_pence": 42_000}), TODAY)
    assert not decide(small, base_inputs(), CaseContext()).counts
    final, decisions = fold_into_review(base_inputs(), [(1, small)], review_date=date(2025, 6, 10))
    assert final["paying_parent"]["gross_weekly_income_pence"] == 42_000
    assert decisions[0][1].effective_date == date(2025, 6, 10)


# --- SLA view ----------------------------------------------------------------------------------

def test_age_bands_and_on_time_share() -> None:
    now = datetime(2025, 6, 30, tzinfo=UTC)
    day = 86_400.0

    def item(n: int, age: float, cleared_age: float | None = None) -> SlaItem:
        received = now - timedelta(days=age)
        cleared = None if cleared_age is None else received + timedelta(days=cleared_age)
        return SlaItem("k1", n, "address", received, day, cleared_at=cleared)

    items = [item(1, 0), item(2, 7.9), item(3, 8), item(4, 21.5), item(5, 28), item(6, 30),
             item(7, 10, cleared_age=3), item(8, 29, cleared_age=28.5), item(9, 100, cleared_age=2)]
    report = sla_report(items, now, oldest=2)
    assert report.open_by_band == {"0-7": 2, "8-14": 1, "15-21": 1, "22-28": 1, "28+": 1}
    assert (report.cleared_last_4_weeks, report.cleared_on_time_last_4_weeks) == (2, 1)
    assert report.breaches_open == 1 and report.breaches_last_4_weeks == 1
    assert [o.change_no for o in report.oldest] == [6, 5] and report.oldest[0].breached
    assert age_band(28) == "22-28" and age_band(29) == "28+"


# --- a backdated change and the payments already due -------------------------------------------

def test_backdated_arrears_follow_the_payment_periods_already_due() -> None:
    from domain.changes import WeeklyAmounts, backdated_arrears_pence

    start, old, new = date(2025, 1, 6), WeeklyAmounts(8_000, 1_600), WeeklyAmounts(12_000, 2_400)
    # Weekly from Monday 6 January, due on each Monday. From Wednesday 15 January, seen on
    # Monday 27 January: 5 of the 7 days of the week of the 13th, then the weeks of the 20th
    # and of the 27th (due that day) in full, each £40 + £8 fee a week more.
    arrears = backdated_arrears_pence("weekly", start, old, new, date(2025, 1, 15), date(2025, 1, 27))
    assert arrears == round(4_000 * 5 / 7) + round(800 * 5 / 7) + 2 * (4_000 + 800) == 13_028
    # The week of the 27th is not due yet on the 26th; a decrease is owed back; nothing before the
    # effective date (nor before the schedule starts), nor when the change is not backdated.
    assert backdated_arrears_pence("weekly", start, old, new, date(2025, 1, 15), date(2025, 1, 26)) == 13_028 - 4_800
    assert backdated_arrears_pence("weekly", start, new, old, date(2025, 1, 15), date(2025, 1, 27)) == -13_028
    assert backdated_arrears_pence("weekly", start, old, new, date(2025, 1, 27), date(2025, 1, 27)) == 0
    assert backdated_arrears_pence("weekly", start, old, new, date(2024, 12, 1), date(2025, 1, 12)) == 4_800


# --- a child who stopped qualifying, HMRC's figures, special expenses variations ------------------

def _stopped_c3(dob: str = "2008-03-01") -> CaseContext:
    return CaseContext(stopped_children={"c-3": StoppedChild("rp-1", date.fromisoformat(dob), 52)})


def test_continuing_education_after_stopping_restores_the_child_from_the_day_told() -> None:
    raw = change("child_continuing_education", {"child_id": "c-3"}, reported="2025-06-01", effective="2025-04-01")
    decision = decided(raw, context=_stopped_c3())
    assert (decision.counts, decision.outcome, decision.effective_date) == (True, "recalculated", date(2025, 6, 1))
    children = decision.new_inputs["receiving_parents"][0]["children"]
    assert children[-1] == {"id": "c-3", "shared_care_nights": 52}
    assert "qualify again from 2025-06-01" in decision.reason and "2028-02-29" in decision.reason


def test_continuing_education_does_not_restore_a_young_person_of_20() -> None:
    raw = change("child_continuing_education", {"child_id": "c-3"}, reported="2025-06-01", effective="2025-06-01")
    decision = decided(raw, context=_stopped_c3("2005-05-31"))
    assert (decision.counts, decision.outcome) == (False, "no_change")
    assert "turned 20 on 2025-05-31" in decision.reason


def test_only_a_stopped_child_may_be_reported_as_continuing_in_education() -> None:
    unknown = parse_change(change("child_continuing_education", {"child_id": "c-3"}), TODAY)
    with pytest.raises(ChangeValidationError, match="not on the case"):
        check_against_case(unknown, base_inputs(), CaseContext())
    check_against_case(unknown, base_inputs(), _stopped_c3())
    left = parse_change(change("child_left", {"child_id": "c-3"}), TODAY)
    with pytest.raises(ChangeValidationError, match="not on the case"):
        check_against_case(left, base_inputs(), _stopped_c3())


def test_an_income_figure_from_hmrc_is_recorded_as_historic_income() -> None:
    raw = change("paying_parent_income", {"weekly_income_pence": 100_000}, reported_by="hmrc")
    decision = decided(raw, context=CaseContext(hmrc_income_is_historic=True))
    assert (decision.counts, decision.outcome, decision.new_inputs) == (False, "recorded", base_inputs())
    assert "historic income" in decision.reason and "next annual review" in decision.reason
    from_parent = decided(change("paying_parent_income", {"weekly_income_pence": 100_000}),
                          context=CaseContext(hmrc_income_is_historic=True))
    assert from_parent.counts
    # Before the rule: HMRC's figure was taken as current income.
    assert decided(raw).counts


def test_a_special_expenses_variation_is_taken_off_income_from_the_day_applied_after_a_caseworker() -> None:
    raw = change("special_expenses_variation", {"ground": "contact_costs", "weekly_pence": 1500})
    decision = decided(raw)
    assert (decision.counts, decision.effective_date, decision.review_reason) == (True, date(2025, 6, 1), "variation")
    assert decision.new_inputs["paying_parent"]["special_expenses_weekly_pence"] == 1500
    inputs = decision.new_inputs
    again = decide(parse_change(change("special_expenses_variation", {"ground": "prior_debts", "weekly_pence": 2000}),
                                TODAY), inputs, CaseContext())
    assert again.new_inputs["paying_parent"]["special_expenses_weekly_pence"] == 3500
    assert weekly(again.new_inputs, TODAY) < weekly(base_inputs(), TODAY)


@pytest.mark.parametrize(("details", "inputs", "context", "words"), [
    ({"ground": "contact_costs", "weekly_pence": 999}, None, CaseContext(), "below the threshold of £10.00"),
    ({"ground": "prior_debts", "weekly_pence": 800}, None, CaseContext(), "below the threshold of £10.00"),
    ({"ground": "contact_costs", "weekly_pence": 5000}, None, CaseContext(default_decision_from=date(2025, 3, 1)),
     "default decision"),
    ({"ground": "contact_costs", "weekly_pence": 5000},
     {**base_inputs(), "paying_parent": {"gross_weekly_income_pence": 40_000, "flat_rate_benefit": True}},
     CaseContext(), "flat rate because of a benefit"),
])
def test_a_variation_refused_at_the_first_look_changes_nothing_and_needs_no_caseworker(
        details, inputs, context, words) -> None:
    decision = decided(change("special_expenses_variation", details), inputs=inputs, context=context)
    assert (decision.counts, decision.outcome, decision.review_reason) == (False, "no_change", None)
    assert words in decision.reason


def test_a_relevant_other_childs_disability_costs_have_no_threshold() -> None:
    decision = decided(change("special_expenses_variation",
                              {"ground": "relevant_other_child_disability", "weekly_pence": 100}))
    assert decision.counts


def test_only_the_paying_parent_or_a_caseworker_applies_for_special_expenses() -> None:
    with pytest.raises(ChangeValidationError, match="reported_by"):
        parse_change(change("special_expenses_variation", {"ground": "contact_costs", "weekly_pence": 5000},
                            reported_by="receiving_parent"), TODAY)
    with pytest.raises(ChangeValidationError, match="details.ground"):
        parse_change(change("special_expenses_variation", {"ground": "holidays", "weekly_pence": 5000}), TODAY)


def test_a_variation_never_takes_liability_below_the_flat_rate() -> None:
    """reg 74(1A): £149.59 a week less £145 of contact costs is £4.59, below £7 only because of the
    variation: the flat rate, not nil."""
    inputs = {**base_inputs(income=14_959), "service_type": "direct_pay"}
    inputs["receiving_parents"] = [{"id": "rp-1", "children": [{"id": "c-1", "shared_care_nights": 0}]}]
    varied = decided(change("special_expenses_variation", {"ground": "contact_costs", "weekly_pence": 14_500}),
                     inputs=inputs).new_inputs
    result = calculate(parse_request(varied), effective_date=TODAY)
    assert (result.rate, result.weekly_liability_pence) == ("flat", 700)
