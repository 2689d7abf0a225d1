"""What a payment schedule letter says (template `payment_schedule`): the next payment and the
regular one after it, worked out with the arithmetic payments charges by (domain.payments.schedule,
payment due on the first day of each collection period), so the letter and the ledger never
disagree about a date or an amount.

The paying parent gets one with every new schedule; on Direct Pay the receiving parent does too,
since they are paid directly and are the one who can tell us a payment did not arrive. On
Collect & Pay the receiving parent's amounts (less the 4% fee, passed on when collected) are in
the calculation letter and the statement instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from domain.payments.schedule import Frequency, Rate, next_instalments

FREQUENCY_WORDS = {"weekly": "every week", "fortnightly": "every 2 weeks", "four_weekly": "every 4 weeks",
                   "monthly": "every month"}


def schedule_letter_facts(frequency: str, service_type: str, history: Sequence[Rate], effective_from: date,
                          today: date, to_paying_parent: bool, first_collection: date | None = None) -> dict[str, str]:
    """The letter's facts (strings; money in pence, dates ISO) for one parent. `history` is the
    liability as payments holds it with the new version in it; its first entry starts the schedule.
    `first_collection`: Collect & Pay's first collection, the initial arrears spread after it."""
    if not history:
        raise ValueError("a payment schedule needs at least one liability")
    cadence = Frequency(frequency)
    ordered = tuple(sorted(history, key=lambda rate: rate.effective_from))
    upcoming, following = next_instalments(cadence, ordered[0].effective_from, ordered, today,
                                           first_collection=first_collection)
    with_fee = to_paying_parent  # the receiving parent (Direct Pay only) is paid the maintenance alone
    return {
        "effective_date": effective_from.isoformat(),
        "next_payment_pence": str(upcoming.amount_pence + (upcoming.fee_pence if with_fee else 0)),
        "next_due_on": upcoming.period.due_date.isoformat(),
        "instalment_pence": str(following.amount_pence + (following.fee_pence if with_fee else 0)),
        "frequency_words": FREQUENCY_WORDS[frequency],
        "how_paid": _how_paid(service_type, to_paying_parent),
        "payment_note": _note(service_type, to_paying_parent) + _penny_note(cadence, ordered[-1], with_fee),
    }


def _how_paid(service_type: str, to_paying_parent: bool) -> str:
    if service_type == "collect_and_pay":
        return "paid to the Child Maintenance Service by the payment method agreed with you"
    if to_paying_parent:
        return "paid straight to the receiving parent, in the way you agree between you"
    return "paid by the paying parent straight to you"


def _note(service_type: str, to_paying_parent: bool) -> str:
    if to_paying_parent:
        return "If you cannot pay on a date, tell us before it, so we can agree a new date with you."
    return ("If a payment does not arrive in full, tell us: we can collect the payments for you "
            "instead (Collect & Pay).")


def _penny_note(cadence: Frequency, latest: Rate, with_fee: bool) -> str:
    """Monthly instalments spread 52 weeks over 12 months, so they can differ by a penny."""
    weeklies = (latest.weekly_pence, latest.weekly_fee_pence if with_fee else 0)
    if cadence is Frequency.MONTHLY and any((52 * weekly) % 12 for weekly in weeklies):
        return " Monthly amounts can differ by a penny, so that a year's payments add up to exactly 52 weeks."
    return ""
