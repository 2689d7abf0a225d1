"""Worked examples of the statutory calculation, using the "A" figures.

The reduced, basic and basic plus rate is rounded to the whole pound (docs/rules.md section 2),
which is convention "A" of these examples; the "B" figures (penny rounding only) do not follow
that rule and are not tested.
"""

from __future__ import annotations

from domain.calculation import calculate, parse_request
from domain.rulesets import rule_set


def request(income=None, children=((0,),), roc=0, benefit=False, service="direct_pay", nil_reason=None):
    """children: one tuple of nights per receiving parent, one entry per child."""
    pp = {"relevant_other_children": roc, "flat_rate_benefit": benefit, "nil_rate_reason": nil_reason,
          "gross_weekly_income_pence": income}
    parents = [
        {"id": f"rp-{i + 1}", "children": [{"id": f"c-{i + 1}-{j + 1}", "shared_care_nights": n}
                                           for j, n in enumerate(nights)]}
        for i, nights in enumerate(children)
    ]
    return parse_request({"paying_parent": pp, "receiving_parents": parents, "service_type": service})


def amounts(result):
    return [rp.weekly_amount_pence for rp in result.receiving_parents]


def test_example_1_nil_rate_below_7_pounds():
    result = calculate(request(650))
    assert (result.rate, result.weekly_liability_pence) == ("nil", 0)


def test_example_2_flat_rate_at_100_pounds_ignores_shared_care():
    result = calculate(request(10000, children=((60, 60),)))
    assert (result.rate, result.rate_amount_pence, result.weekly_liability_pence) == ("flat", 700, 700)


def test_example_2_contrast_100_pounds_01_reduced_then_floor():
    result = calculate(request(10001, children=((60, 60),)))
    assert (result.rate, result.rate_amount_pence, result.weekly_liability_pence) == ("reduced", 700, 700)
    assert any(step.step == "minimum" for step in result.explanation)  # £6.00 lifted to £7.00


def test_example_3_reduced_rate_rounded_to_the_pound():
    result = calculate(request(15000))
    assert (result.rate, result.rate_amount_pence, result.weekly_liability_pence) == ("reduced", 1600, 1600)


def test_example_4_reduced_rate_roc_and_52_nights():
    result = calculate(request(18000, children=((52, 52),), roc=1))
    assert (result.rate_amount_pence, result.weekly_liability_pence) == (2400, 2057)


def test_example_5_basic_at_exactly_200_and_reduced_just_below():
    at_200 = calculate(request(20000))
    below = calculate(request(19999))
    assert (at_200.rate, at_200.rate_amount_pence) == ("basic", 2400)
    assert (below.rate, below.rate_amount_pence) == ("reduced", 2400)


def test_example_6_basic_two_roc_104_nights_collect_and_pay_fees():
    result = calculate(request(50000, children=((104, 104),), roc=2, service="collect_and_pay"))
    assert (result.rate, result.rate_amount_pence, result.weekly_liability_pence) == ("basic", 6900, 4929)
    rp = result.receiving_parents[0]
    assert (rp.paying_parent_fee_pence, rp.receiving_parent_fee_pence) == (986, 197)
    assert result.paying_parent_pays_pence == 5915 and result.receiving_parents_receive_pence == 4732


def test_example_6_under_the_announced_2_percent_fees():
    result = calculate(request(50000, children=((104, 104),), roc=2, service="collect_and_pay"),
                       rules=rule_set("gb-2012-fees-2pct"))
    assert result.paying_parent_pays_pence == 5028 and result.receiving_parents_receive_pence == 4830


def test_example_7_exactly_800_is_basic_and_156_nights():
    result = calculate(request(80000, children=((156,),)))
    assert (result.rate, result.rate_amount_pence, result.weekly_liability_pence) == ("basic", 9600, 5486)
    just_above = calculate(request(80001))
    assert (just_above.rate, just_above.rate_amount_pence) == ("basic_plus", 9600)


def test_example_8_basic_plus_three_children_roc_51_nights():
    result = calculate(request(125000, children=((51, 51, 51),), roc=1))
    assert (result.rate, result.rate_amount_pence, result.weekly_liability_pence) == ("basic_plus", 19900, 19900)


def test_example_9_income_cap():
    for income in (300000, 400000):
        result = calculate(request(income, children=((0, 0),)))
        assert (result.rate, result.rate_amount_pence) == ("basic_plus", 39200)


def test_example_10a_175_nights_half_and_7_pounds():
    result = calculate(request(60000, children=((175, 0),)))
    assert (result.rate_amount_pence, result.weekly_liability_pence) == (9600, 6500)


def test_example_10b_floor_of_7_pounds():
    result = calculate(request(15000, children=((180,),)))
    assert (result.rate_amount_pence, result.weekly_liability_pence) == (1600, 700)


def test_example_11_two_households_apportionment_then_shared_care():
    result = calculate(request(90000, children=((0, 0), (60,)), roc=1))
    assert result.rate_amount_pence == 15200
    assert amounts(result) == [10133, 4343]
    assert result.weekly_liability_pence == 14476


def test_example_12_flat_rate_benefit_two_households():
    result = calculate(request(0, children=((70, 0), (0,)), benefit=True))
    assert (result.rate, result.rate_amount_pence) == ("flat", 700)
    assert amounts(result) == [0, 233]
    assert result.weekly_liability_pence == 233


def test_example_12_contrast_flat_rate_for_low_income_ignores_shared_care():
    result = calculate(request(5000, children=((70, 0), (0,))))
    assert amounts(result) == [467, 233]


def test_income_example_of_section_1_2():
    """£31,000 a year -> £594.52; current £440 displaces it, £450 does not."""
    def income(current):
        obj = {"paying_parent": {"income": {"hmrc_annual_pence": 3100000, "current_weekly_pence": current}},
               "receiving_parents": [{"id": "rp-1", "children": [{"id": "c-1"}]}]}
        return calculate(parse_request(obj)).gross_weekly_income_pence
    assert income(44000) == 44000
    assert income(45000) == 59452
