"""Payment schedules: collection periods, instalments and regeneration after a liability change.

A liability is weekly (the calculation's unit). It is collected weekly, fortnightly, four-weekly
or monthly (docs/rules.md section 8). Monthly instalments split 52 weeks over 12 months without losing a
penny: instalment k of a year is floor((k+1)·52W/12) − floor(k·52W/12), so a year sums to 52W.

When a liability changes, the schedule is regenerated from the effective date: periods before it
keep their amounts, a period straddling it is apportioned by days (one rounding, half up), later
periods use the new rate. Periods already charged are not re-charged: the difference between the
old and the new amount of each is an adjustment (arrears, or a credit, from a backdated change).
Periods are identified by index from the schedule start, so regeneration can neither lose nor
double-count one.
"""

from __future__ import annotations

import calendar as _calendar
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from enum import Enum
from fractions import Fraction
from functools import lru_cache

from domain.money import round_half_up
from domain.payments.working_days import add_working_days


class Frequency(str, Enum):
    WEEKLY = "weekly"
    FORTNIGHTLY = "fortnightly"
    FOUR_WEEKLY = "four_weekly"
    MONTHLY = "monthly"


_WEEKS = {Frequency.WEEKLY: 1, Frequency.FORTNIGHTLY: 2, Frequency.FOUR_WEEKLY: 4}
PERIODS_PER_YEAR = {Frequency.WEEKLY: 52, Frequency.FORTNIGHTLY: 26, Frequency.FOUR_WEEKLY: 13,
                    Frequency.MONTHLY: 12}


@dataclass(frozen=True)
class Rate:
    """A weekly liability in force from `effective_from` (until the next rate)."""
    effective_from: date
    weekly_pence: int
    weekly_fee_pence: int = 0      # paying parent's collection fee (Collect & Pay), per week

    def __post_init__(self) -> None:
        for name in ("weekly_pence", "weekly_fee_pence"):
            value = getattr(self, name)
            if type(value) is not int or value < 0:
                raise ValueError(f"{name} must be a whole, non-negative number of pence")


@dataclass(frozen=True)
class Period:
    index: int
    start: date
    end: date          # exclusive
    due_date: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days


@dataclass(frozen=True)
class Instalment:
    period: Period
    amount_pence: int
    fee_pence: int


def _add_months(start: date, months: int) -> date:
    month_index = start.month - 1 + months
    year, month = start.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(start.day, _calendar.monthrange(year, month)[1]))


def period_start(frequency: Frequency, first_start: date, index: int) -> date:
    if frequency is Frequency.MONTHLY:
        return _add_months(first_start, index)
    return first_start + timedelta(weeks=_WEEKS[frequency] * index)


def period(frequency: Frequency, first_start: date, index: int, due_offset_days: int = 0) -> Period:
    """Period `index` (0-based). Its payment falls due `due_offset_days` into it, and always inside
    it, so the first payment is due within the first collection period."""
    if index < 0:
        raise ValueError("period index must not be negative")
    start = period_start(frequency, first_start, index)
    end = period_start(frequency, first_start, index + 1)
    due = start + timedelta(days=min(max(due_offset_days, 0), (end - start).days - 1))
    return Period(index, start, end, due)


def period_containing(frequency: Frequency, first_start: date, day: date) -> int:
    """Index of the period that contains `day` (day must be on or after the schedule start)."""
    if day < first_start:
        raise ValueError("day is before the schedule starts")
    if frequency is Frequency.MONTHLY:
        index = (day.year - first_start.year) * 12 + day.month - first_start.month
        index = max(index, 0)
        while period_start(frequency, first_start, index) > day:
            index -= 1
        while period_start(frequency, first_start, index + 1) <= day:
            index += 1
        return index
    return (day - first_start).days // (7 * _WEEKS[frequency])


def _whole_period_amount(frequency: Frequency, weekly: int, index: int) -> int:
    if frequency is Frequency.MONTHLY:
        k = index % 12
        return ((k + 1) * 52 * weekly) // 12 - (k * 52 * weekly) // 12
    return weekly * _WEEKS[frequency]


def _rates_over(rates: tuple[Rate, ...], start: date, end: date) -> list[tuple[Rate, int]]:
    """(rate, days) for each rate in force during [start, end)."""
    ordered = sorted(rates, key=lambda r: r.effective_from)
    pieces = []
    for i, rate in enumerate(ordered):
        until = ordered[i + 1].effective_from if i + 1 < len(ordered) else date.max
        lo, hi = max(start, rate.effective_from), min(end, until)
        if lo < hi:
            pieces.append((rate, (hi - lo).days))
    return pieces


