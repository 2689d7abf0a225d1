"""Case lifecycle date and decision rules (docs/rules.md sections 8 and 9).

Pure functions over `datetime.date` (UK dates): the case workflow calls them directly, and so
can reports and tests. No clocks here: "today" is always an argument.
"""

from __future__ import annotations

import calendar as _calendar
import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta

# reg 12: a posted notice must reach the paying parent at least 2 days before the initial
# effective date.
NOTICE_DAYS_BEFORE_EFFECTIVE_DATE = 2
# reg 20: the HMRC figure for an annual review is requested at most 30 days before it.
HMRC_REQUEST_DAYS_BEFORE_REVIEW = 30
# s.12: information missing for 28 days leads to a default maintenance decision.
DEFAULT_DECISION_AFTER_DAYS = 28

CLOSURE_REASONS = frozenset({
    "receiving_parent_request", "paying_parent_died", "receiving_parent_died", "child_died",
    "party_left_uk", "receiving_parent_no_longer_caring", "no_qualifying_child", "parents_living_together",
})
# The one closure a party asks for (s.4(5)): it takes effect from the day asked. Every other
# closure a caseworker records follows an event and ends liability from the date of that event
# (reg 18(3)(b)-(c); Sch 1 para 16).
CLOSURE_ON_REQUEST = "receiving_parent_request"
PAYMENT_FREQUENCIES = {"weekly": 1, "fortnightly": 2, "four_weekly": 4, "monthly": None}
# How the paying parent pays (4.4): recorded as they pay, not assumed to be a direct debit.
PAYMENT_METHODS = ("direct_debit", "standing_order", "deduction_from_earnings", "card")
SERVICE_TYPES = ("direct_pay", "collect_and_pay")


