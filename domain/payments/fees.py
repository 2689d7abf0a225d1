"""Collect & Pay fee arithmetic (docs/rules.md section 5), from the rule set in force.

- Paying parent: 20% on top of each weekly amount (from the calculation; see
  domain.calculation.fees), collected as part of each instalment.
- Receiving parent: 4% of maintenance actually collected, taken when it is passed on; rounded to
  the penny, halves up, per receipt.
- Enforcement charges: a fixed amount per order kind.
"""

from __future__ import annotations

from datetime import date

from domain.money import round_half_up
from domain.rulesets import RuleSet, rules_for


def receiving_parent_fee(collected_maintenance_pence: int, rules: RuleSet) -> int:
    if collected_maintenance_pence <= 0:
        return 0
    return round_half_up(collected_maintenance_pence * rules.receiving_parent_fee)


def paying_parent_weekly_fee(weekly_pence: int, rules: RuleSet) -> int:
    return round_half_up(weekly_pence * rules.paying_parent_fee)


def enforcement_charge(kind: str, rules: RuleSet) -> int:
    try:
        return rules.enforcement_charges_pence[kind]
    except KeyError:
        raise ValueError(f"unknown enforcement charge {kind!r}; one of "
                         f"{', '.join(sorted(rules.enforcement_charges_pence))}") from None


def rules_on(day: date) -> RuleSet:
    return rules_for(day)
