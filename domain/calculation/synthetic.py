"""A synthetic national caseload for benchmarks and what-if rehearsals.

Deterministic for a seed (``random.Random(seed)``), integer-only, and shaped roughly like
the real caseload (docs/design.md: most cases one receiving parent with one or two children,
about a third on Collect & Pay, a sizeable flat-rate minority). No personal data.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

_NIL_REASONS = ("prisoner", "child", "care_home", "work_based_training", "under_18_on_benefits")
_SHARED_CARE_NIGHTS = (0, 26, 51, 52, 60, 103, 104, 120, 155, 156, 170, 174, 175, 182, 365)


def _weekly_income(rng: random.Random) -> int:
    band = rng.randrange(100)
    if band < 5:
        return rng.randrange(0, 700)
    if band < 22:
        return rng.randrange(700, 10_001)
    if band < 32:
        return rng.randrange(10_001, 20_000)
    if band < 82:
        return rng.randrange(20_000, 80_001)
    if band < 98:
        return rng.randrange(80_001, 300_001)
    return rng.randrange(300_001, 800_000)


def _income_fields(rng: random.Random, weekly: int) -> dict[str, Any]:
    if rng.randrange(100) >= 30:
        return {"gross_weekly_income_pence": weekly}
    evidence: dict[str, Any] = {"hmrc_annual_pence": weekly * 365 // 7}
    if rng.randrange(2):
        # current income within ±40% of historic, in whole per cent
        evidence["current_weekly_pence"] = weekly * rng.randrange(60, 141) // 100
    return {"income": evidence}


def _paying_parent(rng: random.Random) -> dict[str, Any]:
    pp = _income_fields(rng, _weekly_income(rng))
    roll = rng.randrange(100)
    pp["relevant_other_children"] = 0 if roll < 70 else 1 if roll < 85 else 2 if roll < 95 else rng.randrange(3, 5)
    if rng.randrange(100) < 18:
        pp["flat_rate_benefit"] = True
    if rng.randrange(100) < 2:
        pp["nil_rate_reason"] = rng.choice(_NIL_REASONS)
    if rng.randrange(100) < 5:
        pp["special_expenses_weekly_pence"] = rng.randrange(1_000, 10_001)
    if rng.randrange(100) < 3:
        pp["additional_income_weekly_pence"] = rng.randrange(1_000, 50_001)
    return pp


def _children(rng: random.Random, rp_index: int) -> list[dict[str, Any]]:
    roll = rng.randrange(100)
    count = 1 if roll < 55 else 2 if roll < 85 else 3 if roll < 96 else 4
    return [
        {"id": f"c{rp_index}{i}",
         "shared_care_nights": 0 if rng.randrange(100) < 75 else rng.choice(_SHARED_CARE_NIGHTS)}
        for i in range(count)
    ]


def synthetic_request(rng: random.Random) -> dict[str, Any]:
    roll = rng.randrange(100)
    parents = 1 if roll < 90 else 2 if roll < 98 else 3
    return {
        "paying_parent": _paying_parent(rng),
        "receiving_parents": [{"id": f"rp{i}", "children": _children(rng, i)} for i in range(parents)],
        "service_type": "collect_and_pay" if rng.randrange(100) < 37 else "direct_pay",
    }


def synthetic_cases(count: int, seed: int = 0) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)
    for _ in range(count):
        yield synthetic_request(rng)
