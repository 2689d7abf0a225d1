"""Simulated Collect & Pay case histories, for training and testing the payment-risk model.

Each simulated case has a payment schedule, the charges the payments ledger would post for it
(the same schedule arithmetic, `domain.payments.schedule`) and the paying parent's payments. What
drives the payments stays hidden from the features: a payer's type (reliable, erratic, rarely
paying) and life events that arrive at random — job loss, a drop in income, a new family, a
dispute about the case. Some show warning signs first (reduced hours: payments arrive later and
smaller); a dispute does not. A new family reduces the liability (a recalculation, which the
ledger does show).

Calibrated to the published figures for Great Britain (Collect & Pay, per quarter: 65-68% of
paying parents pay something, 41-45% pay more than 90% of what is due, about 32% pay nothing),
with the lower payment seen in the first months of a case. Deterministic for a seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta

from domain.payments.fees import paying_parent_weekly_fee, rules_on
from domain.payments.schedule import Frequency, Rate, instalment, period, period_start
from domain.risk_features import CaseLedger, LedgerLine

FREQUENCY_MIX = ((Frequency.MONTHLY, 0.6), (Frequency.FOUR_WEEKLY, 0.15), (Frequency.FORTNIGHTLY, 0.1),
                 (Frequency.WEEKLY, 0.15))
METHOD_MIX = (("METHOD_STANDING_ORDER", 0.5), ("METHOD_DIRECT_DEBIT", 0.25),
              ("METHOD_DEDUCTION_FROM_EARNINGS", 0.2), ("METHOD_CARD", 0.05))
PAYER_TYPES = (("reliable", 0.42), ("erratic", 0.21), ("rarely_pays", 0.37))

# Monthly chance that a cause starts, by payer type; (reliable, erratic, rarely_pays).
CAUSE_HAZARD = {
    "job_loss": (0.010, 0.02, 0.0),
    "income_drop": (0.014, 0.03, 0.0),
    "new_family": (0.006, 0.008, 0.0),
    "dispute": (0.007, 0.015, 0.0),
}
# Monthly chance of recovering from a cause's effect.
CAUSE_RECOVERY = {"job_loss": 0.15, "income_drop": 0.12, "new_family": 0.2, "dispute": 0.25}
# Warning periods before the effect: payments later (and sometimes short) while it builds.
CAUSE_LEAD = {"job_loss": (1, 2), "income_drop": (1, 3), "new_family": (0, 1), "dispute": (0, 0)}
FIRST_MONTHS_EXTRA_MISS = (0.5, 0.3, 0.15)   # periods 0, 1, 2: arrangements not yet in place


@dataclass(frozen=True)
class Cause:
    kind: str
    warning_from: date
    effect_from: date
    effect_until: date | None


@dataclass(frozen=True)
class Operation:
    """One step that the payments service would record, in order (for replaying a history)."""
    on: date
    kind: str            # schedule | charge | payment
    weekly_pence: int = 0
    fee_pence: int = 0
    period_index: int = 0
    amount_pence: int = 0


@dataclass
class SimulatedCase:
    case_id: str
    frequency: Frequency
    method: str
    starts_on: date
    payer_type: str                       # hidden
    causes: list[Cause]                   # hidden
    operations: list[Operation] = field(default_factory=list)

    def ledger(self) -> CaseLedger:
        lines = []
        for op in self.operations:
            if op.kind == "charge":
                lines.append(LedgerLine(op.on, "period_charge", due_pence=op.amount_pence))
            elif op.kind == "payment":
                lines.append(LedgerLine(op.on, "incoming_payment", paid_pence=op.amount_pence))
        return CaseLedger(self.case_id, "collect_and_pay", lines)


def _pick(rng: random.Random, mix: tuple[tuple[object, float], ...]) -> object:
    return rng.choices([value for value, _ in mix], weights=[weight for _, weight in mix])[0]


def _monthly_to_period(chance: float, days: int) -> float:
    return 1 - (1 - chance) ** (days / 30.4)


class _Payer:
    """The hidden state of one paying parent, period by period."""

    def __init__(self, rng: random.Random, payer_type: str):
        self.rng, self.type = rng, payer_type
        self.habit_days = rng.choice((0, 0, 0, 1, 2, 3)) if payer_type == "reliable" else rng.randint(0, 12)
        self.warning: tuple[str, int] | None = None   # cause developing, periods left until its effect
        self.active: str | None = None
        self.causes: list[Cause] = []

    def step(self, due_on: date, days: int) -> str | None:
        """Advances one period; returns a cause whose effect starts now (for a liability change)."""
        started = None
        if self.active is not None and self.rng.random() < _monthly_to_period(CAUSE_RECOVERY[self.active], days):
            last = self.causes[-1]
            self.causes[-1] = Cause(last.kind, last.warning_from, last.effect_from, due_on)
            self.active = None
        if self.warning is not None:
            kind, left = self.warning
            if left <= 0:
                self.active, self.warning, started = kind, None, kind
                last = self.causes[-1]
                self.causes[-1] = Cause(kind, last.warning_from, due_on, None)
            else:
                self.warning = (kind, left - 1)
        elif self.active is None:
            column = ("reliable", "erratic", "rarely_pays").index(self.type)
            for kind, hazards in CAUSE_HAZARD.items():
                if self.rng.random() < _monthly_to_period(hazards[column], days):
                    lead = self.rng.randint(*CAUSE_LEAD[kind])
                    self.causes.append(Cause(kind, due_on, due_on, None))
                    if lead == 0:
                        self.active, started = kind, kind
                    else:
                        self.warning = (kind, lead - 1)
                    break
        return started

    def payment(self, due_pence: int, index: int) -> tuple[int, float]:
        """(amount, days after the due date) for this period; amount 0 is a miss."""
        rng = self.rng
        lateness = self.habit_days + rng.choice((0, 0, 1, 2))
        if index < len(FIRST_MONTHS_EXTRA_MISS) and rng.random() < FIRST_MONTHS_EXTRA_MISS[index]:
            return 0, 0
        if self.type == "rarely_pays":
            return (due_pence if rng.random() < 0.5 else due_pence // 2, lateness) if rng.random() < 0.05 else (0, 0)
        if self.active in ("job_loss", "dispute"):
            return (0, 0) if rng.random() < 0.92 else (due_pence // 3, lateness + 10)
        if self.active in ("income_drop", "new_family"):
            if rng.random() < 0.3:
                return 0, 0
            return int(due_pence * rng.uniform(0.3, 0.85)), lateness + rng.randint(3, 15)
        if self.warning is not None:
            lateness += rng.randint(5, 14)
            if rng.random() < 0.25:
                return int(due_pence * rng.uniform(0.6, 0.95)), lateness
        if self.type == "erratic":
            roll = rng.random()
            if roll < 0.08:
                return 0, 0
            if roll < 0.25:
                return int(due_pence * rng.uniform(0.4, 0.9)), lateness + rng.randint(0, 10)
        return due_pence, lateness


def _amount_due(frequency: Frequency, starts_on: date, rate: Rate, index: int, known: dict[tuple[Rate, int], int]) -> int:
    """Maintenance and fee for a period wholly under one rate (changes start on a period boundary).
    A whole period's amount repeats every 12 monthly periods, and every period otherwise."""
    key = (rate, index % 12 if frequency is Frequency.MONTHLY else 0)
    if key not in known:
        due = instalment(frequency, starts_on, (Rate(starts_on, rate.weekly_pence, rate.weekly_fee_pence),), index)
        known[key] = due.amount_pence + due.fee_pence
    return known[key]


