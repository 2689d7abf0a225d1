"""Frequency changes in the pure schedule domain: a schedule made of segments (one per frequency)
never loses or double-counts a day of liability, and never reuses a period index.

Rounding rule the property checks, for a span of whole periods at a constant weekly rate W:
weekly, fortnightly and four-weekly periods charge exactly W per 7 days; a monthly segment's
first m months charge exactly floor(m × 52W / 12) (each month is the difference of two floors,
so the sum telescopes; 12 months are exactly 52W). A monthly segment's cycle starts at its own
first day, so switching never restarts or cuts a weekly-based period."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.payments.schedule import (
    Frequency,
    Rate,
    Segment,
    adjustments_at,
    instalment_at,
    period_at,
    period_containing_at,
    segments_after,
)

_frequencies = st.sampled_from(list(Frequency))
_WEEKS = {Frequency.WEEKLY: 1, Frequency.FORTNIGHTLY: 2, Frequency.FOUR_WEEKLY: 4}


def _build(start: date, plan: list[tuple[Frequency, int]], offset: int = 0) -> tuple[tuple[Segment, ...], int]:
    """Segments switching frequency after each (frequency, periods) run; returns (segments, periods)."""
    segments: tuple[Segment, ...] = ()
    base, first = 0, start
    for frequency, length in plan:
        segments = segments_after(segments, Segment(frequency, first, base, offset))
        base += length
        first = period_at(segments, base).start
    return segments, base


@settings(max_examples=300, deadline=None)
@given(start=st.dates(date(2025, 1, 1), date(2030, 12, 31)),
       plan=st.lists(st.tuples(_frequencies, st.integers(1, 30)), min_size=1, max_size=5),
       weekly=st.integers(0, 100_000), offset=st.integers(0, 40))
def test_switching_frequency_never_loses_or_double_counts_a_day(start, plan, weekly, offset) -> None:
    segments, count = _build(start, plan, offset)
    rates = (Rate(start, weekly, weekly // 5),)
    periods = [period_at(segments, i) for i in range(count)]
    assert [p.index for p in periods] == list(range(count))                      # no index reused or skipped
    assert periods[0].start == start
    for before, after in zip(periods, periods[1:]):
        assert before.end == after.start                                           # no day lost or counted twice
    for p in periods:
        assert p.start <= p.due_date < p.end
        assert period_containing_at(segments, p.start) == p.index
        assert period_containing_at(segments, p.end - timedelta(days=1)) == p.index
    total = sum(instalment_at(segments, rates, i).amount_pence for i in range(count))
    expected = 0
    for frequency, length in plan:
        if frequency is Frequency.MONTHLY:
            expected += length * 52 * weekly // 12
        else:
            expected += weekly * _WEEKS[frequency] * length
    assert total == expected
    weekly_based_days = sum(p.days for p in periods if segment_is_weekly(segments, p.index))
    assert weekly_based_days % 7 == 0


def segment_is_weekly(segments: tuple[Segment, ...], index: int) -> bool:
    return [s for s in segments if s.index_base <= index][-1].frequency is not Frequency.MONTHLY


def test_a_switch_replaces_only_the_periods_from_its_index() -> None:
    weekly = (Segment(Frequency.WEEKLY, date(2026, 1, 5), 0),)
    monthly = segments_after(weekly, Segment(Frequency.MONTHLY, date(2026, 2, 2), 4))
    assert [(p.start, p.end) for p in (period_at(monthly, i) for i in (3, 4, 5))] == [
        (date(2026, 1, 26), date(2026, 2, 2)), (date(2026, 2, 2), date(2026, 3, 2)), (date(2026, 3, 2), date(2026, 4, 2))]
    again = segments_after(monthly, Segment(Frequency.FORTNIGHTLY, date(2026, 2, 2), 4))   # replaces the monthly one
    assert [s.frequency for s in again] == [Frequency.WEEKLY, Frequency.FORTNIGHTLY]
    with pytest.raises(ValueError):
        period_at(monthly, -1)
    with pytest.raises(ValueError):
        period_containing_at(monthly, date(2026, 1, 4))


def test_adjustments_refuse_to_move_a_charged_period() -> None:
    weekly = (Segment(Frequency.WEEKLY, date(2026, 1, 5), 0),)
    monthly = segments_after(weekly, Segment(Frequency.MONTHLY, date(2026, 1, 19), 2))
    rates = (Rate(date(2026, 1, 5), 5000),)
    assert adjustments_at(weekly, rates, monthly, rates, [0, 1]) == []
    with pytest.raises(ValueError, match="cannot change its dates"):
        adjustments_at(weekly, rates, monthly, rates, [2])
