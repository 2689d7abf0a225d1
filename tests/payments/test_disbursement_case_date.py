"""The case date a disbursement starts on (services.payments.disbursements.case_today): the UK
date on the real calendar, case days since the outbox row on a fast demo or test calendar."""

from datetime import UTC, date, datetime, timedelta

from services.payments.disbursements import PendingDisbursement, case_today

FRIDAY = date(2026, 1, 9)


def _row(received_on: date, created_at: datetime) -> PendingDisbursement:
    return PendingDisbursement(1, "IN-1", "c-1", received_on, created_at)


def test_the_case_date_on_the_real_calendar_is_the_uk_date_never_before_the_money_arrived() -> None:
    created = datetime(2026, 6, 1, 9, tzinfo=UTC)
    late_evening_utc = datetime(2026, 6, 1, 23, 30, tzinfo=UTC)   # already 2 June in London (BST)
    assert case_today(_row(date(2026, 5, 29), created), late_evening_utc, 86400) == date(2026, 6, 2)
    winter = datetime(2026, 1, 12, 23, 30, tzinfo=UTC)             # still 12 January in London
    assert case_today(_row(date(2026, 1, 9), created), winter, 86400) == date(2026, 1, 12)
    # Reported ahead of its value date: the clock cannot put the case date before the money.
    assert case_today(_row(date(2026, 6, 3), created), late_evening_utc, 86400) == date(2026, 6, 3)


def test_the_case_date_on_a_fast_calendar_counts_case_days_since_the_row_was_written() -> None:
    created = datetime(2026, 6, 1, 9, tzinfo=UTC)
    assert case_today(_row(FRIDAY, created), created + timedelta(seconds=14.9), 5) == FRIDAY + timedelta(days=2)
    assert case_today(_row(FRIDAY, created), created - timedelta(seconds=3), 5) == FRIDAY
