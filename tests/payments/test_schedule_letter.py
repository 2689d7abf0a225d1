"""The payment schedule letter's facts (domain.payments.letters) against the schedule payments
charges by: the next payment is the first instalment due on or after the letter's day, the
regular one the instalment after it, fee included for the paying parent only."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from domain.payments.letters import schedule_letter_facts
from domain.payments.schedule import Frequency, Rate, schedule

START = date(2025, 1, 12)


def test_a_direct_pay_schedule_for_both_parents() -> None:
    history = [Rate(START, 8000)]
    paying = schedule_letter_facts("monthly", "direct_pay", history, START, START, to_paying_parent=True)
    receiving = schedule_letter_facts("monthly", "direct_pay", history, START, START, to_paying_parent=False)
    # Due on the first day of each month from the start; 52 weeks over 12 months: £346.66, £346.67.
    assert (paying["next_due_on"], paying["next_payment_pence"], paying["instalment_pence"]) == (
        "2025-01-12", "34666", "34667")
    assert paying["frequency_words"] == "every month" and "penny" in paying["payment_note"]
    assert "straight to the receiving parent" in paying["how_paid"]
    assert "straight to you" in receiving["how_paid"] and "tell us" in receiving["payment_note"]


def test_collect_and_pay_adds_the_fee_for_the_paying_parent() -> None:
    history = [Rate(START, 8400, 1680)]
    facts = schedule_letter_facts("weekly", "collect_and_pay", history, START, START + timedelta(days=1), True)
    assert (facts["next_due_on"], facts["next_payment_pence"], facts["instalment_pence"]) == (
        "2025-01-19", "10080", "10080")
    assert "Child Maintenance Service" in facts["how_paid"] and "penny" not in facts["payment_note"]


def test_a_change_from_inside_a_period_applies_from_the_next_payment_due() -> None:
    # Fortnights from 12 January: 12-25 January (due on the 12th, half at each rate, already due
    # when the letter is written on the 20th), then 26 January - 8 February, all at £120 a week.
    history = [Rate(START, 8000), Rate(date(2025, 1, 19), 12000)]
    facts = schedule_letter_facts("fortnightly", "direct_pay", history, date(2025, 1, 19), date(2025, 1, 20), True)
    assert (facts["next_due_on"], facts["next_payment_pence"], facts["instalment_pence"]) == (
        "2025-01-26", "24000", "24000")


frequencies = st.sampled_from([f.value for f in Frequency])
weekly = st.integers(min_value=0, max_value=100_000)


@given(frequency=frequencies, changes=st.lists(st.tuples(st.integers(1, 700), weekly, weekly), max_size=4),
       first=st.tuples(weekly, weekly), days_on=st.integers(0, 800), paying=st.booleans())
def test_the_letter_names_the_first_instalment_due_on_or_after_its_day(frequency, changes, first, days_on, paying):
    history = [Rate(START, *first)] + [Rate(START + timedelta(days=d), a, f) for d, a, f in changes]
    history = list({rate.effective_from: rate for rate in history}.values())  # one rate per date
    today = START + timedelta(days=days_on)
    facts = schedule_letter_facts(frequency, "collect_and_pay", history, START, today, to_paying_parent=paying)

    charged = schedule(Frequency(frequency), START, tuple(history), 120)   # brute force: every instalment in order
    upcoming = [i for i in charged if i.period.due_date >= today]
    due = [i.amount_pence + (i.fee_pence if paying else 0) for i in upcoming[:2]]
    assert facts["next_due_on"] == upcoming[0].period.due_date.isoformat()
    assert [int(facts["next_payment_pence"]), int(facts["instalment_pence"])] == due
