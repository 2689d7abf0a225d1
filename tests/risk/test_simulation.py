"""The simulator matches the published Great Britain figures for Collect & Pay (per quarter:
65-68% pay something, 41-45% pay more than 90% of what is due, about 32% pay nothing), shows the
dip in a case's first months, is deterministic for a seed, and keeps its causes out of the ledger."""

from __future__ import annotations

from datetime import date

from domain.risk_simulation import first_quarter_shares, quarter_shares, simulate

ENDS_ON = date(2026, 9, 30)
CASES = simulate(2500, seed=7, ends_on=ENDS_ON)


def test_quarterly_payment_shares_match_the_published_figures() -> None:
    shares = quarter_shares([case.ledger() for case in CASES], date(2026, 4, 1), date(2026, 6, 30))
    assert shares.cases > 2000
    assert 0.64 <= shares.paid_something <= 0.69, shares
    assert 0.40 <= shares.paid_over_90 <= 0.46, shares
    assert 0.30 <= shares.paid_nothing <= 0.35, shares


def test_first_months_of_a_case_pay_less() -> None:
    overall = quarter_shares([case.ledger() for case in CASES], date(2026, 4, 1), date(2026, 6, 30))
    early = first_quarter_shares(CASES)
    assert early.paid_over_90 < overall.paid_over_90 - 0.08, (early, overall)


def test_same_seed_same_histories_and_causes_stay_hidden() -> None:
    again = simulate(50, seed=7, ends_on=ENDS_ON)
    assert [c.operations for c in again] == [c.operations for c in CASES[:50]]
    assert simulate(50, seed=8, ends_on=ENDS_ON)[0].operations != CASES[0].operations
    kinds = {line.kind for case in CASES[:200] for line in case.ledger().lines}
    assert kinds <= {"period_charge", "incoming_payment"}
    assert {cause.kind for case in CASES for cause in case.causes} == {"job_loss", "income_drop", "new_family", "dispute"}
