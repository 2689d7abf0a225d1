"""Pure payments domain: schedules, regeneration, allocation order, fees, working days, statements."""

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.payments.allocation import ENFORCEMENT, FEE, MAINTENANCE, Debt, allocate, allocation_order
from domain.payments.fees import enforcement_charge, receiving_parent_fee
from domain.payments.schedule import (
    PERIODS_PER_YEAR,
    Frequency,
    Rate,
    adjustments,
    instalment,
    period,
    period_containing,
    rates_after_change,
    schedule,
)
from domain.payments.statement import LedgerEvent, render_text, statement_lines
from domain.payments.working_days import add_working_days, bank_holidays, is_working_day
from domain.rulesets import rule_set

RULES = rule_set("gb-2012")
frequencies = st.sampled_from(list(Frequency))
starts = st.dates(min_value=date(2024, 1, 1), max_value=date(2027, 12, 31))
weekly = st.integers(min_value=0, max_value=300_000)


def test_monthly_instalments_sum_to_52_weeks_exactly() -> None:
    year = schedule(Frequency.MONTHLY, date(2026, 1, 31), (Rate(date(2026, 1, 31), 4801, 960),), 12)
    assert sum(i.amount_pence for i in year) == 52 * 4801
    assert sum(i.fee_pence for i in year) == 52 * 960
    assert [i.period.start for i in year[:3]] == [date(2026, 1, 31), date(2026, 2, 28), date(2026, 3, 31)]


@given(frequencies, starts, weekly)
def test_a_year_of_any_frequency_collects_52_weeks(frequency, start, amount) -> None:
    year = schedule(frequency, start, (Rate(start, amount),), PERIODS_PER_YEAR[frequency])
    assert sum(i.amount_pence for i in year) == 52 * amount


@given(frequencies, starts, st.integers(0, 60), st.integers(0, 40))
def test_periods_are_contiguous_and_the_payment_falls_inside_its_period(frequency, start, index, offset) -> None:
    p, following = period(frequency, start, index, offset), period(frequency, start, index + 1, offset)
    assert p.end == following.start and p.start < p.end
    assert p.start <= p.due_date < p.end
    assert period_containing(frequency, start, p.start) == index
    assert period_containing(frequency, start, p.end - timedelta(days=1)) == index


@settings(max_examples=200)
@given(frequencies, starts, weekly, weekly, st.integers(0, 400), st.integers(1, 30), st.data())
def test_regeneration_never_loses_or_double_counts_a_period(frequency, start, old_w, new_w, change_after,
                                                            charged_count, data) -> None:
    old = (Rate(start, old_w, old_w // 5),)
    new = rates_after_change(old, Rate(start + timedelta(days=change_after), new_w, new_w // 5))
    charged = data.draw(st.lists(st.integers(0, charged_count), unique=True))
    found = adjustments(frequency, start, old, new, charged)
    assert len({a.period.index for a in found}) == len(found)       # at most one adjustment per period
    by_index = {a.period.index: a for a in found}
    for index in range(charged_count + 1):
        before = instalment(frequency, start, old, index)
        after = instalment(frequency, start, new, index)
        adj = by_index.get(index)
        if index in charged:   # charged periods: old charge + adjustment = new amount, exactly
            assert before.amount_pence + (adj.amount_delta_pence if adj else 0) == after.amount_pence
            assert before.fee_pence + (adj.fee_delta_pence if adj else 0) == after.fee_pence
        else:                  # uncharged periods are charged later at the new amount, never adjusted
            assert adj is None
        assert before.period == after.period                            # same periods, same dates


def test_a_change_mid_period_is_apportioned_by_days() -> None:
    start = date(2026, 1, 5)
    rates = rates_after_change((Rate(start, 7000),), Rate(date(2026, 1, 20), 14000))   # day 15 of 28
    p = instalment(Frequency.FOUR_WEEKLY, start, rates, 0)
    assert p.amount_pence == (7000 * 4 * 15 + 14000 * 4 * 13) // 28


def test_rates_must_be_whole_non_negative_pence() -> None:
    with pytest.raises(ValueError):
        Rate(date(2026, 1, 1), 12.5)  # type: ignore[arg-type]  # a float on purpose: the run-time check must refuse it
    with pytest.raises(ValueError):
        Rate(date(2026, 1, 1), -1)


def _debts():
    return [Debt("m1", date(2026, 1, 5), MAINTENANCE, 5000), Debt("f1", date(2026, 1, 5), FEE, 1000),
            Debt("e1", date(2026, 1, 1), ENFORCEMENT, 5000), Debt("m2", date(2026, 2, 5), MAINTENANCE, 5000),
            Debt("f2", date(2026, 2, 5), FEE, 1000), Debt("m0", date(2025, 12, 5), MAINTENANCE, 3000)]


def test_allocation_order_current_then_oldest_arrears_then_enforcement() -> None:
    order = [d.key for d in allocation_order(_debts(), date(2026, 2, 5))]
    assert order == ["m2", "f2", "m0", "m1", "f1", "e1"]


@given(st.integers(1, 40_000), st.sampled_from([None, date(2026, 1, 5), date(2026, 2, 5)]))
def test_allocation_is_a_prefix_of_the_order_and_conserves_money(amount, current) -> None:
    debts = _debts()
    allocations, rest = allocate(amount, debts, current)
    assert sum(a.amount_pence for a in allocations) + rest == amount
    order = allocation_order(debts, current)
    for position, allocation in enumerate(allocations):
        assert allocation.debt == order[position]
        assert 0 < allocation.amount_pence <= allocation.debt.outstanding_pence
        if position < len(allocations) - 1:      # every debt before the last touched is paid in full
            assert allocation.amount_pence == allocation.debt.outstanding_pence
    assert rest == 0 or len(allocations) == len(order)


@pytest.mark.parametrize("bad", [0, -5, 12.5, True])
def test_allocation_refuses_non_positive_or_non_integer_money(bad) -> None:
    with pytest.raises(ValueError):
        allocate(bad, _debts(), None)


def test_fees_and_enforcement_charges() -> None:
    assert receiving_parent_fee(10000, RULES) == 400
    assert receiving_parent_fee(4913, RULES) == 197        # 196.52 -> 197
    assert receiving_parent_fee(0, RULES) == 0
    assert enforcement_charge("liability_order", RULES) == 30000
    with pytest.raises(ValueError, match="unknown enforcement charge"):
        enforcement_charge("committal", RULES)


def test_working_days_skip_weekends_and_bank_holidays() -> None:
    assert add_working_days(date(2026, 12, 24), 2) == date(2026, 12, 30)   # 25th, 26-27 weekend, 28th holiday
    assert add_working_days(date(2026, 4, 2), 2) == date(2026, 4, 8)       # Good Friday, Easter Monday
    assert add_working_days(date(2026, 1, 9), 2) == date(2026, 1, 13)      # Friday -> Tuesday
    assert not is_working_day(date(2026, 8, 31))


@pytest.mark.parametrize("year", [2024, 2025, 2026, 2027, 2028])
def test_computed_holidays_agree_with_the_announced_data(year) -> None:
    from domain.payments.working_days import _computed_holidays

    assert _computed_holidays(year) == bank_holidays(year)


def test_statement_running_balance_and_text() -> None:
    lines = statement_lines([LedgerEvent(date(2026, 1, 5), "period_charge", due_pence=6000),
                             LedgerEvent(date(2026, 1, 6), "incoming_payment", paid_pence=4000)])
    assert [line.balance_pence for line in lines] == [6000, 2000]
    text = render_text("c-1", lines)
    assert "Balance owed: £20.00" in text and "Payment received" in text
