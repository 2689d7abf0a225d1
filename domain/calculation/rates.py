"""4.2 Rate: nil, flat, reduced, basic or basic plus, and the weekly rate amount.

Order of the tests follows Sch 1 paras 4-5 and reg 43-45: a nil-rate category first, then
a flat-rate benefit, then income below £7 (nil), up to £100 (flat), below £200 (reduced),
up to £800 (basic), above (basic plus). A variation never takes the liability below the flat
rate: only income below £7 before any variation gives nil (reg 74(1A), `floor_for_variations`). The band is chosen on the capped income; relevant
other children only change the base of the percentages, never the band (Sch 1 para 2(3)).
The reduced, basic and basic plus rate is rounded to the whole pound, 50p up (docs/rules.md section 2).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from domain.money import round_half_up
from domain.rulesets import RuleSet

from .request import PayingParent

Rate = Literal["nil", "flat", "reduced", "basic", "basic_plus"]
RateReason = Literal[
    "nil_rate_reason", "flat_rate_benefit", "income_below_nil_threshold", "income_up_to_flat_limit",
    "variation_floor", "reduced_band", "basic_band", "basic_plus_band",
]
CALCULATED_RATES = frozenset({"reduced", "basic", "basic_plus"})


@dataclass(frozen=True)
class RateDecision:
    rate: Rate
    reason: RateReason
    amount_pence: int  # after rounding to the whole pound where that applies
    exact_pence: Fraction  # before rounding (equal to amount_pence for nil and flat)
    qualifying_children: int
    relevant_other_children: int
    # figures shown in the explanation
    percent: Fraction | None = None  # T for reduced, basic % for basic/basic plus
    basic_plus_percent: Fraction | None = None
    roc_reduction: Fraction = Fraction(0)
    adjusted_income: Fraction | None = None  # income after the ROC reduction (basic, basic plus)


def reduced_rate_exact(income_pence: int, qc: int, roc: int, rules: RuleSet) -> Fraction:
    """Reg 43: F + A × T, A being the income above £100."""
    percent = rules.reduced_rate_by_qc_then_roc[rules.qc_row(qc)][rules.roc_column(roc)]
    return rules.flat_rate_pence + (income_pence - rules.flat_up_to_pence) * percent


def adjusted_income(income_pence: int, roc: int, rules: RuleSet) -> Fraction:
    """Sch 1 para 2(3): income treated as reduced by 11% / 14% / 16% for 1 / 2 / 3+ ROC."""
    return income_pence * (1 - rules.roc_income_reduction[rules.roc_column(roc)])


def basic_rate_exact(income_pence: int, qc: int, roc: int, rules: RuleSet) -> Fraction:
    """Sch 1 para 2(1)-(2): basic % of the first £800 of adjusted income, plus % above it."""
    adjusted = adjusted_income(income_pence, roc, rules)
    split = Fraction(rules.basic_plus_above_pence)
    row = rules.qc_row(qc)
    return (
        min(adjusted, split) * rules.basic_rate_by_qc[row]
        + max(adjusted - split, Fraction(0)) * rules.basic_plus_rate_by_qc[row]
    )


def round_rate(exact_pence: Fraction, rules: RuleSet) -> int:
    """Round a calculated rate to the whole pound (50p up)."""
    unit = rules.rate_rounding_pence
    return round_half_up(exact_pence / unit) * unit


def _fixed(rate: Rate, reason: RateReason, amount: int, qc: int, roc: int) -> RateDecision:
    return RateDecision(rate, reason, amount, Fraction(amount), qc, roc)


def choose_rate(income_used_pence: int, paying_parent: PayingParent, qc: int, rules: RuleSet) -> RateDecision:
    roc = paying_parent.relevant_other_children
    if paying_parent.nil_rate_reason is not None:
        return _fixed("nil", "nil_rate_reason", 0, qc, roc)
    if paying_parent.flat_rate_benefit:
        return _fixed("flat", "flat_rate_benefit", rules.flat_rate_pence, qc, roc)
    if income_used_pence < rules.nil_below_pence:
        return _fixed("nil", "income_below_nil_threshold", 0, qc, roc)
    if income_used_pence <= rules.flat_up_to_pence:
        return _fixed("flat", "income_up_to_flat_limit", rules.flat_rate_pence, qc, roc)
    row = rules.qc_row(qc)
    if income_used_pence < rules.reduced_below_pence:
        exact = reduced_rate_exact(income_used_pence, qc, roc, rules)
        return RateDecision(
            "reduced", "reduced_band", round_rate(exact, rules), exact, qc, roc,
            percent=rules.reduced_rate_by_qc_then_roc[row][rules.roc_column(roc)],
        )
    exact = basic_rate_exact(income_used_pence, qc, roc, rules)
    plus = income_used_pence > rules.basic_plus_above_pence
    return RateDecision(
        "basic_plus" if plus else "basic", "basic_plus_band" if plus else "basic_band",
        round_rate(exact, rules), exact, qc, roc,
        percent=rules.basic_rate_by_qc[row],
        basic_plus_percent=rules.basic_plus_rate_by_qc[row],
        roc_reduction=rules.roc_income_reduction[rules.roc_column(roc)],
        adjusted_income=adjusted_income(income_used_pence, roc, rules),
    )


def floor_for_variations(decision: RateDecision, income_before_variations_pence: int, rules: RuleSet) -> RateDecision:
    """Reg 74(1A): a variation cannot take liability below the flat rate. Income below £7 only
    gives the nil rate when it was below £7 before any variation; otherwise the flat rate applies
    (apportioned between receiving parents as the flat rate always is)."""
    if decision.reason == "income_below_nil_threshold" and income_before_variations_pence >= rules.nil_below_pence:
        return _fixed("flat", "variation_floor", rules.flat_rate_pence, decision.qualifying_children,
                      decision.relevant_other_children)
    return decision
