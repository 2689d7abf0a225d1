"""domain.service_type: why a case took its service type, when a move to Collect & Pay takes
effect, and when missed Direct Pay payments make a pattern."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from domain.payments.schedule import Frequency, period_containing, period_start
from domain.service_type import collect_and_pay_start, direct_pay_pattern, service_type_reason


def test_the_reason_for_the_service_type_never_says_why_a_case_is_safeguarded() -> None:
    assert service_type_reason(True, "direct_pay") == "safeguarding: no consent of the other parent needed"
    assert service_type_reason(False, "collect_and_pay") == "a parent asked for it"
    assert service_type_reason(False, "direct_pay") == "the default when both parents agree"


def test_a_move_decided_mid_period_starts_with_the_next_monthly_period() -> None:
    # Periods run from the initial effective date, the 12th of each month.
    assert collect_and_pay_start("monthly", date(2025, 1, 12), date(2025, 1, 12), date(2025, 3, 20)) == date(2025, 4, 12)


def test_a_move_decided_on_the_first_day_of_a_period_starts_that_day() -> None:
    assert collect_and_pay_start("weekly", date(2025, 1, 6), date(2025, 1, 6), date(2025, 2, 3)) == date(2025, 2, 3)


def test_a_move_never_starts_before_the_liability_in_force() -> None:
    assert collect_and_pay_start("weekly", date(2025, 1, 6), date(2025, 3, 1), date(2025, 2, 3)) == date(2025, 3, 1)


def test_before_the_first_period_the_move_starts_with_it() -> None:
    assert collect_and_pay_start("monthly", date(2025, 5, 1), None, date(2025, 4, 20)) == date(2025, 5, 1)


@given(frequency=st.sampled_from([f.value for f in Frequency]),
       first=st.dates(date(2013, 1, 1), date(2030, 1, 1)),
       days_later=st.integers(0, 800))
def test_the_move_starts_on_a_period_boundary_on_or_after_the_day_decided(frequency: str, first: date,
                                                                         days_later: int) -> None:
    today = first + timedelta(days=days_later)
    start = collect_and_pay_start(frequency, first, None, today)
    schedule = Frequency(frequency)
    assert start >= today
    assert period_start(schedule, first, period_containing(schedule, first, start)) == start
    # and it is the first such boundary: the period before it started before today
    index = period_containing(schedule, first, start)
    assert index == 0 or period_start(schedule, first, index - 1) < today


def test_two_misses_within_three_months_are_a_pattern() -> None:
    assert direct_pay_pattern([date(2025, 1, 15), date(2025, 4, 15)])
    assert not direct_pay_pattern([date(2025, 1, 15), date(2025, 4, 16)])
    assert not direct_pay_pattern([date(2025, 1, 15)])
    assert direct_pay_pattern([date(2025, 9, 1), date(2025, 1, 15), date(2025, 10, 1)])   # any order


def test_three_misses_can_be_asked_for() -> None:
    dues = [date(2025, 1, 1), date(2025, 2, 1), date(2025, 6, 1)]
    assert not direct_pay_pattern(dues, misses=3)
    assert direct_pay_pattern([*dues, date(2025, 3, 1)], misses=3)


def test_the_backdated_arrears_letter_says_how_each_service_settles_them() -> None:
    from domain.changes import backdated_arrears_words

    on = date(2025, 3, 1)
    assert "£12.34 more is owed" in backdated_arrears_words(1234, on, "collect_and_pay")
    assert "added to the paying parent's account as arrears" in backdated_arrears_words(1234, on, "collect_and_pay")
    assert "£12.34 less was owed" in backdated_arrears_words(-1234, on, "collect_and_pay")
    assert "pays this to the receiving parent directly" in backdated_arrears_words(1234, on, "direct_pay")
    assert "settle this between them" in backdated_arrears_words(-1234, on, "direct_pay")
    assert "from 2025-03-01" in backdated_arrears_words(1, on, "direct_pay")
