"""4.3 Apportionment between receiving parents (Sch 1 para 6).

The rate is shared by number of qualifying children in whole pence. To keep the total
exact (NI reg 7(3)-(4) practice, docs/rules.md), each share is first rounded down and
the pennies left over go to the largest remainders; equal remainders favour the earlier
receiving parent, so the result is deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence


def apportion(total_pence: int, weights: Sequence[int]) -> list[int]:
    """Split ``total_pence`` in proportion to ``weights``; the parts always sum to the total."""
    if total_pence < 0:
        raise ValueError("cannot apportion a negative amount")
    weight_sum = sum(weights)
    if weight_sum <= 0 or any(w < 0 for w in weights):
        raise ValueError("weights must be non-negative with a positive sum")
    floors_and_remainders = [divmod(total_pence * w, weight_sum) for w in weights]
    shares = [share for share, _ in floors_and_remainders]
    pennies_left = total_pence - sum(shares)
    # Stable sort on remainder (descending) keeps earlier parents first among equals.
    order = sorted(range(len(weights)), key=lambda i: -floors_and_remainders[i][1])
    for i in order[:pennies_left]:
        shares[i] += 1
    return shares
