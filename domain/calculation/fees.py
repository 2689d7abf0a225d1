"""4.4 Collect & Pay collection fees (Child Support Fees Regulations 2014).

Per receiving parent per week the paying parent pays an extra 20% of the amount and the
receiving parent receives 4% less; each fee is rounded to the penny, halves up. Direct Pay
has no fees. The percentages come from the rule set (2% / 2% in the announced reform).
"""

from __future__ import annotations

from domain.money import round_half_up
from domain.rulesets import RuleSet

from .request import ServiceType


def collection_fees(amount_pence: int, service_type: ServiceType, rules: RuleSet) -> tuple[int, int]:
    """(paying parent's fee, receiving parent's fee) in pence for one weekly amount."""
    if service_type != "collect_and_pay":
        return 0, 0
    return (
        round_half_up(amount_pence * rules.paying_parent_fee),
        round_half_up(amount_pence * rules.receiving_parent_fee),
    )
