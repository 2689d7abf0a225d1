"""Training and serving compute a case's features with one module: from a simulated history in
memory, and from the payments service after the same history is posted through its gRPC API,
the features (and compliance) must be identical on every as-of date."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from domain.risk_features import features_as_of, is_compliant, is_eligible
from domain.risk_simulation import SimulatedCase, simulate
from services.risk.ledger_reader import read_ledger
from tests.risk.history_posting import post_history

pytestmark = pytest.mark.asyncio(loop_scope="session")

ENDS_ON = date(2026, 6, 30)


def _varied_cases() -> list[SimulatedCase]:
    """A few histories that exercise misses, part payments, late payments and a liability change."""
    cases = simulate(300, seed=11, ends_on=ENDS_ON, years=1.5)
    changed = next(c for c in cases if sum(op.kind == "schedule" for op in c.operations) > 1)
    troubled = next(c for c in cases if c.payer_type == "erratic" and c.causes and c is not changed)
    reliable = next(c for c in cases if c.payer_type == "reliable" and not c.causes)
    return [changed, troubled, reliable]


async def test_features_from_the_ledger_match_the_simulated_history(payments) -> None:
    seen: list[dict[str, float]] = []
    for case in _varied_cases():
        await post_history(payments, case)
        in_memory = case.ledger()
        first_charge = in_memory.first_charge()
        assert first_charge is not None
        day, compared = first_charge, 0
        while day <= ENDS_ON:
            served = await read_ledger(payments, case.case_id, day)
            assert served.service_type == "collect_and_pay"
            features = features_as_of(served, day)
            assert features == features_as_of(in_memory, day), (case.case_id, day)
            seen.append(features)
            assert is_compliant(served, day) == is_compliant(in_memory, day)
            assert is_eligible(served, day) == is_eligible(in_memory, day)
            day += timedelta(days=30)
            compared += 1
        assert compared >= 5
    # The histories compared are not trivial: shortfalls, lateness and a change of liability appear.
    assert any(f["missed_6m"] + f["part_paid_6m"] > 0 for f in seen)
    assert any(f["late_6m"] > 0 for f in seen)
    assert any(f["liability_change_6m"] < 0 for f in seen)
    assert any(f["arrears_months"] > 0 for f in seen)
