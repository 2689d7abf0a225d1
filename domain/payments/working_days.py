"""UK (England and Wales) working days, with bank holidays as data
(bank_holidays_england_and_wales.json beside this module).

Disbursement to a receiving parent is due within 2 working days of the money arriving, and the
first Collect & Pay collection no earlier than 10 working days after the payment schedule letter
(docs/rules.md section 8), so weekends and bank holidays matter. For years beyond the data the
statutory pattern is computed (New Year, Easter, early May, spring, summer, Christmas, Boxing Day
with substitute days), which is what the announcements have followed apart from one-off changes
such as 2022 and 2023 (coronation, funeral) — those years are listed explicitly.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from functools import lru_cache
from importlib import resources

# The announced dates (gov.uk/bank-holidays, England and Wales) are data, so a new year's
# announcement or a one-off holiday is a change to that file, not to this code.
HOLIDAYS_FILE = "bank_holidays_england_and_wales.json"




def _announced_bank_holidays() -> dict[int, frozenset[date]]:
    raw = json.loads(resources.files(__package__).joinpath(HOLIDAYS_FILE).read_text(encoding="utf-8"))
    return {int(year): frozenset(date.fromisoformat(day) for day in days) for year, days in raw["dates"].items()}


# Read once, on import (workflows import this module before they run, never inside a task).
ANNOUNCED_BANK_HOLIDAYS = _announced_bank_holidays()


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
    listed = ANNOUNCED_BANK_HOLIDAYS.get(year)
    return listed if listed is not None else _computed_holidays(year)


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
