"""UK (England and Wales) working days, with bank holidays as data.

Disbursement to a receiving parent is due within 2 working days of the money arriving (docs/rules.md section 8),
so weekends and bank holidays matter. The announced dates are data; for years beyond the data the
statutory pattern is computed (New Year, Easter, early May, spring, summer, Christmas, Boxing Day
with substitute days), which is what the announcements have followed apart from one-off changes
such as 2022 and 2023 (coronation, funeral) — those years are listed explicitly.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache

# gov.uk/bank-holidays, England and Wales.
BANK_HOLIDAYS_ENGLAND_AND_WALES: dict[int, tuple[str, ...]] = {
    2022: ("2022-01-03", "2022-04-15", "2022-04-18", "2022-05-02", "2022-06-02", "2022-06-03",
           "2022-08-29", "2022-09-19", "2022-12-26", "2022-12-27"),
    2023: ("2023-01-02", "2023-04-07", "2023-04-10", "2023-05-01", "2023-05-08", "2023-05-29",
           "2023-08-28", "2023-12-25", "2023-12-26"),
    2024: ("2024-01-01", "2024-03-29", "2024-04-01", "2024-05-06", "2024-05-27", "2024-08-26",
           "2024-12-25", "2024-12-26"),
    2025: ("2025-01-01", "2025-04-18", "2025-04-21", "2025-05-05", "2025-05-26", "2025-08-25",
           "2025-12-25", "2025-12-26"),
    2026: ("2026-01-01", "2026-04-03", "2026-04-06", "2026-05-04", "2026-05-25", "2026-08-31",
           "2026-12-25", "2026-12-28"),
    2027: ("2027-01-01", "2027-03-26", "2027-03-29", "2027-05-03", "2027-05-31", "2027-08-30",
           "2027-12-27", "2027-12-28"),
    2028: ("2028-01-03", "2028-04-14", "2028-04-17", "2028-05-01", "2028-05-29", "2028-08-28",
           "2028-12-25", "2028-12-26"),
}


def _easter_sunday(year: int) -> date:
    """Anonymous Gregorian algorithm (Meeus/Jones/Butcher)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    to_sunday = (32 + 2 * e + 2 * i - h - k) % 7   # days from the Paschal full moon to the next Sunday
    m = (a + 11 * h + 22 * to_sunday) // 451
    month = (h + to_sunday - 7 * m + 114) // 31
    day = (h + to_sunday - 7 * m + 114) % 31 + 1
    return date(year, month, day)


def _first_monday(year: int, month: int) -> date:
    day = date(year, month, 1)
    return day + timedelta(days=(7 - day.weekday()) % 7)


def _last_monday(year: int, month: int) -> date:
    next_month = date(year + month // 12, month % 12 + 1, 1)
    last = next_month - timedelta(days=1)
    return last - timedelta(days=last.weekday())


def _computed_holidays(year: int) -> frozenset[date]:
    easter = _easter_sunday(year)
    found = {easter - timedelta(days=2), easter + timedelta(days=1), _first_monday(year, 5),
             _last_monday(year, 5), _last_monday(year, 8)}
    new_year = date(year, 1, 1)
    found.add(new_year + timedelta(days=(7 - new_year.weekday()) % 7 if new_year.weekday() >= 5 else 0))
    christmas, boxing = date(year, 12, 25), date(year, 12, 26)
    taken: set[date] = set()
    for holiday in (christmas, boxing):
        day = holiday
        while day.weekday() >= 5 or day in taken:
            day += timedelta(days=1)
        taken.add(day)
    return frozenset(found | taken)


@lru_cache(maxsize=64)
def bank_holidays(year: int) -> frozenset[date]:
    listed = BANK_HOLIDAYS_ENGLAND_AND_WALES.get(year)
    if listed is not None:
        return frozenset(date.fromisoformat(d) for d in listed)
    return _computed_holidays(year)


def is_working_day(day: date) -> bool:
    return day.weekday() < 5 and day not in bank_holidays(day.year)


def add_working_days(start: date, days: int) -> date:
    """The date `days` working days after `start` (start itself does not count)."""
    if days < 0:
        raise ValueError("days must not be negative")
    day = start
    while days:
        day += timedelta(days=1)
        if is_working_day(day):
            days -= 1
    return day
