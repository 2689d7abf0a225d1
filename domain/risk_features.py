"""A Collect & Pay case's payment-risk features as of a date, from its ledger.

One module computes the features for training (simulated or past histories) and for serving
(the payments service's statement and balance), so the two cannot drift apart. Only ledger
lines dated on or before the as-of date are read: a feature never sees the future.

The ledger's shape is the payments statement's: dated lines of what fell due and what was paid
(`cms.payments.v1.Statement`). What a line is comes from its description, as the statement
states it to either parent.

Compliance (who may be scored) and breakdown (what is predicted) are defined here too, on the
same lines:
- compliant on a day: at least 90% of what fell due over the last 3 months was paid (a week's
  grace after the last due date, so a payment in flight is not a breakdown; payments meet the
  oldest debt first, as the ledger allocates them);
- eligible: a Collect & Pay case compliant on the as-of date, with 3 months of charges behind it;
- breakdown (the positive label): an eligible case that is not compliant on any weekly check in
  the next 8 weeks.
"""

from __future__ import annotations

import bisect
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta

from domain.payments.statement import _DESCRIPTIONS as STATEMENT_DESCRIPTIONS

COMPLIANT_SHARE = 0.9
COMPLIANCE_WINDOW = timedelta(days=91)          # "the last 3 months"
PAYMENT_GRACE = timedelta(days=7)               # a payment due a week ago may still be in flight
LABEL_WINDOW = timedelta(weeks=8)               # breakdown within the next 8 weeks
LABEL_CHECK_EVERY = timedelta(weeks=1)
RECENT = timedelta(days=182)                    # "recent" payment behaviour: the last 6 months
ENFORCEMENT_LOOKBACK = timedelta(days=365)
STREAK_CAP = 24                                 # on-time payments counted back at most this far

_KIND_OF_DESCRIPTION = {text: kind for kind, text in STATEMENT_DESCRIPTIONS.items()}

# (name, monotone direction, what it means to a caseworker when it raises the risk).
# +1: risk may only rise with the feature; -1: only fall; 0: unconstrained. Constraints keep the
# reasons given to a caseworker intuitive: more misses never make a case look safer.
FEATURES: tuple[tuple[str, int, str], ...] = (
    ("paid_share_3m", -1, "paid less of what was due over the last 3 months"),
    ("paid_share_1m", -1, "paid less of what was due over the last month"),
    ("missed_6m", 1, "missed payments in the last 6 months"),
    ("part_paid_6m", 1, "part payments in the last 6 months"),
    ("late_6m", 1, "late payments in the last 6 months"),
    ("shortfall_recency_3", 1, "a missed or part payment in the last 3 periods"),
    ("mean_days_late_6m", 1, "payments arriving later than the due date"),
    ("days_late_latest", 1, "the latest payment was late"),
    ("lateness_trend", 1, "payments arriving later than they used to"),
    ("on_time_streak", -1, "only a short run of on-time payments"),
    ("days_since_last_payment", 1, "a long time since the last payment"),
    ("arrears_months", 1, "arrears owed"),
    ("payments_per_period_3m", 0, "paying in several smaller amounts"),
    ("latest_payment_share", 0, "the latest payment was smaller than the amount due"),
    ("liability_change_6m", 0, "a recent change in the amount due"),
    ("adjustments_6m", 0, "a recent change of circumstances recalculated the liability"),
    ("enforcement_12m", 1, "enforcement action in the last year"),
    ("case_age_days", 0, "a new case"),
    ("period_days", 0, "the payment frequency"),
    ("weekly_liability_pounds", 0, "the weekly amount due"),
)
FEATURE_NAMES = tuple(name for name, _, _ in FEATURES)
MONOTONE = tuple(direction for _, direction, _ in FEATURES)
REASON_TEXT = {name: text for name, _, text in FEATURES}


@dataclass(frozen=True)
class LedgerLine:
    on: date
    kind: str            # period_charge | schedule_adjustment | enforcement_charge | incoming_payment | reversal | ...
    due_pence: int = 0
    paid_pence: int = 0


def kind_of(description: str) -> str:
    """The ledger kind behind a statement line's description."""
    return _KIND_OF_DESCRIPTION.get(description, description.replace(" ", "_").lower())


