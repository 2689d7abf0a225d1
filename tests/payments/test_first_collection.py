"""The first Collect & Pay collection (domain.payments.schedule): no earlier than 10 working days
after the payment schedule letter, with the liability from the initial effective date up to it
spread as initial arrears over the instalments of the first 52-week period; bank holidays are
data (domain/payments/bank_holidays_england_and_wales.json)."""

from __future__ import annotations

import json
from datetime import date, timedelta
from importlib import resources

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.payments import working_days
from domain.payments.schedule import (
    Frequency,
    Rate,
    Segment,
    first_collection_date,
    instalment,
    instalment_at,
    next_instalments,
)


def test_the_announced_bank_holidays_are_read_from_the_data_file() -> None:
    raw = json.loads(resources.files("domain.payments").joinpath(working_days.HOLIDAYS_FILE).read_text())
    assert raw["dates"]["2026"][-1] == "2026-12-28"          # Boxing Day's substitute, a Monday
    assert working_days.bank_holidays(2026) == frozenset(date.fromisoformat(d) for d in raw["dates"]["2026"])
    # 2022's one-off holidays (the Jubilee, the State Funeral) are in the data, not in any pattern.
    assert {date(2022, 6, 3), date(2022, 9, 19)} <= working_days.bank_holidays(2022)


def test_the_first_collection_is_10_working_days_after_the_letter() -> None:
    # Letter on Sunday 12 January 2025: Monday 13th is working day 1, Friday 24th working day 10.
    assert first_collection_date(date(2025, 1, 12)) == date(2025, 1, 24)
    # Letter on Friday 19 December 2025: Christmas, Boxing Day and New Year's Day do not count.
    assert first_collection_date(date(2025, 12, 19)) == date(2026, 1, 7)


def test_weekly_initial_arrears_are_spread_over_the_rest_of_the_first_52_weeks() -> None:
    # Liability £72 a week from Monday 3 March 2025; letter that day; first collection Monday
    # 17 March (10 working days). The periods due 3 and 10 March (£144) are initial arrears:
    # 50 instalments from 17 March to the end of the first 52 weeks carry £2.88 each.
    start, rates = date(2025, 3, 3), (Rate(date(2025, 3, 3), 7200),)
    collect = first_collection_date(start)
    assert collect == date(2025, 3, 17)
    year = [instalment(Frequency.WEEKLY, start, rates, i, first_collection=collect) for i in range(53)]
    assert [i.amount_pence for i in year[:3]] == [0, 0, 7488]
    assert {i.amount_pence for i in year[2:52]} == {7488}
    assert year[52].amount_pence == 7200, "the second year collects the liability alone"
    assert sum(i.amount_pence for i in year[:52]) == 52 * 7200


def test_monthly_initial_arrears_carry_their_remainder_on_the_first_collection() -> None:
    # £80 a week + £16 collection fee from 12 January 2025, monthly; letter that day, first
    # collection 24 January. Period 0 (due 12 January: £346.66 + £69.33 fee) is initial arrears,
    # spread over the 11 instalments due 12 February to 12 December: 34666 = 11 × 3151 + 5,
    # 6933 = 11 × 630 + 3 (remainders with the first).
    start, rates = date(2025, 1, 12), (Rate(date(2025, 1, 12), 8000, 1600),)
    collect = first_collection_date(start)
    plain = [instalment(Frequency.MONTHLY, start, rates, i) for i in range(12)]
    spread = [instalment(Frequency.MONTHLY, start, rates, i, first_collection=collect) for i in range(13)]
    assert (spread[0].amount_pence, spread[0].fee_pence) == (0, 0)
    assert (spread[1].amount_pence, spread[1].fee_pence) == (plain[1].amount_pence + 3156, plain[1].fee_pence + 633)
    assert (spread[2].amount_pence, spread[2].fee_pence) == (plain[2].amount_pence + 3151, plain[2].fee_pence + 630)
    assert spread[12] == instalment(Frequency.MONTHLY, start, rates, 12)
    assert sum(i.amount_pence for i in spread[:12]) == 52 * 8000
    assert sum(i.fee_pence for i in spread[:12]) == 52 * 1600


def test_the_letter_states_the_first_collection_not_a_payment_already_past() -> None:
    start, rates = date(2025, 1, 12), (Rate(date(2025, 1, 12), 8000, 1600),)
    upcoming, following = next_instalments(Frequency.MONTHLY, start, rates, start, first_collection=date(2025, 1, 24))
    assert upcoming.period.due_date == date(2025, 2, 12)
    assert upcoming.amount_pence == 34667 + 3156 and following.amount_pence == 34667 + 3151


def test_a_backdated_change_in_the_initial_period_changes_the_spread_not_a_due_date() -> None:
    segments = (Segment(Frequency.WEEKLY, date(2025, 3, 3), 0),)
    before = (Rate(date(2025, 3, 3), 7200),)
    after = (Rate(date(2025, 3, 3), 7200), Rate(date(2025, 3, 10), 9700))
    collect = date(2025, 3, 17)
    old = [instalment_at(segments, before, i, collect) for i in range(52)]
    new = [instalment_at(segments, after, i, collect) for i in range(52)]
    assert [i.period for i in old] == [i.period for i in new]
    assert sum(i.amount_pence for i in new) - sum(i.amount_pence for i in old) == 51 * 2500


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(list(Frequency)), st.dates(min_value=date(2024, 1, 1), max_value=date(2028, 12, 31)),
       st.integers(min_value=0, max_value=300_000), st.integers(min_value=0, max_value=60_000),
       st.integers(min_value=0, max_value=40))
def test_spreading_initial_arrears_neither_adds_nor_loses_a_penny_in_the_first_year(
        frequency, start, weekly, fee, letter_after) -> None:
    rates = (Rate(start, weekly, fee),)
    collect = first_collection_date(start + timedelta(days=letter_after))
    plain = [instalment(frequency, start, rates, i) for i in range(60)]
    spread = [instalment(frequency, start, rates, i, first_collection=collect) for i in range(60)]
    carried = [i for i, due in enumerate(spread) if due.period.due_date >= collect and
               due.period.start < start + timedelta(weeks=52)] or [next(i for i, d in enumerate(spread)
                                                                        if d.period.due_date >= collect)]
    upto = carried[-1] + 1
    assert sum(i.amount_pence for i in spread[:upto]) == sum(i.amount_pence for i in plain[:upto])
    assert sum(i.fee_pence for i in spread[:upto]) == sum(i.fee_pence for i in plain[:upto])
    assert all(i.amount_pence == i.fee_pence == 0 for i in spread if i.period.due_date < collect)
    assert spread[upto:] == plain[upto:]
