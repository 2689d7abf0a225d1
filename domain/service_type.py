"""Which service a case is on, and when it moves (docs/rules.md section 10).

Direct Pay is the default when both parents agree; a case moves to Collect & Pay when either parent
asks, on safeguarding grounds, or when the paying parent has not shown they will pay. Here: why a
case took its service type, when a decided move takes effect, and when missed Direct Pay payments
make a pattern. Pure functions: the case workflow calls them with its facts.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from domain.lifecycle import add_months
from domain.payments.schedule import Frequency, period_containing, period_start

# Why a case moves from Direct Pay to Collect & Pay, and the words each reason puts in the timeline
# and the parents' letters. Both parents read those: a safeguarding reason says that the service
# decided, never why (the reason stays with staff).
COLLECT_AND_PAY_REASONS = {
    "direct_pay_missed": "Direct Pay payments were reported missed",
    "receiving_parent_request": "the receiving parent asked for it",
    "safeguarding": "the Child Maintenance Service decided it is needed for this case",
}
# One missed Direct Pay payment is a conversation with the paying parent; a second one falling due
# within 3 months of another is a pattern: the paying parent has not shown they will pay.
DIRECT_PAY_MISSES_FOR_SWITCH = 2
DIRECT_PAY_PATTERN_MONTHS = 3


def service_type_reason(safeguarded: bool, requested_service_type: str) -> str:
    """Why the assessment chose the case's service type, in the words of the timeline."""
    if safeguarded:
        return "safeguarding: no consent of the other parent needed"
    if requested_service_type == "collect_and_pay":
        return "a parent asked for it"
    return "the default when both parents agree"


def collect_and_pay_start(frequency: str, initial_effective_date: date | None, liability_from: date | None,
                          today: date) -> date:
    """The first collection period starting on or after `today`: periods before it were Direct Pay,
    paid between the parents, and stay so. Periods count from the initial effective date, as
    payments' schedule does; never before the liability in force (`liability_from`)."""
    first = initial_effective_date or today
    start = first
    if today > first:
        schedule = Frequency(frequency)
        index = period_containing(schedule, first, today)
        start = period_start(schedule, first, index)
        if start < today:
            start = period_start(schedule, first, index + 1)
    return max(start, liability_from or start)


def direct_pay_pattern(missed_due_dates: Iterable[date], misses: int = DIRECT_PAY_MISSES_FOR_SWITCH,
                       months: int = DIRECT_PAY_PATTERN_MONTHS) -> bool:
    """Whether `misses` missed Direct Pay payments fell due within `months` months of each other."""
    dues = sorted(missed_due_dates)
    window = misses - 1
    return any(add_months(dues[i], months) >= dues[i + window] for i in range(len(dues) - window))