def simulate_case(case_id: str, rng: random.Random, starts_on: date, ends_on: date) -> SimulatedCase:
    frequency = _pick(rng, FREQUENCY_MIX)
    assert isinstance(frequency, Frequency)
    payer_type = str(_pick(rng, PAYER_TYPES))
    weekly = max(700, min(30_000, int(rng.lognormvariate(8.3, 0.6))))
    fee = paying_parent_weekly_fee(weekly, rules_on(starts_on))
    case = SimulatedCase(case_id, frequency, str(_pick(rng, METHOD_MIX)), starts_on, payer_type, [])
    case.operations.append(Operation(starts_on, "schedule", weekly_pence=weekly, fee_pence=fee))
    rates: tuple[Rate, ...] = (Rate(starts_on, weekly, fee),)
    payer = _Payer(rng, payer_type)
    arrears_owed = 0
    amounts: dict[tuple[Rate, int], int] = {}
    index = 0
    while (p := period(frequency, starts_on, index)).due_date <= ends_on:
        if payer.step(p.due_date, p.days) == "new_family" and index > 0:
            weekly = max(700, int(weekly * rng.uniform(0.75, 0.9)))
            fee = paying_parent_weekly_fee(weekly, rules_on(p.start))
            rates += (Rate(p.start, weekly, fee),)
            case.operations.append(Operation(p.start, "schedule", weekly_pence=weekly, fee_pence=fee))
        due_pence = _amount_due(frequency, starts_on, rates[-1], index, amounts)
        case.operations.append(Operation(p.due_date, "charge", period_index=index, amount_pence=due_pence))
        amount, lateness = payer.payment(due_pence, index)
        if amount and payer.active is None and arrears_owed > 0 and rng.random() < 0.3:
            amount += min(arrears_owed, due_pence)     # catching up on arrears
        arrears_owed = max(arrears_owed + due_pence - amount, 0)
        paid_on = p.due_date + timedelta(days=int(lateness))
        if amount > 0 and paid_on <= ends_on:
            case.operations.append(Operation(paid_on, "payment", amount_pence=amount))
        index += 1
    case.causes = payer.causes
    case.operations.sort(key=lambda op: (op.on, ("schedule", "charge", "payment").index(op.kind)))
    return case


