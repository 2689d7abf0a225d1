"""Eligibility and the breakdown label, worked by hand on a monthly £100 schedule.

Eligible: Collect & Pay, 3 months of charges, and at least 90% of what fell due over the last 3
months (ending a week's grace ago) paid. Positive: not compliant on some weekly check in the
next 8 weeks."""

from __future__ import annotations

from datetime import date

from domain.risk_features import CaseLedger, LedgerLine, breaks_down, features_as_of, is_compliant, is_eligible

DUE = [date(2026, m, 1) for m in range(1, 10)]


def _ledger(paid_months: list[int], service_type: str = "collect_and_pay", part: dict[int, int] | None = None) -> CaseLedger:
    lines = [LedgerLine(d, "period_charge", due_pence=10_000) for d in DUE]
    for month in paid_months:
        lines.append(LedgerLine(date(2026, month, 3), "incoming_payment", paid_pence=(part or {}).get(month, 10_000)))
    return CaseLedger("hand", service_type, lines)


def test_paid_every_month_is_eligible_and_does_not_break_down() -> None:
    ledger = _ledger(list(range(1, 10)))
    assert is_eligible(ledger, date(2026, 5, 11))
    assert not breaks_down(ledger, date(2026, 5, 11))


def test_too_new_or_direct_pay_is_not_eligible() -> None:
    assert not is_eligible(_ledger(list(range(1, 10))), date(2026, 3, 20))        # under 3 months of charges
    assert not is_eligible(_ledger(list(range(1, 10)), "direct_pay"), date(2026, 5, 11))


def test_a_miss_within_8_weeks_is_a_breakdown_and_one_after_is_not() -> None:
    # Paid Jan-May, nothing from June: on 11 May compliant; the June miss shows on the check of
    # 8 June + a week's grace, inside the 8 weeks.
    ledger = _ledger([1, 2, 3, 4, 5])
    assert is_eligible(ledger, date(2026, 5, 11))
    assert breaks_down(ledger, date(2026, 5, 11))
    # From 30 March the 8 weeks end on 25 May: the June miss is outside them.
    assert not breaks_down(ledger, date(2026, 3, 30))


def test_ninety_percent_is_the_line() -> None:
    # March, April, May due £300; £270 paid is exactly 90%: compliant. £269 is not.
    at_line = _ledger([1, 2, 3, 4, 5], part={5: 7_000})
    below = _ledger([1, 2, 3, 4, 5], part={5: 6_900})
    day = date(2026, 5, 11)
    assert is_compliant(at_line, day) and not is_compliant(below, day)
    assert features_as_of(below, day)["part_paid_6m"] == 1
