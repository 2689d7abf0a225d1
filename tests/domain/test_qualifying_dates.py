"""Qualifying children (reg 76; SI 2021/738; docs/rules.md): every child qualifies until the 31
August on or after their 16th birthday; after that only while reported as continuing in full-time
non-advanced education, until the terminal date after leaving, never after the day before the
20th birthday."""

from __future__ import annotations

from datetime import date

import pytest

from domain.lifecycle import august_after_sixteenth, last_qualifying_day, terminal_date


@pytest.mark.parametrize("born, august", [
    ("2009-10-15", "2026-08-31"),   # 16 on 15 October 2025: the next 31 August
    ("2008-08-31", "2024-08-31"),   # 16 on 31 August itself
    ("2008-09-01", "2025-08-31"),
    ("2008-02-29", "2024-08-31"),   # 16 on 29 February 2024
])
def test_every_child_qualifies_to_the_31_august_on_or_after_the_16th_birthday(born: str, august: str) -> None:
    assert august_after_sixteenth(date.fromisoformat(born)) == date.fromisoformat(august)
    assert last_qualifying_day(date.fromisoformat(born), False) == date.fromisoformat(august)


@pytest.mark.parametrize("left, terminal", [
    ("2027-03-10", "2027-05-31"), ("2027-05-31", "2027-05-31"), ("2027-06-01", "2027-08-31"),
    ("2027-12-01", "2028-02-29"), ("2026-11-30", "2026-11-30"), ("2027-01-15", "2027-02-28"),
])
def test_the_terminal_date_is_the_first_end_of_february_may_august_or_november_on_or_after_leaving(
        left: str, terminal: str) -> None:
    assert terminal_date(date.fromisoformat(left)) == date.fromisoformat(terminal)


def test_continuing_in_education_qualifies_to_the_day_before_the_20th_birthday() -> None:
    assert last_qualifying_day(date(2009, 10, 15), True) == date(2029, 10, 14)


def test_a_leaver_qualifies_to_the_terminal_date_capped_at_the_day_before_the_20th_birthday() -> None:
    born = date(2009, 10, 15)
    assert last_qualifying_day(born, True, date(2027, 3, 10)) == date(2027, 5, 31)
    assert last_qualifying_day(born, True, date(2029, 9, 1)) == date(2029, 10, 14)   # not 30 November 2029


def test_leaving_before_the_31_august_after_the_16th_birthday_still_qualifies_to_it() -> None:
    assert last_qualifying_day(date(2009, 10, 15), True, date(2026, 3, 1)) == date(2026, 8, 31)
