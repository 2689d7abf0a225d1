"""The window of dates accepted from outside (domain.date_window)."""

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain import lifecycle
from domain.changes import ChangeValidationError, parse_change
from domain.date_window import date_window, parse_day_in_window


def test_the_window_is_the_2012_scheme_to_a_fixed_horizon() -> None:
    window = date_window()
    assert window.earliest == date(2012, 12, 10)
    assert window.problem(window.earliest) is None and window.problem(window.latest) is None
    assert "before the 2012 scheme" in (window.problem(date(2012, 12, 9)) or "")
    assert "implausibly far ahead" in (window.problem(window.latest + timedelta(days=1)) or "")


def test_text_that_is_not_an_iso_date_is_refused_in_words() -> None:
    assert parse_day_in_window("31/12/2026") == (None, "'31/12/2026' is not an ISO date (YYYY-MM-DD)")
    assert parse_day_in_window("2026-02-30")[0] is None


@given(st.dates())
def test_every_accepted_date_survives_a_case_lifes_arithmetic(day: date) -> None:
    # What the workflows do with a date: a child's 20th birthday, a year of reviews, 52-week periods.
    parsed, problem = parse_day_in_window(day.isoformat())
    if problem is None:
        assert parsed == day
        lifecycle.add_years(day, 20)
        _ = day + timedelta(weeks=52 * 20)
    else:
        assert not date_window().earliest <= day <= date_window().latest


def test_a_reported_child_born_beyond_the_window_is_refused() -> None:
    def child_born(on: str) -> dict[str, object]:
        return {"kind": "child_added", "reported_date": "2026-06-01", "effective_date": "2026-06-01",
                "details": {"receiving_parent_id": "rp-1", "child_id": "c-9", "date_of_birth": on}}

    with pytest.raises(ChangeValidationError) as refused:
        parse_change(child_born("9999-12-31"), date(2026, 6, 1))
    assert "implausibly far ahead" in str(refused.value)
    # Born before the scheme began: a child may well be.
    assert parse_change(child_born("2010-01-01"), date(2026, 6, 1)).details["date_of_birth"] == "2010-01-01"
