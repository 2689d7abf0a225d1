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
# s.4(2A) CSA 1991: a case put on Collect & Pay because the paying parent was unlikely to pay, or
# on domestic-abuse grounds, does not go back to Direct Pay just because the paying parent asks: a
# caseworker decides. Keys of COLLECT_AND_PAY_REASONS, with the review reason each goes to.
RETURN_TO_DIRECT_PAY_REVIEWED = {
    "direct_pay_missed": "rules_cannot_decide",
    "safeguarding": "safeguarding",
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


def collect_and_pay_grounds(service_type: str, switch_reason: str | None, safeguarded: bool) -> str:
    """Why a case is on Collect & Pay, as far as leaving it is concerned: the reason of the move
    from Direct Pay (a key of COLLECT_AND_PAY_REASONS), else "safeguarding" for a safeguarded
    case, else "" (a parent asked for it, or the case is on Direct Pay)."""
    if service_type != "collect_and_pay":
        return ""
    if switch_reason:
        return switch_reason
    return "safeguarding" if safeguarded else ""


def return_to_direct_pay_review(grounds: str, requested_by: str, wanted: str) -> str | None:
    """The review reason when a paying parent asks to return to Direct Pay from a case on Collect
    & Pay for `grounds` a caseworker must weigh (s.4(2A)); None when the rules decide as usual."""
    if requested_by != "paying_parent" or wanted != "direct_pay":
        return None
    return RETURN_TO_DIRECT_PAY_REVIEWED.get(grounds)


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
