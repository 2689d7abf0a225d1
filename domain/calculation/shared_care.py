"""4.3 Shared care (Sch 1 paras 7-8), per receiving parent.

For the reduced, basic and basic plus rates each child's nights a year with the paying
parent fall in a band (0-51 nothing; 52-103 1/7; 104-155 2/7; 156-174 3/7; 175+ 1/2).
A receiving parent's share is reduced by the mean fraction of that parent's children, then
by £7 for each of those children at 175+ nights, and rounded to the penny (halves up),
never below zero. When the flat rate is due to a benefit, a receiving parent any of whose
children has 52+ nights gets nothing (para 8); when it is due to low income, shared care
is ignored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from domain.money import round_half_up
from domain.rulesets import RuleSet

from .request import Child


@dataclass(frozen=True)
class SharedCareOutcome:
    before_pence: int
    after_pence: int
    mean_fraction: Fraction
    extra_reduction_pence: int  # £7 × children at 175+ nights
    exact_pence: Fraction  # before penny rounding and the zero floor

    @property
    def applied(self) -> bool:
        return self.mean_fraction != 0 or self.extra_reduction_pence != 0


def child_fraction(nights: int, rules: RuleSet) -> Fraction:
    band = rules.shared_care_band_for(nights)
    return band.fraction if band else Fraction(0)


def child_extra_reduction(nights: int, rules: RuleSet) -> int:
    band = rules.shared_care_band_for(nights)
    return band.extra_reduction_pence if band else 0


def apply_shared_care(amount_pence: int, children: Sequence[Child], rules: RuleSet) -> SharedCareOutcome:
    """Reduce one receiving parent's share for the shared care of that parent's children."""
    mean = sum((child_fraction(c.shared_care_nights, rules) for c in children), Fraction(0)) / len(children)
    extra = sum(child_extra_reduction(c.shared_care_nights, rules) for c in children)
    exact = amount_pence * (1 - mean) - extra
    return SharedCareOutcome(
        before_pence=amount_pence,
        after_pence=max(0, round_half_up(exact)),
        mean_fraction=mean,
        extra_reduction_pence=extra,
        exact_pence=exact,
    )


def loses_flat_rate_for_shared_care(children: Sequence[Child], rules: RuleSet) -> bool:
    """Para 8: flat rate due to a benefit and any child of this household has 52+ nights."""
    return any(c.shared_care_nights >= rules.flat_rate_benefit_nil_from_nights for c in children)
