"""Versioned rule sets: every statutory constant, as data with an effective-from date.

An announced reform is a new data file, not a code change (docs/rules.md). The data
files sit beside this module and are read with :mod:`importlib.resources`, which is the
only file access in ``domain`` (package data, not user files).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from fractions import Fraction
from functools import cache
from importlib import resources
from typing import Any

_DATA_FILES = ("gb_2012_scheme.json", "gb_2012_fees_2pct.json")


class RuleSetError(ValueError):
    """A rule set is malformed, unknown, or none is in force on a date."""


@dataclass(frozen=True)
class SharedCareBand:
    from_nights: int
    fraction: Fraction
    extra_reduction_pence: int


@dataclass(frozen=True)
class EnforcementRules:
    """Enforcement figures (docs/rules.md section 5): deduction limits, notice periods, waivers."""

    protected_earnings: Fraction
    maximum_deduction: Fraction
    employer_admin_pence_per_deduction: int
    days: Mapping[str, int]
    direct_pay_warning_valid_months: int
    charge_waivers: tuple[str, ...]


@dataclass(frozen=True)
class RuleSet:
    id: str
    title: str
    effective_from: date
    provisional: bool
    # 4.1 income
    days_in_year: int
    days_in_week: int
    current_income_tolerance: Fraction
    weekly_cap_pence: int
    # 4.2 rates
    nil_below_pence: int
    flat_rate_pence: int
    flat_up_to_pence: int
    reduced_below_pence: int
    basic_plus_above_pence: int
    rate_rounding_pence: int
    reduced_rate_by_qc_then_roc: tuple[tuple[Fraction, ...], ...]
    roc_income_reduction: tuple[Fraction, ...]
    basic_rate_by_qc: tuple[Fraction, ...]
    basic_plus_rate_by_qc: tuple[Fraction, ...]
    # 4.3 shared care and floor
    shared_care_bands: tuple[SharedCareBand, ...]
    minimum_liability_pence: int
    flat_rate_benefit_nil_from_nights: int
    # 4.4 fees
    paying_parent_fee: Fraction
    receiving_parent_fee: Fraction
    default_rate_pence_by_qc: tuple[int, ...]
    enforcement_charges_pence: Mapping[str, int]
    enforcement: EnforcementRules
    # 2.1 special expenses: the weekly threshold of each ground (reg 68)
    special_expense_thresholds_pence: Mapping[str, int] = field(default_factory=dict)

    def shared_care_band_for(self, nights: int) -> SharedCareBand | None:
        """The band a number of nights falls in, or None below the first band (0-51)."""
        found = None
        for band in self.shared_care_bands:
            if nights >= band.from_nights:
                found = band
        return found

    def roc_column(self, relevant_other_children: int) -> int:
        """ROC count as a table column: 0, 1, 2 or 3-or-more (4.2)."""
        return min(relevant_other_children, len(self.roc_income_reduction) - 1)

    def qc_row(self, qualifying_children: int) -> int:
        """QC count as a table row index: 1, 2 or 3-or-more -> 0, 1, 2 (4.2)."""
        return min(qualifying_children, len(self.basic_rate_by_qc)) - 1


def _percent(text: Any, where: str) -> Fraction:
    if not isinstance(text, (str, int)) or isinstance(text, bool):
        raise RuleSetError(f"{where}: a percentage must be a string such as \"12.4\"")
    try:
        value = Fraction(text) / 100
    except (ValueError, ZeroDivisionError) as exc:
        raise RuleSetError(f"{where}: not a percentage: {text!r}") from exc
    if value < 0:
        raise RuleSetError(f"{where}: must not be negative")
    return value


def _pence(value: Any, where: str) -> int:
    if type(value) is not int or value < 0:
        raise RuleSetError(f"{where}: must be a non-negative integer number of pence")
    return value


def rule_set_from_dict(data: Mapping[str, Any]) -> RuleSet:
    """Build a RuleSet from its JSON form; raises RuleSetError naming the bad field."""
    try:
        income, rates, care = data["income"], data["rates"], data["shared_care"]
        fees = data["collection_fees"]
        bands = tuple(
            SharedCareBand(
                from_nights=_pence(b["from_nights"], "shared_care.bands.from_nights"),
                fraction=Fraction(b["fraction"]),
                extra_reduction_pence=_pence(
                    b.get("extra_reduction_pence", 0), "shared_care.bands.extra_reduction_pence"
                ),
            )
            for b in care["bands"]
        )
        reduced = tuple(
            tuple(_percent(p, f"rates.reduced_percent_by_qc_then_roc[{i}]") for p in row)
            for i, row in enumerate(rates["reduced_percent_by_qc_then_roc"])
        )
        rules = RuleSet(
            id=str(data["id"]),
            title=str(data.get("title", data["id"])),
            effective_from=date.fromisoformat(data["effective_from"]),
            provisional=bool(data.get("provisional", False)),
            days_in_year=_pence(income["days_in_year"], "income.days_in_year"),
            days_in_week=_pence(income["days_in_week"], "income.days_in_week"),
            current_income_tolerance=_percent(
                income["current_income_tolerance_percent"], "income.current_income_tolerance_percent"
            ),
            weekly_cap_pence=_pence(income["weekly_cap_pence"], "income.weekly_cap_pence"),
            nil_below_pence=_pence(rates["nil_below_pence"], "rates.nil_below_pence"),
            flat_rate_pence=_pence(rates["flat_rate_pence"], "rates.flat_rate_pence"),
            flat_up_to_pence=_pence(rates["flat_up_to_pence"], "rates.flat_up_to_pence"),
            reduced_below_pence=_pence(rates["reduced_below_pence"], "rates.reduced_below_pence"),
            basic_plus_above_pence=_pence(rates["basic_plus_above_pence"], "rates.basic_plus_above_pence"),
            rate_rounding_pence=_pence(rates["rate_rounding_pence"], "rates.rate_rounding_pence"),
            reduced_rate_by_qc_then_roc=reduced,
            roc_income_reduction=tuple(
                _percent(p, "rates.roc_income_reduction_percent") for p in rates["roc_income_reduction_percent"]
            ),
            basic_rate_by_qc=tuple(_percent(p, "rates.basic_percent_by_qc") for p in rates["basic_percent_by_qc"]),
            basic_plus_rate_by_qc=tuple(
                _percent(p, "rates.basic_plus_percent_by_qc") for p in rates["basic_plus_percent_by_qc"]
            ),
            shared_care_bands=bands,
            minimum_liability_pence=_pence(care["minimum_liability_pence"], "shared_care.minimum_liability_pence"),
            flat_rate_benefit_nil_from_nights=_pence(
                care["flat_rate_benefit_nil_from_nights"], "shared_care.flat_rate_benefit_nil_from_nights"
            ),
            paying_parent_fee=_percent(fees["paying_parent_percent"], "collection_fees.paying_parent_percent"),
            receiving_parent_fee=_percent(fees["receiving_parent_percent"], "collection_fees.receiving_parent_percent"),
            default_rate_pence_by_qc=tuple(
                _pence(p, "default_rate_pence_by_qc") for p in data["default_rate_pence_by_qc"]
            ),
            enforcement_charges_pence=dict(data.get("enforcement_charges_pence", {})),
            enforcement=_enforcement_rules(data["enforcement"]),
            special_expense_thresholds_pence={
                ground: _pence(pence, f"variations.special_expense_threshold_pence.{ground}")
                for ground, pence in data.get("variations", {}).get("special_expense_threshold_pence", {}).items()},
        )
    except KeyError as exc:
        raise RuleSetError(f"rule set is missing the field {exc.args[0]!r}") from exc
    except (TypeError, ValueError) as exc:
        if isinstance(exc, RuleSetError):
            raise
        raise RuleSetError(f"rule set is malformed: {exc}") from exc
    _check_shapes(rules)
    return rules


def _enforcement_rules(data: Mapping[str, Any]) -> EnforcementRules:
    earnings = data["deduction_from_earnings"]
    rules = EnforcementRules(
        protected_earnings=_percent(earnings["protected_earnings_percent"],
                                    "enforcement.deduction_from_earnings.protected_earnings_percent"),
        maximum_deduction=_percent(earnings["maximum_deduction_percent"],
                                   "enforcement.deduction_from_earnings.maximum_deduction_percent"),
        employer_admin_pence_per_deduction=_pence(
            earnings["employer_admin_pence_per_deduction"],
            "enforcement.deduction_from_earnings.employer_admin_pence_per_deduction"),
        days={name: _pence(days, f"enforcement.days.{name}") for name, days in data["days"].items()},
        direct_pay_warning_valid_months=_pence(data["direct_pay_warning_valid_months"],
                                               "enforcement.direct_pay_warning_valid_months"),
        charge_waivers=tuple(str(reason) for reason in data["charge_waivers"]),
    )
    if rules.protected_earnings + rules.maximum_deduction != 1:
        raise RuleSetError("enforcement.deduction_from_earnings: the protected proportion and the "
                           "maximum deduction must make up the whole of net earnings")
    return rules


def _check_shapes(rules: RuleSet) -> None:
    qc_rows = len(rules.basic_rate_by_qc)
    roc_columns = len(rules.roc_income_reduction)
    if qc_rows < 1 or len(rules.basic_plus_rate_by_qc) != qc_rows:
        raise RuleSetError("rates: basic and basic plus percentages need one entry per QC row")
    if len(rules.reduced_rate_by_qc_then_roc) != qc_rows or any(
        len(row) != roc_columns for row in rules.reduced_rate_by_qc_then_roc
    ):
        raise RuleSetError("rates.reduced_percent_by_qc_then_roc: needs QC rows x ROC columns")
    if len(rules.default_rate_pence_by_qc) != qc_rows:
        raise RuleSetError("default_rate_pence_by_qc: needs one entry per QC row")
    starts = [band.from_nights for band in rules.shared_care_bands]
    if starts != sorted(starts) or len(set(starts)) != len(starts):
        raise RuleSetError("shared_care.bands: from_nights must increase")
    if rules.days_in_year <= 0 or rules.rate_rounding_pence <= 0:
        raise RuleSetError("income.days_in_year and rates.rate_rounding_pence must be positive")


@cache
def packaged_rule_sets() -> tuple[RuleSet, ...]:
    """All rule sets shipped with the package, oldest effective date first."""
    package = resources.files(__name__)
    loaded = [
        rule_set_from_dict(json.loads(package.joinpath(name).read_text(encoding="utf-8")))
        for name in _DATA_FILES
    ]
    return tuple(sorted(loaded, key=lambda rules: rules.effective_from))


def rule_set(rule_set_id: str) -> RuleSet:
    """A packaged rule set by its id, e.g. ``"gb-2012"`` or ``"gb-2012-fees-2pct"``."""
    for rules in packaged_rule_sets():
        if rules.id == rule_set_id:
            return rules
    known = ", ".join(r.id for r in packaged_rule_sets())
    raise RuleSetError(f"unknown rule set {rule_set_id!r} (known: {known})")


def rules_for(effective_date: date) -> RuleSet:
    """The rule set in force on the effective date of a decision (latest effective_from <= date)."""
    in_force = [r for r in packaged_rule_sets() if r.effective_from <= effective_date]
    if not in_force:
        earliest = packaged_rule_sets()[0].effective_from
        raise RuleSetError(f"no rule set in force on {effective_date.isoformat()} (earliest is {earliest})")
    return in_force[-1]


def current_rules() -> RuleSet:
    """The rule set in force without a provisional reform: used when no date is given.

    The domain reads no clock, so "today" is not available here; callers with an effective
    date should use :func:`rules_for`.
    """
    settled = [r for r in packaged_rule_sets() if not r.provisional]
    return settled[-1]


__all__ = [
    "EnforcementRules",
    "RuleSet",
    "RuleSetError",
    "SharedCareBand",
    "current_rules",
    "packaged_rule_sets",
    "rule_set",
    "rule_set_from_dict",
    "rules_for",
]
