"""Property tests (hypothesis) for the calculation engine and its fast batch path."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.calculation import calculate, default_decision, parse_request
from domain.calculation.apportionment import apportion
from domain.calculation.fast import calculate_fast, compile_rules, fast_result_to_json
from domain.calculation.request import NIL_RATE_REASONS, ValidationError
from domain.money import round_half_up
from domain.rulesets import current_rules, packaged_rule_sets

RULES = current_rules()
COMPILED = {r.id: compile_rules(r) for r in packaged_rule_sets()}
BAND_EDGES = [0, 699, 700, 701, 9999, 10000, 10001, 19999, 20000, 20001, 79999, 80000, 80001,
              299999, 300000, 300001]

nights = st.one_of(st.sampled_from([0, 51, 52, 103, 104, 155, 156, 174, 175, 366]), st.integers(0, 366))
money = st.one_of(st.sampled_from(BAND_EDGES), st.integers(0, 400_000))


@st.composite
def requests(draw, income=money, benefit=st.sampled_from([False, False, True]), nil_reason=None):
    pp = {"relevant_other_children": draw(st.integers(0, 5)),
          "flat_rate_benefit": draw(benefit),
          "special_expenses_weekly_pence": draw(st.one_of(st.just(0), st.integers(0, 20_000))),
          "additional_income_weekly_pence": draw(st.one_of(st.just(0), st.integers(0, 20_000)))}
    if draw(st.booleans()):
        pp["gross_weekly_income_pence"] = draw(income)
    else:
        evidence = {"hmrc_annual_pence": draw(st.integers(0, 20_000_000))}
        if draw(st.booleans()):
            evidence["current_weekly_pence"] = draw(money)
        pp["income"] = evidence
    reason = draw(nil_reason if nil_reason is not None else st.one_of(
        st.just(None), st.just(None), st.just(None), st.sampled_from(sorted(NIL_RATE_REASONS))))
    pp["nil_rate_reason"] = reason
    parents = [
        {"id": f"rp-{i}", "children": [{"id": f"c-{i}-{j}", "shared_care_nights": draw(nights)}
                                       for j in range(draw(st.integers(1, 4)))]}
        for i in range(draw(st.integers(1, 3)))
    ]
    return {"paying_parent": pp, "receiving_parents": parents,
            "service_type": draw(st.sampled_from(["direct_pay", "collect_and_pay"]))}


def plain(income: int, children: list[int], roc: int = 0, service: str = "direct_pay") -> dict:
    return {"paying_parent": {"gross_weekly_income_pence": income, "relevant_other_children": roc},
            "receiving_parents": [{"id": "rp-1", "children": [{"id": f"c-{i}", "shared_care_nights": n}
                                                              for i, n in enumerate(children)]}],
            "service_type": service}


@settings(max_examples=600)
@given(requests(), st.sampled_from(sorted(COMPILED)))
def test_fast_path_equals_reference_engine(obj, rules_id):
    compiled = COMPILED[rules_id]
    reference = calculate(parse_request(obj), compiled.rules).to_json(include_explanation=False)
    assert fast_result_to_json(calculate_fast(obj, compiled)) == reference


@settings(max_examples=300)
@given(requests())
def test_total_is_the_sum_of_receiving_parents(obj):
    result = calculate(parse_request(obj))
    assert result.weekly_liability_pence == sum(rp.weekly_amount_pence for rp in result.receiving_parents)
    fast = calculate_fast(obj, COMPILED[RULES.id])
    assert fast[3] == sum(row[1] for row in fast[4])


@given(st.integers(0, 10**9), st.lists(st.integers(0, 50), min_size=1, max_size=8).filter(lambda w: sum(w) > 0))
def test_apportionment_never_loses_or_invents_a_penny(total, weights):
    shares = apportion(total, weights)
    assert sum(shares) == total
    for share, weight in zip(shares, weights):
        exact = Fraction(total * weight, sum(weights))
        assert exact - 1 < share < exact + 1  # each share is the exact share rounded down or up


@given(st.integers(1, 10**6), st.integers(1, 10))
def test_equal_weights_give_shares_within_a_penny_earlier_first(total, parents):
    shares = apportion(total, [1] * parents)
    assert max(shares) - min(shares) <= 1 and shares == sorted(shares, reverse=True)


@settings(max_examples=300)
@given(requests())
def test_fees_are_exactly_20_and_4_percent_rounded_half_up(obj):
    result = calculate(parse_request(obj))
    for rp in result.receiving_parents:
        if obj["service_type"] == "collect_and_pay":
            assert rp.paying_parent_fee_pence == (rp.weekly_amount_pence * 20 + 50) // 100
            assert rp.receiving_parent_fee_pence == (rp.weekly_amount_pence * 4 + 50) // 100
        else:
            assert rp.paying_parent_fee_pence == rp.receiving_parent_fee_pence == 0


@settings(max_examples=300)
@given(requests(benefit=st.just(False), nil_reason=st.just(None)))
def test_seven_pound_floor_for_calculated_rates(obj):
    result = calculate(parse_request(obj))
    if result.rate in {"reduced", "basic", "basic_plus"}:
        assert result.weekly_liability_pence >= 700
        assert result.rate_amount_pence % 100 == 0  # rounded to the whole pound
    elif result.rate == "flat":  # low income: shared care ignored
        assert result.weekly_liability_pence == 700
    else:
        assert result.weekly_liability_pence == 0


@settings(max_examples=200)
@given(requests(benefit=st.just(True), nil_reason=st.just(None)))
def test_flat_rate_benefit_pays_at_most_7_pounds(obj):
    result = calculate(parse_request(obj))
    assert result.rate == "flat" and result.rate_amount_pence == 700
    assert result.weekly_liability_pence <= 700


@given(st.integers(1, 6), st.integers(0, 5))
def test_band_boundaries(qc, roc):
    def rate(income):
        return calculate(parse_request(plain(income, [0] * qc, roc)))
    assert rate(699).rate == "nil"
    assert rate(700).rate == "flat"
    assert rate(10000).rate == "flat" and rate(10000).rate_amount_pence == 700
    assert rate(10001).rate == "reduced"
    assert rate(19999).rate == "reduced"
    assert rate(20000).rate == "basic"
    assert rate(80000).rate == "basic"
    assert rate(80001).rate == "basic_plus"
    assert rate(300000).rate_amount_pence == rate(300001).rate_amount_pence == rate(10**7).rate_amount_pence


@given(st.integers(1, 6), st.integers(0, 5), st.sampled_from([(10001, 19999), (20000, 80000), (80001, 300000)]),
       st.data())
def test_monotonic_in_income_within_a_band(qc, roc, band, data):
    low = data.draw(st.integers(*band))
    high = data.draw(st.integers(low, band[1]))
    def amount(income):
        return calculate(parse_request(plain(income, [0] * qc, roc))).rate_amount_pence
    assert amount(low) <= amount(high)


@given(st.integers(0, 10**8))
def test_historic_income_is_annual_times_7_over_365_half_up(annual):
    obj = {"paying_parent": {"income": {"hmrc_annual_pence": annual}},
           "receiving_parents": [{"id": "rp-1", "children": [{"id": "c-1"}]}]}
    assert calculate(parse_request(obj)).gross_weekly_income_pence == round_half_up(Fraction(annual * 7, 365))


@given(st.integers(1, 8), st.sampled_from(["direct_pay", "collect_and_pay"]))
def test_default_decision(qc, service):
    result = default_decision(qc, service_type=service)
    assert result.weekly_liability_pence == {1: 3900, 2: 5100}.get(qc, 6400)


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-5, 400), st.floats(allow_nan=False), st.text(max_size=5)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(
        st.sampled_from(["paying_parent", "receiving_parents", "service_type", "id", "children",
                         "shared_care_nights", "gross_weekly_income_pence", "income", "hmrc_annual_pence", "x"]),
        inner, max_size=4)),
    max_leaves=12,
)


@settings(max_examples=400)
@given(json_values)
def test_any_json_gives_a_result_or_a_validation_error_never_a_crash(value):
    try:
        calculate_fast(value, COMPILED[RULES.id])
    except ValidationError as exc:
        assert exc.field is not None and exc.message


@settings(max_examples=300)
@given(requests(), st.lists(st.text(min_size=1, max_size=6).filter(lambda s: not s.isspace()), min_size=3,
                            max_size=3, unique=True))
def test_batch_line_encoding_equals_json_dumps(obj, ids):
    import json

    from domain.calculation.batch import encode_fast_result

    for rp, rp_id in zip(obj["receiving_parents"], ids):
        rp["id"] = rp_id
    result = calculate_fast(obj, COMPILED[RULES.id])
    assert encode_fast_result(result) == json.dumps(fast_result_to_json(result), ensure_ascii=False)
