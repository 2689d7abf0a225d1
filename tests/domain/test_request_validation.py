"""Bad input gives a ValidationError naming the field, on both calculation paths."""

from __future__ import annotations

import copy

import pytest

from domain.calculation import ValidationError, calculate, parse_request
from domain.calculation.fast import calculate_fast, compile_rules
from domain.rulesets import current_rules

GOOD = {
    "paying_parent": {"gross_weekly_income_pence": 52345, "flat_rate_benefit": False, "nil_rate_reason": None,
                      "relevant_other_children": 1, "special_expenses_weekly_pence": 0,
                      "additional_income_weekly_pence": 0},
    "receiving_parents": [{"id": "rp-1", "children": [{"id": "c-1", "shared_care_nights": 52}]}],
    "service_type": "collect_and_pay",
}


def with_change(change):
    obj = copy.deepcopy(GOOD)
    change(obj)
    return obj


def pp(**fields):
    def change(obj):
        obj["paying_parent"].update(fields)
        for key, value in fields.items():
            if value is ...:
                del obj["paying_parent"][key]
    return change


BAD_INPUTS = [
    ("negative money", pp(gross_weekly_income_pence=-1), "paying_parent.gross_weekly_income_pence"),
    ("fractional pence", pp(gross_weekly_income_pence=100.5), "paying_parent.gross_weekly_income_pence"),
    ("float pence", pp(special_expenses_weekly_pence=10.0), "paying_parent.special_expenses_weekly_pence"),
    ("money as text", pp(additional_income_weekly_pence="100"), "paying_parent.additional_income_weekly_pence"),
    ("boolean money", pp(gross_weekly_income_pence=True), "paying_parent.gross_weekly_income_pence"),
    ("unknown paying parent field", pp(special_expense_weekly_pence=5), "paying_parent.special_expense_weekly_pence"),
    ("unknown top-level field", lambda o: o.update(effective_date="2025-01-01"), "effective_date"),
    ("both income forms", pp(income={"hmrc_annual_pence": 100}), "paying_parent"),
    ("neither income form", pp(gross_weekly_income_pence=...), "paying_parent"),
    ("unknown income field", pp(gross_weekly_income_pence=..., income={"hmrc_annual_pence": 1, "x": 2}),
     "paying_parent.income.x"),
    ("negative HMRC figure", pp(gross_weekly_income_pence=..., income={"hmrc_annual_pence": -1}),
     "paying_parent.income.hmrc_annual_pence"),
    ("missing HMRC figure", pp(gross_weekly_income_pence=..., income={"current_weekly_pence": 1}),
     "paying_parent.income.hmrc_annual_pence"),
    ("bad nil reason", pp(nil_rate_reason="student"), "paying_parent.nil_rate_reason"),
    ("benefit not boolean", pp(flat_rate_benefit="yes"), "paying_parent.flat_rate_benefit"),
    ("negative ROC", pp(relevant_other_children=-1), "paying_parent.relevant_other_children"),
    ("nights above 366", lambda o: o["receiving_parents"][0]["children"][0].update(shared_care_nights=367),
     "receiving_parents[0].children[0].shared_care_nights"),
    ("negative nights", lambda o: o["receiving_parents"][0]["children"][0].update(shared_care_nights=-1),
     "receiving_parents[0].children[0].shared_care_nights"),
    ("receiving parent without children", lambda o: o["receiving_parents"][0].update(children=[]),
     "receiving_parents[0].children"),
    ("no receiving parents", lambda o: o.update(receiving_parents=[]), "receiving_parents"),
    ("duplicate receiving parent", lambda o: o["receiving_parents"].append(copy.deepcopy(o["receiving_parents"][0])),
     "receiving_parents[1].id"),
    ("unknown child field", lambda o: o["receiving_parents"][0]["children"][0].update(name="Sam"),
     "receiving_parents[0].children[0].name"),
    ("blank id", lambda o: o["receiving_parents"][0].update(id="  "), "receiving_parents[0].id"),
    ("bad service type", lambda o: o.update(service_type="collect"), "service_type"),
    ("missing paying parent", lambda o: o.pop("paying_parent"), "paying_parent"),
]


@pytest.mark.parametrize("change,field", [(c, f) for _, c, f in BAD_INPUTS], ids=[n for n, _, _ in BAD_INPUTS])
def test_bad_input_names_the_field(change, field):
    obj = with_change(change)
    with pytest.raises(ValidationError) as caught:
        parse_request(obj)
    assert caught.value.field == field
    assert caught.value.message
    with pytest.raises(ValidationError) as fast_caught:
        calculate_fast(obj, compile_rules(current_rules()))
    assert fast_caught.value.to_json() == caught.value.to_json()


def test_not_an_object():
    with pytest.raises(ValidationError):
        parse_request([1, 2])


def test_optional_fields_default():
    obj = {"paying_parent": {"gross_weekly_income_pence": 30000},
           "receiving_parents": [{"id": "rp-1", "children": [{"id": "c-1"}]}]}
    request = parse_request(obj)
    assert request.service_type == "direct_pay"
    assert request.paying_parent.relevant_other_children == 0
    assert request.receiving_parents[0].children[0].shared_care_nights == 0
    assert calculate(request).weekly_liability_pence == 3600


def test_roc_above_three_counts_as_three():
    def liability(roc):
        obj = {"paying_parent": {"gross_weekly_income_pence": 50000, "relevant_other_children": roc},
               "receiving_parents": [{"id": "rp-1", "children": [{"id": "c-1"}]}]}
        return calculate(parse_request(obj)).rate_amount_pence
    assert liability(7) == liability(3) != liability(2)


def test_no_hmrc_figure_uses_current_income():
    obj = {"paying_parent": {"income": {"hmrc_annual_pence": None, "current_weekly_pence": 40000}},
           "receiving_parents": [{"id": "rp-1", "children": [{"id": "c-1"}]}]}
    assert calculate(parse_request(obj)).gross_weekly_income_pence == 40000
