"""Allocation of money received (docs/rules.md section 5): the current period's maintenance and fee first, then
the oldest arrears (maintenance before fee within a period), and enforcement charges last.
Whatever is left is an overpayment, held as a credit for the paying parent."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from datetime import date

MAINTENANCE, FEE, ENFORCEMENT = "maintenance", "fee", "enforcement"
COMPONENTS = (MAINTENANCE, FEE, ENFORCEMENT)


@dataclass(frozen=True)
class Debt:
    key: Hashable
    due_date: date
    component: str
    outstanding_pence: int


@dataclass(frozen=True)
class Allocation:
    debt: Debt
    amount_pence: int


def allocation_order(debts: list[Debt], current_due_date: date | None) -> list[Debt]:
    """Debts in the order money is applied to them."""
    component_rank = {MAINTENANCE: 0, FEE: 1}

    def rank(debt: Debt) -> tuple:
        if debt.component == ENFORCEMENT:
            return (2, debt.due_date, 0, str(debt.key))
        group = 0 if debt.due_date == current_due_date else 1
        return (group, debt.due_date, component_rank[debt.component], str(debt.key))

    for debt in debts:
        if debt.component not in COMPONENTS:
            raise ValueError(f"unknown debt component {debt.component!r}")
    return sorted((d for d in debts if d.outstanding_pence > 0), key=rank)


def allocate(amount_pence: int, debts: list[Debt], current_due_date: date | None
             ) -> tuple[list[Allocation], int]:
    """(allocations, unallocated remainder). Never allocates more than a debt's outstanding."""
    if type(amount_pence) is not int or amount_pence <= 0:
        raise ValueError("a payment must be a positive whole number of pence")
    left = amount_pence
    allocations = []
    for debt in allocation_order(debts, current_due_date):
        if left == 0:
            break
        taken = min(left, debt.outstanding_pence)
        allocations.append(Allocation(debt, taken))
        left -= taken
    return allocations, left