def instalment(frequency: Frequency, first_start: date, rates: tuple[Rate, ...], index: int,
               due_offset_days: int = 0, first_collection: date | None = None) -> Instalment:
    """The amount due for one period under a (possibly changing) liability; with a
    `first_collection` date, with the initial arrears spread (see `with_initial_arrears`)."""
    if first_collection is not None:
        own = instalment(frequency, first_start, rates, index, due_offset_days)
        return _with_spread(own, index, _spread_of_plain(frequency, first_start, tuple(rates), due_offset_days,
                                                         first_collection))
    p = period(frequency, first_start, index, due_offset_days)
    amount, fee = Fraction(0), Fraction(0)
    for rate, days in _rates_over(rates, p.start, p.end):
        share = Fraction(days, p.days)
        amount += share * _whole_period_amount(frequency, rate.weekly_pence, index)
        fee += share * _whole_period_amount(frequency, rate.weekly_fee_pence, index)
    return Instalment(p, round_half_up(amount), round_half_up(fee))


def next_instalments(frequency: Frequency, first_start: date, rates: tuple[Rate, ...], on_or_after: date,
                     count: int = 2, due_offset_days: int = 0, first_collection: date | None = None
                     ) -> list[Instalment]:
    """The next `count` instalments whose payment falls due on or after `on_or_after` (and on or
    after the first collection): what a payment schedule letter states (the same arithmetic
    payments charges by)."""
    if first_collection is not None:
        on_or_after = max(on_or_after, first_collection)
    index = 0 if on_or_after <= first_start else period_containing(frequency, first_start, on_or_after)
    if period(frequency, first_start, index, due_offset_days).due_date < on_or_after:
        index += 1
    return [instalment(frequency, first_start, rates, i, due_offset_days, first_collection)
            for i in range(index, index + count)]


def schedule(frequency: Frequency, first_start: date, rates: tuple[Rate, ...], count: int,
             due_offset_days: int = 0) -> list[Instalment]:
    return [instalment(frequency, first_start, rates, i, due_offset_days) for i in range(count)]


# --- the first Collect & Pay collection and initial arrears -------------------------------------
#
# Liability starts at the initial effective date, but the paying parent is first asked to pay no
# earlier than 10 working days after the payment schedule letter (the Direct Debit notice). What
# fell due before that is initial arrears: it is not missed, it is spread over the instalments of
# the first 52-week reference period that fall due from the first collection on (SI 2012/2785
# reg 4). Periods before the first collection are not charged on their own.

FIRST_COLLECTION_WORKING_DAYS = 10
REFERENCE_PERIOD = timedelta(weeks=52)


def first_collection_date(schedule_letter_on: date) -> date:
    """The earliest day the first Collect & Pay collection may fall due."""
    return add_working_days(schedule_letter_on, FIRST_COLLECTION_WORKING_DAYS)


def initial_arrears_span(period_of: Callable[[int], Period], first_start: date, first_collection: date
                         ) -> tuple[int, int]:
    """(first, end): periods before `first` fall due before the first collection; periods
    `first` .. `end` - 1 are the instalments of the first 52-week period that carry the initial
    arrears (at least one, even when the first collection is later than that year)."""
    first = 0
    while period_of(first).due_date < first_collection:
        first += 1
    end = first + 1
    while period_of(end).start < first_start + REFERENCE_PERIOD:
        end += 1
    return first, end


@dataclass(frozen=True)
class _Spread:
    """How a schedule's initial arrears are spread: periods before `first` are not charged on their
    own; each of `first` .. `end` - 1 carries an equal share (`amount`, `fee`), the first of them
    also the remainders."""

    first: int
    end: int
    amount: int
    amount_left: int
    fee: int
    fee_left: int


def _spread(base: Callable[[int], Instalment], period_of: Callable[[int], Period], first_start: date,
            first_collection: date) -> _Spread:
    first, end = initial_arrears_span(period_of, first_start, first_collection)
    deferred = [base(i) for i in range(first)]
    count = end - first
    amount, amount_left = divmod(sum(d.amount_pence for d in deferred), count)
    fee, fee_left = divmod(sum(d.fee_pence for d in deferred), count)
    return _Spread(first, end, amount, amount_left, fee, fee_left)


def _with_spread(own: Instalment, index: int, spread: _Spread) -> Instalment:
    if index < spread.first:
        return Instalment(own.period, 0, 0)
    if index >= spread.end:
        return own
    amount, fee = spread.amount, spread.fee
    if index == spread.first:
        amount, fee = amount + spread.amount_left, fee + spread.fee_left
    return Instalment(own.period, own.amount_pence + amount, own.fee_pence + fee)


def with_initial_arrears(base: Callable[[int], Instalment], first_start: date, first_collection: date,
                         index: int) -> Instalment:
    """Instalment `index` with the initial arrears spread: nil for a period falling due before the
    first collection; its own amount plus an equal share of the initial arrears (the remainder
    with the first) for an instalment carrying them; its own amount otherwise."""
    spread = _spread(base, lambda i: base(i).period, first_start, first_collection)
    return _with_spread(base(index), index, spread)


# The spread is the same for every instalment of one schedule and liability history, and working it
# out takes every instalment of the first year: kept per schedule, so charging, checking and
# adjusting a year of weekly periods does not work it out again for each (pure, so safe to share).
@lru_cache(maxsize=4096)
def _spread_of_plain(frequency: Frequency, first_start: date, rates: tuple[Rate, ...], due_offset_days: int,
                     first_collection: date) -> _Spread:
    return _spread(lambda i: instalment(frequency, first_start, rates, i, due_offset_days),
                   lambda i: period(frequency, first_start, i, due_offset_days), first_start, first_collection)


