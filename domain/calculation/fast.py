"""The batch fast path: the same figures as :func:`engine.calculate`, without explanation.

Used for the whole caseload (annual review, rule-change what-if), where a million
decisions must be recalculated in seconds. Everything is integer arithmetic: each rule-set
percentage or fraction is compiled once into an integer numerator and denominator, and
every rounding is an explicit integer half-up division ``(2p + q) // 2q``. No floats.

Validation is lean: anything unusual (a missing field, a wrong type, an id made of
spaces, ...) is handed to the reference path, which either raises the precise
:class:`ValidationError` or computes the result itself. So the fast path can only ever be
faster, never different; ``tests/domain/test_properties.py`` checks equality.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from math import lcm
from typing import Any

from domain.rulesets import RuleSet

from .engine import calculate
from .request import MAX_NIGHTS, NIL_RATE_REASONS, parse_request

_REQUEST_KEYS = frozenset({"paying_parent", "receiving_parents", "service_type"})
_PAYING_PARENT_KEYS = frozenset({
    "gross_weekly_income_pence", "income", "flat_rate_benefit", "nil_rate_reason",
    "relevant_other_children", "special_expenses_weekly_pence", "additional_income_weekly_pence",
})
_INCOME_KEYS = frozenset({"hmrc_annual_pence", "current_weekly_pence"})
_RP_KEYS = frozenset({"id", "children"})
_CHILD_KEYS = frozenset({"id", "shared_care_nights"})

# A result: (rate, gross weekly income, rate amount, weekly liability,
#            ((rp id, weekly amount, paying parent fee, receiving parent fee), ...))
FastResult = tuple[str, int, int, int, tuple[tuple[str, int, int, int], ...]]


class _NotSimple(Exception):
    """The input needs the reference path (for its error message or an unusual shape)."""


@dataclass(frozen=True)
class CompiledRules:
    """A rule set as integers: ``n / d`` pairs instead of Fractions."""

    rules: RuleSet
    days_in_week: int
    days_in_year: int
    tolerance: tuple[int, int]
    cap: int
    nil_below: int
    flat_rate: int
    flat_up_to: int
    reduced_below: int
    split: int
    unit: int
    reduced: tuple[tuple[tuple[int, int], ...], ...]  # [qc row][roc col] -> (n, d)
    basic: tuple[tuple[tuple[int, int, int, int], ...], ...]  # [row][col] -> (keep n, p1 n, p2 n, d)
    care_scale: int
    care_numerator: tuple[int, ...]  # by nights 0..366, over care_scale
    care_extra: tuple[int, ...]  # by nights: £7 at 175+
    loses_flat: tuple[bool, ...]  # by nights: 52+ removes a flat-rate (benefit) share
    minimum: int
    pp_fee: tuple[int, int]
    rp_fee: tuple[int, int]


def _pair(value: Fraction) -> tuple[int, int]:
    return value.numerator, value.denominator


def _basic_constants(rules: RuleSet, row: int, col: int) -> tuple[int, int, int, int]:
    keep = 1 - rules.roc_income_reduction[col]
    p1, p2 = rules.basic_rate_by_qc[row], rules.basic_plus_rate_by_qc[row]
    d = lcm(keep.denominator, p1.denominator, p2.denominator)
    # income × keep × p over d²: keep_n = keep×d, p_n = p×d, all exact integers.
    return int(keep * d), int(p1 * d), int(p2 * d), d


def compile_rules(rules: RuleSet) -> CompiledRules:
    fractions = [band.fraction for band in rules.shared_care_bands]
    scale = lcm(*(f.denominator for f in fractions)) if fractions else 1
    nights = range(MAX_NIGHTS + 1)
    bands = [rules.shared_care_band_for(n) for n in nights]
    columns = range(len(rules.roc_income_reduction))
    return CompiledRules(
        rules=rules,
        days_in_week=rules.days_in_week,
        days_in_year=rules.days_in_year,
        tolerance=_pair(rules.current_income_tolerance),
        cap=rules.weekly_cap_pence,
        nil_below=rules.nil_below_pence,
        flat_rate=rules.flat_rate_pence,
        flat_up_to=rules.flat_up_to_pence,
        reduced_below=rules.reduced_below_pence,
        split=rules.basic_plus_above_pence,
        unit=rules.rate_rounding_pence,
        reduced=tuple(tuple(_pair(t) for t in row) for row in rules.reduced_rate_by_qc_then_roc),
        basic=tuple(
            tuple(_basic_constants(rules, row, col) for col in columns) for row in range(len(rules.basic_rate_by_qc))
        ),
        care_scale=scale,
        care_numerator=tuple(int(b.fraction * scale) if b else 0 for b in bands),
        care_extra=tuple(b.extra_reduction_pence if b else 0 for b in bands),
        loses_flat=tuple(n >= rules.flat_rate_benefit_nil_from_nights for n in nights),
        minimum=rules.minimum_liability_pence,
        pp_fee=_pair(rules.paying_parent_fee),
        rp_fee=_pair(rules.receiving_parent_fee),
    )


def apportion_ints(total: int, weights: list[int], weight_sum: int) -> list[int]:
    """Largest remainder, ties to the earlier parent (same rule as apportionment.apportion)."""
    parts = [divmod(total * w, weight_sum) for w in weights]
    shares = [p[0] for p in parts]
    left = total - sum(shares)
    if left:
        for i in sorted(range(len(parts)), key=lambda i: -parts[i][1])[:left]:
            shares[i] += 1
    return shares


def _money(obj: dict, key: str) -> int:
    value = obj.get(key)
    if value is None:
        return 0
    if type(value) is not int or value < 0:
        raise _NotSimple
    return value


def _gross_weekly_income(pp: dict, c: CompiledRules) -> int:
    stated = pp.get("gross_weekly_income_pence")
    evidence = pp.get("income")
    if stated is not None:
        if evidence is not None or type(stated) is not int or stated < 0:
            raise _NotSimple
        return stated
    if type(evidence) is not dict or not evidence.keys() <= _INCOME_KEYS:
        raise _NotSimple
    annual = evidence.get("hmrc_annual_pence")
    if type(annual) is not int or annual < 0:
        raise _NotSimple
    # reg 35: annual × 7 / 365, to the penny, halves up.
    historic = (2 * annual * c.days_in_week + c.days_in_year) // (2 * c.days_in_year)
    current = evidence.get("current_weekly_pence")
    if current is None:
        return historic
    if type(current) is not int or current < 0:
        raise _NotSimple
    if historic == 0:
        return current if current > 0 else historic
    tol_n, tol_d = c.tolerance
    return current if abs(current - historic) * tol_d >= tol_n * historic else historic


def _receiving_parents(rps: Any, c: CompiledRules) -> list[tuple[str, int, int, int, bool]]:
    """Per parent: (id, children, care numerator sum, £7 extras, loses a flat-rate share)."""
    if type(rps) is not list or not rps:
        raise _NotSimple
    out = []
    care_numerator, care_extra, loses_flat = c.care_numerator, c.care_extra, c.loses_flat
    for rp in rps:
        if type(rp) is not dict or not rp.keys() <= _RP_KEYS:
            raise _NotSimple
        rp_id = rp.get("id")
        children = rp.get("children")
        if type(rp_id) is not str or not rp_id or rp_id.isspace() or type(children) is not list or not children:
            raise _NotSimple
        numerator = extra = 0
        lose = False
        for child in children:
            if type(child) is not dict or not child.keys() <= _CHILD_KEYS:
                raise _NotSimple
            child_id = child.get("id")
            nights = child.get("shared_care_nights", 0)
            if type(child_id) is not str or not child_id or child_id.isspace():
                raise _NotSimple
            if type(nights) is not int or not 0 <= nights <= MAX_NIGHTS:
                raise _NotSimple
            numerator += care_numerator[nights]
            extra += care_extra[nights]
            lose = lose or loses_flat[nights]
        out.append((rp_id, len(children), numerator, extra, lose))
    if len({rp[0] for rp in out}) != len(out):
        raise _NotSimple
    return out


def _round_rate(numerator: int, denominator: int, unit: int) -> int:
    """numerator / denominator pence to the whole pound, 50p up."""
    return (2 * numerator + unit * denominator) // (2 * unit * denominator) * unit


def _calculated_rate(u: int, qc: int, roc: int, c: CompiledRules) -> tuple[str, int]:
    row = min(qc, len(c.basic)) - 1
    col = min(roc, len(c.basic[0]) - 1)
    if u < c.reduced_below:
        t_n, t_d = c.reduced[row][col]
        return "reduced", _round_rate(c.flat_rate * t_d + (u - c.flat_up_to) * t_n, t_d, c.unit)
    keep_n, p1_n, p2_n, d = c.basic[row][col]
    adjusted = u * keep_n  # over d
    split = c.split * d
    numerator = min(adjusted, split) * p1_n + max(adjusted - split, 0) * p2_n  # over d²
    return ("basic_plus" if u > c.split else "basic"), _round_rate(numerator, d * d, c.unit)


def _shared_care(share: int, children: int, numerator: int, extra: int, scale: int) -> int:
    """share × (1 − mean fraction) − extras, to the penny (halves up), never below zero."""
    if not numerator and not extra:
        return share
    q = scale * children
    p = share * (q - numerator) - extra * q
    return max(0, (2 * p + q) // (2 * q))


def _fast(obj: Any, c: CompiledRules) -> FastResult:
    if type(obj) is not dict or not obj.keys() <= _REQUEST_KEYS:
        raise _NotSimple
    service = obj.get("service_type")
    if service is None or service == "direct_pay":
        collect = False
    elif service == "collect_and_pay":
        collect = True
    else:
        raise _NotSimple
    pp = obj["paying_parent"]
    if type(pp) is not dict or not pp.keys() <= _PAYING_PARENT_KEYS:
        raise _NotSimple
    gwi = _gross_weekly_income(pp, c)
    benefit = pp.get("flat_rate_benefit")
    if benefit is None:
        benefit = False
    elif type(benefit) is not bool:
        raise _NotSimple
    nil_reason = pp.get("nil_rate_reason")
    if nil_reason is not None and (type(nil_reason) is not str or nil_reason not in NIL_RATE_REASONS):
        raise _NotSimple
    roc = _money(pp, "relevant_other_children")
    used = gwi - _money(pp, "special_expenses_weekly_pence") + _money(pp, "additional_income_weekly_pence")
    used = 0 if used < 0 else (c.cap if used > c.cap else used)
    parents = _receiving_parents(obj["receiving_parents"], c)
    weights = [p[1] for p in parents]
    qc = sum(weights)

    # Reg 74(1A): only income below £7 before any variation gives nil; a variation that takes it
    # below £7 leaves the flat rate (the branch below).
    if nil_reason is not None or (not benefit and used < c.nil_below and gwi < c.nil_below):
        rate, amount = "nil", 0
        amounts = [0] * len(parents)
    elif benefit or used <= c.flat_up_to:
        rate, amount = "flat", c.flat_rate
        amounts = [amount] if len(parents) == 1 else apportion_ints(amount, weights, qc)
        if benefit:  # para 8: 52+ nights for any child of that household removes its share
            amounts = [0 if p[4] else a for p, a in zip(parents, amounts)]
    else:
        rate, amount = _calculated_rate(used, qc, roc, c)
        shares = [amount] if len(parents) == 1 else apportion_ints(amount, weights, qc)
        scale = c.care_scale
        amounts = [_shared_care(s, p[1], p[2], p[3], scale) for s, p in zip(shares, parents)]
        if sum(amounts) < c.minimum:
            amounts = [c.minimum] if len(parents) == 1 else apportion_ints(c.minimum, weights, qc)

    if collect:
        pp_n, pp_d = c.pp_fee
        rp_n, rp_d = c.rp_fee
        rows = tuple(
            (p[0], a, (2 * a * pp_n + pp_d) // (2 * pp_d), (2 * a * rp_n + rp_d) // (2 * rp_d))
            for p, a in zip(parents, amounts)
        )
    else:
        rows = tuple((p[0], a, 0, 0) for p, a in zip(parents, amounts))
    return rate, gwi, amount, sum(amounts), rows


def calculate_fast(obj: Any, compiled: CompiledRules) -> FastResult:
    """Figures for one decoded request; raises ValidationError exactly as parse_request does."""
    try:
        return _fast(obj, compiled)
    except (_NotSimple, KeyError, TypeError, AttributeError):
        pass
    result = calculate(parse_request(obj), compiled.rules)  # raises the precise ValidationError
    return (
        result.rate, result.gross_weekly_income_pence, result.rate_amount_pence, result.weekly_liability_pence,
        tuple((r.id, r.weekly_amount_pence, r.paying_parent_fee_pence, r.receiving_parent_fee_pence)
              for r in result.receiving_parents),
    )


def fast_result_to_json(result: FastResult) -> dict[str, Any]:
    """The `cms calculate` result object (docs/design.md, Contracts) without the explanation, same key order as the full path."""
    rate, gwi, amount, liability, rows = result
    return {
        "rate": rate,
        "gross_weekly_income_pence": gwi,
        "rate_amount_pence": amount,
        "weekly_liability_pence": liability,
        "receiving_parents": [
            {"id": r[0], "weekly_amount_pence": r[1], "paying_parent_fee_pence": r[2],
             "receiving_parent_fee_pence": r[3]}
            for r in rows
        ],
    }