def add_years(day: date, years: int) -> date:
    """The same calendar day `years` later; 29 February becomes 28 February in other years."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def add_months(day: date, months: int) -> date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, _calendar.monthrange(year, month)[1]))


def initial_effective_date(notice_sent_on: date) -> date:
    """The date given in the notice to the paying parent: 2 days after it is posted (reg 12)."""
    return notice_sent_on + timedelta(days=NOTICE_DAYS_BEFORE_EFFECTIVE_DATE)


def first_review_date(initial_effective: date) -> date:
    """reg 19: 12 months after the initial effective date, then every anniversary."""
    return add_years(initial_effective, 1)


def next_review_date(review: date) -> date:
    return add_years(review, 1)


def hmrc_request_date(review: date) -> date:
    """The day the HMRC figure for a review is requested: 30 days before it."""
    return review - timedelta(days=HMRC_REQUEST_DAYS_BEFORE_REVIEW)


def default_decision_date(information_requested_on: date) -> date:
    return information_requested_on + timedelta(days=DEFAULT_DECISION_AFTER_DAYS)


def qualifies_until(date_of_birth: date, in_full_time_education: bool,
                    education_ended_on: date | None = None) -> date:
    """The first day the child no longer qualifies, as cases decided before `last_qualifying_day`
    took it (their recorded histories replay with it).

    Under 16 a child always qualifies; from 16 to the day before the 20th birthday only while in
    full-time non-advanced education. Leaving education ends qualification from that day, but
    never before the 16th birthday.
    """
    sixteenth, twentieth = add_years(date_of_birth, 16), add_years(date_of_birth, 20)
    if not in_full_time_education:
        return sixteenth
    if education_ended_on is not None:
        return min(twentieth, max(sixteenth, education_ended_on))
    return twentieth


# Child benefit terminal dates: the last day of these months (SI 2021/738).
TERMINAL_MONTHS = (2, 5, 8, 11)


def end_of_month(year: int, month: int) -> date:
    return date(year, month, _calendar.monthrange(year, month)[1])


def august_after_sixteenth(date_of_birth: date) -> date:
    """The 31 August on or after the 16th birthday: every child qualifies up to it (reg 76)."""
    sixteenth = add_years(date_of_birth, 16)
    august = date(sixteenth.year, 8, 31)
    return august if sixteenth <= august else date(sixteenth.year + 1, 8, 31)


def terminal_date(left_on: date) -> date:
    """The first last day of February, May, August or November on or after leaving education."""
    for year in (left_on.year, left_on.year + 1):
        for month in TERMINAL_MONTHS:
            end = end_of_month(year, month)
            if end >= left_on:
                return end
    raise AssertionError("a terminal date falls within twelve months")  # November's end is in the first year


def last_qualifying_day(date_of_birth: date, continuing_in_education: bool,
                        education_ended_on: date | None = None) -> date:
    """The last day the child qualifies (docs/rules.md, Qualifying children; reg 76, SI 2021/738).

    Every child qualifies until the 31 August on or after their 16th birthday. After that only a
    young person reported as continuing in full-time non-advanced education: until the terminal
    date after leaving, or while still in education, never later than the day before the 20th
    birthday. Continuing in education is a fact someone reports; it is never assumed.
    """
    august = august_after_sixteenth(date_of_birth)
    before_twentieth = add_years(date_of_birth, 20) - timedelta(days=1)
    if education_ended_on is not None:
        end = min(terminal_date(education_ended_on), before_twentieth)
    elif continuing_in_education:
        end = before_twentieth
    else:
        end = august
    return max(august, end)


def closure_date(reason: str, recorded_on: date, event_date: date | None,
                 initial_effective: date | None, application: date | None = None) -> date:
    """The first day without liability of a closure a caseworker records on `recorded_on`.

    After an event (a death, a party leaving the UK, the receiving parent no longer caring) that
    is the date of the event: not in the future, and not before the initial effective date (or
    the application, while there is none yet). At the receiving parent's request it is the day
    asked, which cannot be in the past. Without a date it is the day recorded. Raises ValueError
    with words a caseworker can act on.
    """
    if event_date is None:
        return recorded_on
    if reason == CLOSURE_ON_REQUEST:
        if event_date < recorded_on:
            raise ValueError(f"event_date {event_date.isoformat()} is in the past: a closure the receiving parent "
                             f"asks for takes effect from the day asked, {recorded_on.isoformat()} or later")
        return event_date
    if event_date > recorded_on:
        raise ValueError(f"event_date {event_date.isoformat()} is in the future (today is {recorded_on.isoformat()}): "
                         "record the closure once the event has happened")
    earliest, what = ((initial_effective, "the initial effective date") if initial_effective
                      else (application, "the application date"))
    if earliest is not None and event_date < earliest:
        raise ValueError(f"event_date {event_date.isoformat()} is before {what} ({earliest.isoformat()}): "
                         "no liability ran then")
    return event_date


def choose_service_type(requested: str, safeguarded: bool, paying_parent_shown_will_pay: bool = True) -> str:
    """4.5(3): Direct Pay by default; Collect & Pay when either parent asks, when the paying parent
    has not shown they will pay, or on safeguarding grounds."""
    if requested == "collect_and_pay" or safeguarded or not paying_parent_shown_will_pay:
        return "collect_and_pay"
    return "direct_pay"


@dataclass(frozen=True)
class PaymentPlan:
    frequency: str
    instalment_pence: int
    first_instalment_pence: int   # carries the remainder so the year's total is exact
    instalments_per_year: int
    first_due_date: date
    annual_pence: int


def payment_plan(weekly_payable_pence: int, frequency: str, period_start: date) -> PaymentPlan:
    """SI 2012/2785 reg 4: the liability for a 52-week reference period, collected in equal
    instalments; the first falls due within the first collection period (on its last day)."""
    if frequency not in PAYMENT_FREQUENCIES:
        raise ValueError(f"unknown payment frequency {frequency!r}")
    annual = weekly_payable_pence * 52
    weeks = PAYMENT_FREQUENCIES[frequency]
    count = 12 if weeks is None else 52 // weeks
    instalment, remainder = divmod(annual, count)
    period_end = add_months(period_start, 1) if weeks is None else period_start + timedelta(weeks=weeks)
    return PaymentPlan(frequency, instalment, instalment + remainder, count,
                       period_end - timedelta(days=1), annual)


@dataclass(frozen=True)
class CaseClock:
    """The case calendar: `seconds_per_day` real seconds make one case day (86,400 in production,
    a few seconds in demo and training). Day N starts at anchor_instant + N * seconds_per_day."""

    anchor_date: date
    anchor_instant: datetime
    seconds_per_day: float

    def today(self, now: datetime) -> date:
        elapsed = (now - self.anchor_instant).total_seconds() / self.seconds_per_day
        # A timer set for the start of a day may fire a hair early in float arithmetic.
        return self.anchor_date + timedelta(days=math.floor(elapsed + 1e-6))

    def instant_of(self, day: date) -> datetime:
        return self.anchor_instant + timedelta(seconds=(day - self.anchor_date).days * self.seconds_per_day)

    def seconds_until(self, day: date, now: datetime) -> float:
        return max(0.0, (self.instant_of(day) - now).total_seconds())
