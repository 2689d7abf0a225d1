"""Plain-English explanation steps: what a decision letter shows, with the figures.

The same steps go to both parents. They hold figures and the ids of receiving parents and
children only, never names, addresses or employers, so a safeguarding profile (docs/design.md, Security and safeguarding)
has nothing location-revealing to redact here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from domain.money import format_pence as money
from domain.money import format_percent as percent
from domain.rulesets import RuleSet

from .income import IncomeDecision
from .rates import RateDecision
from .request import ReceivingParent
from .shared_care import SharedCareOutcome

NIL_REASON_WORDS = {
    "prisoner": "is in prison",
    "child": "is a child",
    "care_home": "lives in a care home or independent hospital",
    "work_based_training": "gets an allowance for work-based training for young people",
    "under_18_on_benefits": "is 16 or 17 and gets a qualifying benefit",
}


@dataclass(frozen=True)
class Step:
    step: str
    text: str

    def to_json(self) -> dict[str, str]:
        return {"step": self.step, "text": self.text}


def _children(n: int) -> str:
    return f"{n} child" if n == 1 else f"{n} children"


def _fraction(value: Fraction) -> str:
    return f"{value.numerator}/{value.denominator}"


def income_step(income: IncomeDecision, rules: RuleSet) -> Step:
    if income.basis == "stated":
        return Step("income", f"Gross weekly income: {money(income.gross_weekly_income_pence)} a week.")
    parts = []
    if income.historic_weekly_pence is not None:
        parts.append(
            f"HMRC figure for the latest tax year: {money(income.hmrc_annual_pence or 0)} a year "
            f"÷ {rules.days_in_year} × {rules.days_in_week} = {money(income.historic_weekly_pence)} a week "
            "(historic income)."
        )
    else:
        parts.append("HMRC holds no figure for the latest tax year, so current income is used.")
    if income.historic_weekly_pence is not None and income.current_weekly_pence is not None:
        historic, current = income.historic_weekly_pence, income.current_weekly_pence
        tolerance = rules.current_income_tolerance * historic
        if income.basis == "current":
            why = (
                "historic income is nil" if historic == 0
                else f"it differs from historic income by {money(abs(current - historic))}, at least "
                     f"{percent(rules.current_income_tolerance)} of it ({money(tolerance)})"
            )
            parts.append(f"Current income is {money(current)} a week; {why}, so current income is used.")
        else:
            parts.append(
                f"Current income is {money(current)} a week; it differs by {money(abs(current - historic))}, "
                f"less than {percent(rules.current_income_tolerance)} of historic income ({money(tolerance)}), "
                "so historic income is used."
            )
    parts.append(f"Gross weekly income: {money(income.gross_weekly_income_pence)} a week.")
    return Step("income", " ".join(parts))


def variations_step(income: IncomeDecision, special: int, additional: int) -> Step | None:
    if not special and not additional:
        return None
    changes = []
    if special:
        changes.append(f"special expenses of {money(special)} a week are taken off")
    if additional:
        changes.append(f"additional income of {money(additional)} a week is added")
    text = f"Agreed variations: {' and '.join(changes)}, giving {money(income.after_variations_pence)} a week."
    return Step("variations", text[0].upper() + text[1:])


def cap_step(income: IncomeDecision, rules: RuleSet) -> Step | None:
    if not income.capped:
        return None
    return Step(
        "cap",
        f"Income above {money(rules.weekly_cap_pence)} a week is not counted, so "
        f"{money(income.used_pence)} a week is used.",
    )


def rate_step(decision: RateDecision, income_used: int, nil_reason: str | None, rules: RuleSet) -> Step:
    qc = decision.qualifying_children
    children = f"{qc} qualifying {'child' if qc == 1 else 'children'}"
    roc = decision.relevant_other_children
    roc_text = (
        "no relevant other children" if roc == 0
        else f"{roc} relevant other {'child' if roc == 1 else 'children'}" + (" (counted as 3)" if roc > 3 else "")
    )
    if decision.reason == "nil_rate_reason":
        why = NIL_REASON_WORDS.get(nil_reason or "", "is in a nil-rate category")
        return Step("rate", f"The paying parent {why}, so the nil rate applies: nothing is payable.")
    if decision.reason == "flat_rate_benefit":
        return Step(
            "rate",
            "The paying parent (or their partner) gets a benefit that leads to the flat rate: "
            f"{money(rules.flat_rate_pence)} a week, whatever the number of children.",
        )
    if decision.reason == "income_below_nil_threshold":
        return Step(
            "rate",
            f"Income of {money(income_used)} a week is below {money(rules.nil_below_pence)}, so the nil rate "
            "applies: nothing is payable.",
        )
    if decision.reason == "variation_floor":
        return Step(
            "rate",
            f"Income of {money(income_used)} a week after the variation is below {money(rules.nil_below_pence)}, "
            f"but a variation never takes the liability below the flat rate, so the flat rate applies: "
            f"{money(rules.flat_rate_pence)} a week, whatever the number of children.",
        )
    if decision.reason == "income_up_to_flat_limit":
        return Step(
            "rate",
            f"Income of {money(income_used)} a week is {money(rules.flat_up_to_pence)} or less, so the flat rate "
            f"applies: {money(rules.flat_rate_pence)} a week, whatever the number of children.",
        )
    rounding = f"rounded to the nearest pound: {money(decision.amount_pence)} a week."
    if decision.rate == "reduced":
        above = income_used - rules.flat_up_to_pence
        return Step(
            "rate",
            f"Income of {money(income_used)} a week is above {money(rules.flat_up_to_pence)} and below "
            f"{money(rules.reduced_below_pence)}, so the reduced rate applies. For {children} and {roc_text} "
            f"the percentage is {percent(decision.percent or Fraction(0))}: {money(rules.flat_rate_pence)} + "
            f"{percent(decision.percent or Fraction(0))} × {money(above)} = {money(decision.exact_pence)}, {rounding}",
        )
    band = "basic plus" if decision.rate == "basic_plus" else "basic"
    where = (
        f"above {money(rules.basic_plus_above_pence)}" if decision.rate == "basic_plus"
        else f"from {money(rules.reduced_below_pence)} to {money(rules.basic_plus_above_pence)}"
    )
    adjusted = decision.adjusted_income if decision.adjusted_income is not None else Fraction(income_used)
    pieces = [f"Income of {money(income_used)} a week is {where}, so the {band} rate applies."]
    if decision.roc_reduction:
        pieces.append(
            f"With {roc_text} income is first reduced by {percent(decision.roc_reduction)} to {money(adjusted)}."
        )
    split = Fraction(rules.basic_plus_above_pence)
    formula = f"{percent(decision.percent or Fraction(0))} × {money(min(adjusted, split))}"
    if adjusted > split:
        formula += f" + {percent(decision.basic_plus_percent or Fraction(0))} × {money(adjusted - split)}"
    pieces.append(f"For {children}: {formula} = {money(decision.exact_pence)}, {rounding}")
    return Step("rate", " ".join(pieces))


def apportionment_step(rate_pence: int, parents: Sequence[ReceivingParent], shares: Sequence[int]) -> Step | None:
    if len(parents) < 2:
        return None
    total_children = sum(len(rp.children) for rp in parents)
    listed = "; ".join(
        f"{rp.id}: {_children(len(rp.children))}, {money(share)}" for rp, share in zip(parents, shares)
    )
    return Step(
        "apportionment",
        f"The rate of {money(rate_pence)} is shared between {len(parents)} receiving parents by their number "
        f"of qualifying children ({total_children} in all), in whole pence: {listed}.",
    )


def shared_care_step(parents: Sequence[ReceivingParent], outcomes: Sequence[SharedCareOutcome],
                     rules: RuleSet) -> Step:
    lines = []
    for rp, outcome in zip(parents, outcomes):
        if not outcome.applied:
            lines.append(f"{rp.id}: no child stays {rules.shared_care_bands[0].from_nights} nights or more a year "
                         f"with the paying parent, so {money(outcome.after_pence)} is unchanged.")
            continue
        nights = ", ".join(f"{c.id} {c.shared_care_nights} nights" for c in rp.children)
        text = (f"{rp.id}: nights a year with the paying parent ({nights}) give an average reduction of "
                f"{_fraction(outcome.mean_fraction)}: {money(outcome.before_pence)} × "
                f"{_fraction(1 - outcome.mean_fraction)}")
        if outcome.extra_reduction_pence:
            text += f" − {money(outcome.extra_reduction_pence)} for children staying half the year or more"
        text += f" = {money(outcome.exact_pence)}"
        if outcome.exact_pence < 0:
            text += ", which cannot go below nothing, so £0.00"
        elif outcome.exact_pence != outcome.after_pence:
            text += f", {money(outcome.after_pence)} to the penny"
        lines.append(text + ".")
    return Step("shared_care", "Shared care: " + " ".join(lines))


def flat_rate_shared_care_step(parents: Sequence[ReceivingParent], losing: Sequence[bool],
                               benefit: bool, rules: RuleSet) -> Step | None:
    if not benefit:
        if any(c.shared_care_nights >= rules.shared_care_bands[0].from_nights
               for rp in parents for c in rp.children):
            return Step("shared_care", "The flat rate is due to low income, so shared care does not change it.")
        return None
    if not any(losing):
        return None
    nights = rules.flat_rate_benefit_nil_from_nights
    named = ", ".join(rp.id for rp, lost in zip(parents, losing) if lost)
    return Step(
        "shared_care",
        f"The flat rate is due to a benefit and a child of {named} stays {nights} nights or more a year with "
        "the paying parent, so nothing is payable to that receiving parent; any other receiving parent keeps "
        "their share.",
    )


def minimum_step(total_before: int, parents: Sequence[ReceivingParent], shares: Sequence[int],
                 rules: RuleSet) -> Step:
    listed = "; ".join(f"{rp.id}: {money(share)}" for rp, share in zip(parents, shares))
    return Step(
        "minimum",
        f"After shared care the total would be {money(total_before)}, below the minimum of "
        f"{money(rules.minimum_liability_pence)} a week, so the paying parent pays "
        f"{money(rules.minimum_liability_pence)} in total, shared by number of children: {listed}.",
    )


def fees_step(service_type: str, parents: Sequence[ReceivingParent], amounts: Sequence[int],
              fees: Sequence[tuple[int, int]], rules: RuleSet) -> Step:
    if service_type != "collect_and_pay":
        return Step("fees", "Direct Pay: the parents arrange payment between themselves and there are no "
                            "collection fees.")
    lines = "; ".join(
        f"{rp.id}: {money(amount)} + fee {money(pp)} = {money(amount + pp)} paid, "
        f"{money(amount)} − fee {money(rp_fee)} = {money(amount - rp_fee)} received"
        for rp, amount, (pp, rp_fee) in zip(parents, amounts, fees)
    )
    return Step(
        "fees",
        f"Collect & Pay: the paying parent pays a collection fee of {percent(rules.paying_parent_fee)} on top of "
        f"each amount and the receiving parent's payment has {percent(rules.receiving_parent_fee)} taken off, "
        f"each to the penny: {lines}.",
    )


def liability_step(total: int, parents: Sequence[ReceivingParent], amounts: Sequence[int]) -> Step:
    if len(parents) == 1:
        return Step("liability", f"Weekly child maintenance payable to {parents[0].id}: {money(total)}.")
    listed = "; ".join(f"{rp.id}: {money(a)}" for rp, a in zip(parents, amounts))
    return Step("liability", f"Weekly child maintenance: {money(total)} in total ({listed}).")
