"""The statutory calculation (docs/rules.md sections 1-5): request in, decision with explanation out.

This is the readable reference path, in exact arithmetic (int pence and Fraction). The
batch path in :mod:`domain.calculation.fast` must give identical figures; a property test
holds the two together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from domain.rulesets import RuleSet, current_rules, rules_for

from . import explanation as explain
from .apportionment import apportion
from .fees import collection_fees
from .income import determine_income
from .rates import CALCULATED_RATES, choose_rate, floor_for_variations
from .request import CalculationRequest, Child, ReceivingParent, ServiceType
from .shared_care import apply_shared_care, loses_flat_rate_for_shared_care


@dataclass(frozen=True)
class ReceivingParentAmount:
    id: str
    weekly_amount_pence: int
    paying_parent_fee_pence: int
    receiving_parent_fee_pence: int

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "weekly_amount_pence": self.weekly_amount_pence,
            "paying_parent_fee_pence": self.paying_parent_fee_pence,
            "receiving_parent_fee_pence": self.receiving_parent_fee_pence,
        }


@dataclass(frozen=True)
class CalculationResult:
    rate: str  # nil | flat | reduced | basic | basic_plus (| default for a default decision)
    gross_weekly_income_pence: int
    rate_amount_pence: int
    weekly_liability_pence: int
    receiving_parents: tuple[ReceivingParentAmount, ...]
    explanation: tuple[explain.Step, ...]
    rule_set_id: str

    @property
    def paying_parent_pays_pence(self) -> int:
        """What the paying parent pays a week: the liability plus any collection fees."""
        return self.weekly_liability_pence + sum(rp.paying_parent_fee_pence for rp in self.receiving_parents)

    @property
    def receiving_parents_receive_pence(self) -> int:
        return self.weekly_liability_pence - sum(rp.receiving_parent_fee_pence for rp in self.receiving_parents)

    def to_json(self, include_explanation: bool = True) -> dict[str, Any]:
        """The result object of docs/design.md, Contracts, exactly."""
        body: dict[str, Any] = {
            "rate": self.rate,
            "gross_weekly_income_pence": self.gross_weekly_income_pence,
            "rate_amount_pence": self.rate_amount_pence,
            "weekly_liability_pence": self.weekly_liability_pence,
            "receiving_parents": [rp.to_json() for rp in self.receiving_parents],
        }
        if include_explanation:
            body["explanation"] = [step.to_json() for step in self.explanation]
        return body


def select_rules(rules: RuleSet | None, effective_date: date | None) -> RuleSet:
    """An explicit rule set wins; otherwise the one in force on the effective date."""
    if rules is not None:
        return rules
    if effective_date is not None:
        return rules_for(effective_date)
    return current_rules()


def _weights(parents: Sequence[ReceivingParent]) -> list[int]:
    return [len(rp.children) for rp in parents]


def _with_fees(
    parents: Sequence[ReceivingParent], amounts: Sequence[int], service_type: ServiceType, rules: RuleSet
) -> tuple[tuple[ReceivingParentAmount, ...], explain.Step]:
    fees = [collection_fees(amount, service_type, rules) for amount in amounts]
    rows = tuple(
        ReceivingParentAmount(rp.id, amount, pp_fee, rp_fee)
        for rp, amount, (pp_fee, rp_fee) in zip(parents, amounts, fees)
    )
    return rows, explain.fees_step(service_type, parents, amounts, fees, rules)


def _calculated_rate_amounts(
    rate_pence: int, parents: Sequence[ReceivingParent], rules: RuleSet, steps: list[explain.Step]
) -> list[int]:
    """Reduced, basic, basic plus: apportion, shared care per parent, then the £7 floor."""
    outcomes = [apply_shared_care(share, rp.children, rules) for rp, share in
                zip(parents, apportion(rate_pence, _weights(parents)))]
    steps.append(explain.shared_care_step(parents, outcomes, rules))
    amounts = [outcome.after_pence for outcome in outcomes]
    if sum(amounts) < rules.minimum_liability_pence:
        # Sch 1 para 7: the paying parent never pays less than the flat rate in total;
        # the minimum is shared between receiving parents as the rate was (4.3).
        floored = apportion(rules.minimum_liability_pence, _weights(parents))
        steps.append(explain.minimum_step(sum(amounts), parents, floored, rules))
        amounts = floored
    return amounts


def _flat_rate_amounts(
    shares: Sequence[int], parents: Sequence[ReceivingParent], due_to_benefit: bool, rules: RuleSet,
    steps: list[explain.Step],
) -> list[int]:
    """Para 8: with a benefit, 52+ nights for any child removes that parent's share."""
    losing = [due_to_benefit and loses_flat_rate_for_shared_care(rp.children, rules) for rp in parents]
    step = explain.flat_rate_shared_care_step(parents, losing, due_to_benefit, rules)
    if step:
        steps.append(step)
    return [0 if lost else share for share, lost in zip(shares, losing)]


