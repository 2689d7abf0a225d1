"""Replaying applied changes in effective-date order (domain.changes.apply_in_order) when the order
they were reported in differs: a change that names a child an earlier-dated change took off the
case no longer counts, instead of failing the replay (and with it the case's workflow task)."""

from __future__ import annotations

from datetime import date

from domain import changes as rules

INPUTS = {
    "paying_parent": {"gross_weekly_income_pence": 40_000, "relevant_other_children": 0},
    "receiving_parents": [{"id": "rp-1", "children": [{"id": "c-1", "shared_care_nights": 0},
                                                      {"id": "c-2", "shared_care_nights": 0}]}],
    "service_type": "direct_pay",
}
TODAY = date(2025, 6, 1)


def change(kind: str, effective: str, **details) -> rules.Change:
    return rules.parse_change({"kind": kind, "reported_date": effective, "effective_date": effective,
                               "reported_by": "receiving_parent", "details": details}, TODAY)


def test_shared_care_for_a_child_who_left_earlier_does_not_count() -> None:
    # Reported and applied first: c-2's shared care from 1 March; then c-2 left on 1 February.
    applied = [(1, change("shared_care_nights", "2025-03-01", child_id="c-2", nights=52)),
               (2, change("child_left", "2025-02-01", child_id="c-2"))]
    final, decisions = rules.apply_in_order(INPUTS, applied, rules.CaseContext())
    assert [c["id"] for rp in final["receiving_parents"] for c in rp["children"]] == ["c-1"]
    by_number = dict(decisions)
    assert [number for number, _ in decisions] == [2, 1]  # effective-date order
    assert by_number[2].counts and not by_number[1].counts
    assert "no longer on the case" in by_number[1].reason


def test_shared_care_for_a_child_on_the_case_still_counts() -> None:
    applied = [(1, change("shared_care_nights", "2025-03-01", child_id="c-2", nights=52))]
    final, decisions = rules.apply_in_order(INPUTS, applied, rules.CaseContext())
    assert decisions[0][1].counts
    assert final["receiving_parents"][0]["children"][1] == {"id": "c-2", "shared_care_nights": 52}
