"""Reg 74(1A): a variation cannot take the liability below the flat rate (£7 a week, apportioned
between receiving parents); only income below £7 before any variation gives the nil rate. The
full calculation and the fast batch path (`cms calculate --no-explanation`) agree."""

from __future__ import annotations

from typing import Any

import pytest

from domain.calculation import calculate, parse_request
from domain.calculation.fast import calculate_fast, compile_rules, fast_result_to_json
from domain.rulesets import current_rules

TWO_HOUSEHOLDS = [{"id": "rp-1", "children": [{"id": "c-1"}]},
                  {"id": "rp-2", "children": [{"id": "c-2"}, {"id": "c-3", "shared_care_nights": 200}]}]


def _request(gross: int, expenses: int, additional: int = 0, parents: list | None = None,
             service_type: str = "direct_pay") -> dict[str, Any]:
    return {"paying_parent": {"gross_weekly_income_pence": gross, "special_expenses_weekly_pence": expenses,
                              "additional_income_weekly_pence": additional},
            "receiving_parents": parents or [{"id": "rp-1", "children": [{"id": "c-1"}]}],
            "service_type": service_type}


def _both_paths(request: dict[str, Any]) -> dict[str, Any]:
    full = calculate(parse_request(request)).to_json(include_explanation=False)
    assert fast_result_to_json(calculate_fast(request, compile_rules(current_rules()))) == full
    return full


@pytest.mark.parametrize("gross, expenses", [(1_000, 500), (700, 1), (15_000, 14_500), (25_000, 30_000)])
def test_a_variation_below_seven_pounds_leaves_the_flat_rate(gross: int, expenses: int) -> None:
    result = _both_paths(_request(gross, expenses))
    assert (result["rate"], result["rate_amount_pence"], result["weekly_liability_pence"]) == ("flat", 700, 700)


def test_the_floor_is_apportioned_and_shared_care_is_ignored_as_for_low_income() -> None:
    # £7 between 1 and 2 children, largest remainder: £2.33 and £4.67; the 200 nights do not reduce it.
    result = _both_paths(_request(1_000, 500, parents=TWO_HOUSEHOLDS))
    assert [rp["weekly_amount_pence"] for rp in result["receiving_parents"]] == [233, 467]


def test_collection_fees_are_on_the_floor() -> None:
    result = _both_paths(_request(1_000, 500, service_type="collect_and_pay"))
    row = result["receiving_parents"][0]
    assert (row["weekly_amount_pence"], row["paying_parent_fee_pence"], row["receiving_parent_fee_pence"]) == (700, 140, 28)


@pytest.mark.parametrize("gross, expenses, additional", [(650, 100, 0), (699, 0, 0), (500, 200, 300)])
def test_income_below_seven_pounds_before_any_variation_is_still_nil(gross: int, expenses: int, additional: int) -> None:
    result = _both_paths(_request(gross, expenses, additional))
    assert (result["rate"], result["weekly_liability_pence"]) == ("nil", 0)


def test_the_explanation_says_why_the_flat_rate_applies() -> None:
    steps = {step.step: step.text for step in calculate(parse_request(_request(1_000, 500))).explanation}
    assert "never takes the liability below the flat rate" in steps["rate"]
    assert "£5.00 a week after the variation" in steps["rate"]