def calculate(
    request: CalculationRequest, rules: RuleSet | None = None, effective_date: date | None = None
) -> CalculationResult:
    """The maintenance calculation for one paying parent, with its explanation."""
    rules = select_rules(rules, effective_date)
    pp, parents = request.paying_parent, request.receiving_parents
    income = determine_income(pp, rules)
    steps = [explain.income_step(income, rules)]
    for optional in (
        explain.variations_step(income, pp.special_expenses_weekly_pence, pp.additional_income_weekly_pence),
        explain.cap_step(income, rules),
    ):
        if optional:
            steps.append(optional)
    decision = choose_rate(income.used_pence, pp, request.qualifying_children, rules)
    decision = floor_for_variations(decision, income.gross_weekly_income_pence, rules)
    steps.append(explain.rate_step(decision, income.used_pence, pp.nil_rate_reason, rules))

    shares = apportion(decision.amount_pence, _weights(parents))
    apportioned = explain.apportionment_step(decision.amount_pence, parents, shares)
    if apportioned and decision.rate != "nil":
        steps.append(apportioned)
    if decision.rate in CALCULATED_RATES:
        amounts = _calculated_rate_amounts(decision.amount_pence, parents, rules, steps)
    elif decision.rate == "flat":
        amounts = _flat_rate_amounts(shares, parents, decision.reason == "flat_rate_benefit", rules, steps)
    else:
        amounts = [0] * len(parents)

    rows, fee_step = _with_fees(parents, amounts, request.service_type, rules)
    total = sum(amounts)
    steps.append(fee_step)
    steps.append(explain.liability_step(total, parents, amounts))
    return CalculationResult(
        rate=decision.rate,
        gross_weekly_income_pence=income.gross_weekly_income_pence,
        rate_amount_pence=decision.amount_pence,
        weekly_liability_pence=total,
        receiving_parents=rows,
        explanation=tuple(steps),
        rule_set_id=rules.id,
    )


def default_decision(
    qualifying_children: int,
    receiving_parents: Sequence[ReceivingParent] | None = None,
    service_type: ServiceType = "direct_pay",
    rules: RuleSet | None = None,
    effective_date: date | None = None,
) -> CalculationResult:
    """Default maintenance decision (s.12, reg 49): information missing for 28 days.

    £39 / £51 / £64 a week for 1 / 2 / 3+ qualifying children, apportioned between the
    receiving parents like the rate (reg 49(2)), with Collect & Pay fees. Without
    ``receiving_parents`` a single receiving parent ``rp-1`` is assumed. The result's rate
    is ``"default"`` and its gross weekly income 0 (unknown).
    """
    rules = select_rules(rules, effective_date)
    if qualifying_children < 1:
        raise ValueError("a default decision needs at least one qualifying child")
    if receiving_parents is None:
        receiving_parents = (
            ReceivingParent("rp-1", tuple(Child(f"c-{i + 1}") for i in range(qualifying_children))),
        )
    if sum(_weights(receiving_parents)) != qualifying_children:
        raise ValueError("qualifying_children must equal the number of children of the receiving parents")
    rate = rules.default_rate_pence_by_qc[rules.qc_row(qualifying_children)]
    amounts = apportion(rate, _weights(receiving_parents))
    steps = [explain.Step(
        "rate",
        "The information needed for a calculation was not provided, so a default decision applies: "
        f"{explain.money(rate)} a week for {explain._children(qualifying_children)}, until the information "
        "arrives.",
    )]
    apportioned = explain.apportionment_step(rate, receiving_parents, amounts)
    if apportioned:
        steps.append(apportioned)
    rows, fee_step = _with_fees(receiving_parents, amounts, service_type, rules)
    steps.append(fee_step)
    steps.append(explain.liability_step(rate, receiving_parents, amounts))
    return CalculationResult("default", 0, rate, rate, rows, tuple(steps), rules.id)