@dataclass
class CaseLedger:
    """A case's ledger lines, sorted, with running totals for fast as-of sums."""
    case_id: str
    service_type: str
    lines: list[LedgerLine]
    opening_balance_pence: int = 0
    _days: list[date] = field(init=False, repr=False)
    _due_before: list[int] = field(init=False, repr=False)   # cumulative due of lines[:i]
    _paid_before: list[int] = field(init=False, repr=False)
    _charge_lines: list[int] = field(init=False, repr=False)    # indices of period charges
    _pay_days: list[date] = field(init=False, repr=False)       # dates of money received or returned
    _paid_so_far: list[int] = field(init=False, repr=False)     # money received by then (a return does not un-clear)

    def __post_init__(self) -> None:
        # Same-day order: what fell due before what was paid (the statement orders by posting).
        self.lines = sorted(self.lines, key=lambda line: (line.on, line.paid_pence != 0))
        self._days = [line.on for line in self.lines]
        self._due_before, self._paid_before = [0], [0]
        self._charge_lines, self._pay_days, self._paid_so_far = [], [], []
        for index, line in enumerate(self.lines):
            self._due_before.append(self._due_before[-1] + line.due_pence)
            self._paid_before.append(self._paid_before[-1] + line.paid_pence)
            if line.kind == "period_charge" and line.due_pence > 0:
                self._charge_lines.append(index)
            if line.paid_pence:
                self._pay_days.append(line.on)
                self._paid_so_far.append(max(self._paid_before[-1], self._paid_so_far[-1] if self._paid_so_far else 0))

    @classmethod
    def from_statement(cls, case_id: str, service_type: str, opening_balance_pence: int,
                       lines: Iterable[tuple[str, str, int, int]]) -> CaseLedger:
        """From statement lines as (ISO date, description, due pence, paid pence)."""
        return cls(case_id, service_type, [LedgerLine(date.fromisoformat(on), kind_of(text), due, paid)
                                           for on, text, due, paid in lines], opening_balance_pence)

    def _end(self, day: date) -> int:
        """Number of lines dated on or before `day`."""
        return bisect.bisect_right(self._days, day)

    def due_between(self, after: date, upto: date) -> int:
        return self._due_before[self._end(upto)] - self._due_before[self._end(after)]

    def paid_between(self, after: date, upto: date) -> int:
        return self._paid_before[self._end(upto)] - self._paid_before[self._end(after)]

    def balance_on(self, day: date) -> int:
        end = self._end(day)
        return self.opening_balance_pence + self._due_before[end] - self._paid_before[end]

    def charges_upto(self, day: date) -> list[LedgerLine]:
        return [line for line in self.lines[:self._end(day)] if line.kind == "period_charge" and line.due_pence > 0]

    def first_charge(self) -> date | None:
        return next((line.on for line in self.lines if line.kind == "period_charge"), None)


def paid_share(ledger: CaseLedger, day: date, window: timedelta = COMPLIANCE_WINDOW) -> float | None:
    """Share of what fell due in the window (ending a week's grace ago) met by `day`; None if nothing fell due.

    Money meets the oldest debt first, as the ledger allocates it: a payment counts towards the
    window only once what fell due before it has been paid. So a payment made late for a charge
    due just before the window, or old arrears, never make a shortfall inside it look paid."""
    due_until = day - PAYMENT_GRACE
    window_start = due_until - window
    due = ledger.due_between(window_start, due_until)
    if due <= 0:
        return None
    owed_before_window = ledger.opening_balance_pence + ledger.due_between(date.min, window_start)
    met = ledger.paid_between(date.min, day) - owed_before_window
    return min(max(met, 0), due) / due


def is_compliant(ledger: CaseLedger, day: date) -> bool:
    share = paid_share(ledger, day)
    return share is not None and share >= COMPLIANT_SHARE


def is_eligible(ledger: CaseLedger, day: date) -> bool:
    """Collect & Pay, 3 months of charges behind it, and compliant today."""
    first = ledger.first_charge()
    return (ledger.service_type == "collect_and_pay" and first is not None
            and first <= day - COMPLIANCE_WINDOW and is_compliant(ledger, day))


def breaks_down(ledger: CaseLedger, day: date) -> bool:
    """The label: falls below 90% paid on some weekly check in the next 8 weeks."""
    check = day + LABEL_CHECK_EVERY
    while check <= day + LABEL_WINDOW:
        if not is_compliant(ledger, check):
            return True
        check += LABEL_CHECK_EVERY
    return False


@dataclass(frozen=True)
class _Settlement:
    """How one period's charge was met, first in first out."""
    due_on: date
    amount_pence: int
    cleared_on: date | None     # None: not fully paid by the as-of date
    paid_by_grace_pence: int    # paid towards it within the week's grace


