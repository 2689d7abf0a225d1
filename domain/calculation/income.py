"""4.1 Income: which gross weekly income the calculation uses.

Historic income is the HMRC figure for the latest tax year ÷ 365 × 7 (reg 35), rounded
to the penny. Current income replaces it when the two differ by at least 25% of historic
income (reg 34(2)(a)), or when historic income is nil and current income is not (reg
34(2A)), or when HMRC holds no figure (reg 34(2)(b)). Agreed variations then subtract
special expenses (reg 72) and add additional income (reg 73); the result is capped at
£3,000 a week (Sch 1 para 10(3)). Subtracting before capping is exactly reg 72(2).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from domain.money import round_half_up
from domain.rulesets import RuleSet

from .request import PayingParent

IncomeBasis = Literal["stated", "historic", "current"]


@dataclass(frozen=True)
class IncomeDecision:
    gross_weekly_income_pence: int  # 4.1 figure, before variations and cap
    basis: IncomeBasis
    historic_weekly_pence: int | None
    current_weekly_pence: int | None
    hmrc_annual_pence: int | None
    after_variations_pence: int  # never below zero
    used_pence: int  # after variations and the cap: the figure the rate is chosen on

    @property
    def capped(self) -> bool:
        return self.used_pence < self.after_variations_pence


def historic_weekly_income(hmrc_annual_pence: int, rules: RuleSet) -> int:
    """Reg 35: annual HMRC figure ÷ 365 × 7, to the penny (halves up)."""
    return round_half_up(Fraction(hmrc_annual_pence * rules.days_in_week, rules.days_in_year))


def current_replaces_historic(historic_pence: int, current_pence: int, rules: RuleSet) -> bool:
    """Reg 34(2)(a) and (2A): a difference of at least 25% of historic income, either way."""
    if historic_pence == 0:
        return current_pence > 0
    return abs(current_pence - historic_pence) >= rules.current_income_tolerance * historic_pence


def _gross_weekly_income(paying_parent: PayingParent, rules: RuleSet) -> tuple[int, IncomeBasis, int | None]:
    """The 4.1 figure, how it was chosen, and the historic weekly figure if there is one."""
    if paying_parent.income is None:
        assert paying_parent.gross_weekly_income_pence is not None
        return paying_parent.gross_weekly_income_pence, "stated", None
    evidence = paying_parent.income
    current = evidence.current_weekly_pence
    if evidence.hmrc_annual_pence is None:
        assert current is not None
        return current, "current", None  # reg 34(2)(b): HMRC holds no figure
    historic = historic_weekly_income(evidence.hmrc_annual_pence, rules)
    if current is not None and current_replaces_historic(historic, current, rules):
        return current, "current", historic
    return historic, "historic", historic


def determine_income(paying_parent: PayingParent, rules: RuleSet) -> IncomeDecision:
    gross, basis, historic = _gross_weekly_income(paying_parent, rules)
    after_variations = max(
        0,
        gross - paying_parent.special_expenses_weekly_pence + paying_parent.additional_income_weekly_pence,
    )
    evidence = paying_parent.income
    return IncomeDecision(
        gross_weekly_income_pence=gross,
        basis=basis,
        historic_weekly_pence=historic,
        current_weekly_pence=evidence.current_weekly_pence if evidence else None,
        hmrc_annual_pence=evidence.hmrc_annual_pence if evidence else None,
        after_variations_pence=after_variations,
        used_pence=min(after_variations, rules.weekly_cap_pence),
    )