def simulate(cases: int, seed: int, ends_on: date, years: float = 4.0) -> list[SimulatedCase]:
    """`cases` histories, opened at random over the `years` before `ends_on`."""
    rng = random.Random(seed)
    span = int(years * 365)
    return [simulate_case(f"sim-{seed}-{i:06d}", rng, ends_on - timedelta(days=rng.randint(30, span)), ends_on)
            for i in range(cases)]


@dataclass(frozen=True)
class QuarterShares:
    cases: int
    paid_something: float
    paid_over_90: float
    paid_nothing: float


def quarter_shares(ledgers: list[CaseLedger], quarter_start: date, quarter_end: date) -> QuarterShares:
    """The published measure: of cases with something due in the quarter, who paid some / >90% / nothing."""
    some = over_90 = counted = 0
    for ledger in ledgers:
        due = ledger.due_between(quarter_start - timedelta(days=1), quarter_end)
        if due <= 0:
            continue
        paid = ledger.paid_between(quarter_start - timedelta(days=1), quarter_end)
        counted += 1
        some += paid > 0
        over_90 += paid > 0.9 * due
    if not counted:
        return QuarterShares(0, 0.0, 0.0, 0.0)
    return QuarterShares(counted, some / counted, over_90 / counted, 1 - some / counted)


def first_period_start(case: SimulatedCase) -> date:
    return period_start(case.frequency, case.starts_on, 0)


def first_quarter_shares(cases: list[SimulatedCase]) -> QuarterShares:
    """The same measure over each case's own first 3 months (the early dip)."""
    shares = [quarter_shares([case.ledger()], case.starts_on, case.starts_on + timedelta(days=90))
              for case in cases if case.operations[-1].on >= case.starts_on + timedelta(days=90)]
    counted = [s for s in shares if s.cases]
    if not counted:
        return QuarterShares(0, 0.0, 0.0, 0.0)
    some = sum(s.paid_something for s in counted) / len(counted)
    return QuarterShares(len(counted), some, sum(s.paid_over_90 for s in counted) / len(counted), 1 - some)