def _settlements(ledger: CaseLedger, day: date) -> list[_Settlement]:
    """The recent charges whose grace has passed (the last 6 months, and at least the last
    STREAK_CAP), each met by payments in date order (oldest debt first)."""
    end = ledger._end(day)
    payments_known = bisect.bisect_right(ledger._pay_days, day)
    charges = [i for i in ledger._charge_lines[:bisect.bisect_left(ledger._charge_lines, end)]
               if ledger.lines[i].on + PAYMENT_GRACE <= day]
    recent_from = next((n for n, i in enumerate(charges) if ledger.lines[i].on > day - RECENT), len(charges))
    settled = []
    for index in charges[min(recent_from, max(len(charges) - STREAK_CAP, 0)):]:
        line = ledger.lines[index]
        owed_after = ledger.opening_balance_pence + ledger._due_before[index + 1]
        owed_before = owed_after - line.due_pence
        clearing = bisect.bisect_left(ledger._paid_so_far, owed_after, 0, payments_known)
        cleared_on = ledger._pay_days[clearing] if clearing < payments_known else None
        in_grace = bisect.bisect_right(ledger._pay_days, line.on + PAYMENT_GRACE, 0, payments_known)
        by_grace = ledger._paid_so_far[in_grace - 1] if in_grace else 0
        settled.append(_Settlement(line.on, line.due_pence, cleared_on,
                                   min(max(by_grace - owed_before, 0), line.due_pence)))
    return settled


def _days_late(item: _Settlement, day: date) -> int:
    cleared = item.cleared_on or day
    return max((cleared - item.due_on).days, 0)


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


def features_as_of(ledger: CaseLedger, day: date) -> dict[str, float]:
    """The model's inputs for one case on one day. Ratios here are model inputs, not money."""
    charges = ledger.charges_upto(day)
    if not charges:
        raise ValueError(f"case {ledger.case_id} has nothing charged on or before {day}")
    settled = _settlements(ledger, day)
    recent = [s for s in settled if s.due_on > day - RECENT]
    on_time = [s.cleared_on is not None and s.cleared_on <= s.due_on + PAYMENT_GRACE for s in settled]
    missed = sum(1 for s, ok in zip(settled, on_time) if not ok and s.paid_by_grace_pence == 0 and s.due_on > day - RECENT)
    part = sum(1 for s, ok in zip(settled, on_time) if not ok and s.paid_by_grace_pence > 0 and s.due_on > day - RECENT)
    late = sum(1 for s in recent if s.cleared_on is not None and s.cleared_on > s.due_on + PAYMENT_GRACE)
    lateness = [_days_late(s, day) for s in recent]
    # The rule caseworkers sort by: a period not paid in full within its grace, most recent first (3 = latest).
    shortfall_recency = next((3 - back for back, ok in enumerate(reversed(on_time[-3:])) if not ok), 0)
    streak = 0
    for ok in reversed(on_time):
        if not ok:
            break
        streak += 1
    spacing = [(b.on - a.on).days for a, b in zip(charges, charges[1:])]
    period_days = statistics.median(spacing[-6:]) if spacing else 30.0
    latest = charges[-1]
    weekly_pence = latest.due_pence * 7 / period_days
    earlier = [c for c in charges if c.on <= day - RECENT]
    liability_change = (latest.due_pence / earlier[-1].due_pence - 1.0) if earlier else 0.0
    payments = [line for line in ledger.lines[:ledger._end(day)] if line.paid_pence > 0]
    payments_3m = sum(1 for p in payments if p.on > day - COMPLIANCE_WINDOW)
    charges_3m = sum(1 for c in charges if c.on > day - COMPLIANCE_WINDOW)
    first = charges[0].on
    half = len(lateness) // 2
    return {
        "paid_share_3m": min(_or(paid_share(ledger, day), 1.0), 2.0),
        "paid_share_1m": min(_or(paid_share(ledger, day, timedelta(days=35)), 1.0), 2.0),
        "missed_6m": float(missed),
        "part_paid_6m": float(part),
        "late_6m": float(late),
        "shortfall_recency_3": float(shortfall_recency),
        "mean_days_late_6m": statistics.fmean(lateness) if lateness else 0.0,
        "days_late_latest": float(lateness[-1]) if lateness else 0.0,
        "lateness_trend": (statistics.fmean(lateness[half:]) - statistics.fmean(lateness[:half])) if half else 0.0,
        "on_time_streak": float(streak),
        "days_since_last_payment": float((day - payments[-1].on).days if payments else (day - first).days),
        "arrears_months": max(ledger.balance_on(day), 0) / (weekly_pence * 52 / 12) if weekly_pence else 0.0,
        "payments_per_period_3m": payments_3m / charges_3m if charges_3m else 0.0,
        "latest_payment_share": payments[-1].paid_pence / latest.due_pence if payments else 0.0,
        "liability_change_6m": liability_change,
        "adjustments_6m": float(sum(1 for line in ledger.lines[:ledger._end(day)]
                                    if line.kind == "schedule_adjustment" and line.on > day - RECENT)),
        "enforcement_12m": float(sum(1 for line in ledger.lines[:ledger._end(day)]
                                     if line.kind == "enforcement_charge" and line.on > day - ENFORCEMENT_LOOKBACK)),
        "case_age_days": float((day - first).days),
        "period_days": float(period_days),
        "weekly_liability_pounds": weekly_pence / 100,
    }


def vector(features: dict[str, float]) -> list[float]:
    return [features[name] for name in FEATURE_NAMES]