@lru_cache(maxsize=4096)
def _spread_of_segments(segments: tuple[Segment, ...], rates: tuple[Rate, ...], first_collection: date) -> _Spread:
    return _spread(lambda i: instalment_at(segments, rates, i), lambda i: period_at(segments, i),
                   segments[0].first_start, first_collection)


def rates_after_change(rates: tuple[Rate, ...], change: Rate) -> tuple[Rate, ...]:
    """The liability history with `change` in force from its effective date (later rates dropped:
    a change replaces everything from its date)."""
    kept = tuple(r for r in rates if r.effective_from < change.effective_from)
    return tuple(sorted(kept + (change,), key=lambda r: r.effective_from))


@dataclass(frozen=True)
class Adjustment:
    period: Period
    amount_delta_pence: int
    fee_delta_pence: int


def adjustments(frequency: Frequency, first_start: date, old_rates: tuple[Rate, ...],
                new_rates: tuple[Rate, ...], charged_indices: list[int],
                due_offset_days: int = 0, first_collection: date | None = None) -> list[Adjustment]:
    """For each period already charged: new amount − old amount (non-zero ones only)."""
    found = []
    for index in sorted(set(charged_indices)):
        old = instalment(frequency, first_start, old_rates, index, due_offset_days, first_collection)
        new = instalment(frequency, first_start, new_rates, index, due_offset_days, first_collection)
        if (old.amount_pence, old.fee_pence) != (new.amount_pence, new.fee_pence):
            found.append(Adjustment(new.period, new.amount_pence - old.amount_pence,
                                    new.fee_pence - old.fee_pence))
    return found


# --- frequency changes: a schedule made of segments --------------------------------------------
#
# A case may change collection frequency (say weekly to monthly). The new frequency starts at a
# period boundary and continues the period numbering: each segment says which global period index
# its first period has (`index_base`), so indices stay unique and increasing across frequencies and
# business keys such as `period-charge/{case}/{index}` never collide. A segment's periods are those
# of `period(frequency, first_start, index - index_base)`; monthly amounts cycle from the segment's
# own start, so every 12 months of a monthly segment still sum to exactly 52 weeks.

@dataclass(frozen=True)
class Segment:
    frequency: Frequency
    first_start: date          # start of period `index_base`
    index_base: int
    due_offset_days: int = 0


def segments_after(segments: tuple[Segment, ...], new: Segment) -> tuple[Segment, ...]:
    """The segment history with `new` in force from its index (segments from there on replaced)."""
    kept = tuple(s for s in segments if s.index_base < new.index_base)
    return kept + (new,)


def segment_for_index(segments: tuple[Segment, ...], index: int) -> Segment:
    if index < 0 or not segments or index < segments[0].index_base:
        raise ValueError("period index is before the schedule starts")
    return [s for s in segments if s.index_base <= index][-1]


def segment_for_day(segments: tuple[Segment, ...], day: date) -> Segment:
    if not segments or day < segments[0].first_start:
        raise ValueError("day is before the schedule starts")
    return [s for s in segments if s.first_start <= day][-1]


def period_at(segments: tuple[Segment, ...], index: int) -> Period:
    segment = segment_for_index(segments, index)
    local = period(segment.frequency, segment.first_start, index - segment.index_base, segment.due_offset_days)
    return Period(index, local.start, local.end, local.due_date)


def period_containing_at(segments: tuple[Segment, ...], day: date) -> int:
    segment = segment_for_day(segments, day)
    return segment.index_base + period_containing(segment.frequency, segment.first_start, day)


def instalment_at(segments: tuple[Segment, ...], rates: tuple[Rate, ...], index: int,
                  first_collection: date | None = None) -> Instalment:
    if first_collection is not None:
        return _with_spread(instalment_at(segments, rates, index), index,
                            _spread_of_segments(tuple(segments), tuple(rates), first_collection))
    segment = segment_for_index(segments, index)
    local = instalment(segment.frequency, segment.first_start, rates, index - segment.index_base,
                       segment.due_offset_days)
    return Instalment(Period(index, local.period.start, local.period.end, local.period.due_date),
                      local.amount_pence, local.fee_pence)


def adjustments_at(old_segments: tuple[Segment, ...], old_rates: tuple[Rate, ...],
                   new_segments: tuple[Segment, ...], new_rates: tuple[Rate, ...],
                   charged_indices: list[int], first_collection: date | None = None) -> list[Adjustment]:
    """`adjustments` for a schedule of segments: new − old for each period already charged."""
    found = []
    for index in sorted(set(charged_indices)):
        old = instalment_at(old_segments, old_rates, index, first_collection)
        new = instalment_at(new_segments, new_rates, index, first_collection)
        if new.period != old.period:
            raise ValueError(f"period {index} was charged and cannot change its dates")
        if (old.amount_pence, old.fee_pence) != (new.amount_pence, new.fee_pence):
            found.append(Adjustment(new.period, new.amount_pence - old.amount_pence, new.fee_pence - old.fee_pence))
    return found
