"""The window of dates the service accepts from outside (docs/rules.md, "Dates from outside").

Every date that arrives through an RPC, an update or a signal is checked against it before it
reaches a workflow. Inside the window, date arithmetic of a case's life (a child's 20th
birthday, a 52-week period, a year of reviews) cannot overflow, so a date that passed the check
never fails a workflow task. The bounds are data (domain/rulesets/date_window.json).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib import resources


@dataclass(frozen=True)
class DateWindow:
    earliest: date
    latest: date

    def problem(self, day: date) -> str | None:
        """Why `day` is refused, in words for the caller; None when it is inside the window."""
        if day < self.earliest:
            return f"{day.isoformat()} is before the 2012 scheme began ({self.earliest.isoformat()})"
        if day > self.latest:
            return f"{day.isoformat()} is implausibly far ahead (latest accepted {self.latest.isoformat()})"
        return None


@cache
def date_window() -> DateWindow:
    data = json.loads(resources.files("domain.rulesets").joinpath("date_window.json").read_text(encoding="utf-8"))
    return DateWindow(earliest=date.fromisoformat(data["earliest"]), latest=date.fromisoformat(data["latest"]))


def parse_day_in_window(text: str) -> tuple[date | None, str | None]:
    """An ISO date from outside, or the reason it is refused (not ISO, or outside the window)."""
    try:
        day = date.fromisoformat(text)
    except (TypeError, ValueError):
        return None, f"{text!r} is not an ISO date (YYYY-MM-DD)"
    return day, date_window().problem(day)
