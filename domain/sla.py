"""The 28-day clearance view of changes of circumstances (docs/rules.md section 9): pure, no I/O, no clock.

Ages are counted in case-calendar days (86,400 s in production, a few seconds on a demo or
benchmark calendar), so each item carries its own day length. A change is open until it is
cleared; it breaches when it is still open at its due time (received + 28 days) or cleared after it.

The production report is computed in PostgreSQL (activities.changes.load_sla_report) from the
rules here, passed to the query as data (:func:`sql_parameters`), and assembled by
:func:`report_from_counts`. :func:`sla_report` is the same view over items in memory: the
reference the SQL is proved equal to (tests/changes/test_sla_sql.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fractions import Fraction

SLA_DAYS = 28
WINDOW_DAYS = 28  # "the last 4 weeks" of clearances
# (label, first day, last day or None for open-ended). Day 28 itself is still within target.
AGE_BANDS: tuple[tuple[str, int, int | None], ...] = (
    ("0-7", 0, 7), ("8-14", 8, 14), ("15-21", 15, 21), ("22-28", 22, 28), ("28+", 29, None),
)
# A case-calendar day is never longer than a real one (demo and bench calendars are faster), so
# "cleared in the last 4 weeks of its own calendar" implies "cleared in the last 4 real weeks":
# the bound an index on cleared_at can use. The table enforces it (migration 0005).
MAX_SECONDS_PER_DAY = 86_400


def band_starts() -> list[int]:
    """First day of each age band, in order. The bands must tile 0.. without gaps or overlaps,
    which is what lets the query place an age by its band's first day alone (width_bucket)."""
    starts = [first for _, first, _ in AGE_BANDS]
    for (_, _, last), next_first in zip(AGE_BANDS, starts[1:]):
        if last is None or last + 1 != next_first:
            raise AssertionError("AGE_BANDS must be contiguous")
    if starts[0] != 0 or AGE_BANDS[-1][2] is not None:
        raise AssertionError("AGE_BANDS must start at day 0 and end open-ended")
    return starts


@dataclass(frozen=True)
class SlaItem:
    case_id: str
    change_no: int
    kind: str
    received_at: datetime
    seconds_per_day: float
    assigned_team: str = "changes"
    needs_caseworker: bool = False
    cleared_at: datetime | None = None

    @property
    def due_at(self) -> datetime:
        return self.received_at + timedelta(seconds=SLA_DAYS * self.seconds_per_day)

    @property
    def is_open(self) -> bool:
        return self.cleared_at is None

    def age_days(self, now: datetime) -> int:
        """Whole case-calendar days since it was received (at clearance, if cleared)."""
        end = self.cleared_at or now
        return max(0, int((end - self.received_at).total_seconds() // self.seconds_per_day))

    def on_time(self) -> bool:
        return self.cleared_at is not None and self.cleared_at <= self.due_at

    def breached(self, now: datetime) -> bool:
        return (self.cleared_at or now) > self.due_at


@dataclass(frozen=True)
class OldItem:
    case_id: str
    change_no: int
    kind: str
    age_days: int
    assigned_team: str
    needs_caseworker: bool
    due_at: datetime
    breached: bool


@dataclass(frozen=True)
class SlaReport:
    open_by_band: dict[str, int]
    open_total: int
    cleared_last_4_weeks: int
    cleared_on_time_last_4_weeks: int
    breaches_open: int           # still open past their due time
    breaches_last_4_weeks: int   # cleared late in the window
    oldest: list[OldItem] = field(default_factory=list)

    @property
    def on_time_share(self) -> Fraction | None:
        """Share of the last 4 weeks' clearances that were on time; None when nothing cleared."""
        if not self.cleared_last_4_weeks:
            return None
        return Fraction(self.cleared_on_time_last_4_weeks, self.cleared_last_4_weeks)


def age_band(age_days: int) -> str:
    for label, first, last in AGE_BANDS:
        if age_days >= first and (last is None or age_days <= last):
            return label
    raise AssertionError(age_days)


def in_window(item: SlaItem, now: datetime, window_days: int = WINDOW_DAYS) -> bool:
    return item.cleared_at is not None and item.cleared_at >= now - timedelta(seconds=window_days * item.seconds_per_day)


def sla_report(items: Iterable[SlaItem], now: datetime, oldest: int = 10) -> SlaReport:
    bands = {label: 0 for label, _, _ in AGE_BANDS}
    open_items: list[SlaItem] = []
    cleared = on_time = late = 0
    for item in items:
        if item.is_open:
            open_items.append(item)
            bands[age_band(item.age_days(now))] += 1
        elif in_window(item, now):
            cleared += 1
            if item.on_time():
                on_time += 1
            else:
                late += 1
    open_items.sort(key=lambda i: (-(now - i.received_at).total_seconds() / i.seconds_per_day, i.case_id, i.change_no))
    return SlaReport(
        open_by_band=bands,
        open_total=len(open_items),
        cleared_last_4_weeks=cleared,
        cleared_on_time_last_4_weeks=on_time,
        breaches_open=sum(1 for i in open_items if i.breached(now)),
        breaches_last_4_weeks=late,
        oldest=[OldItem(i.case_id, i.change_no, i.kind, i.age_days(now), i.assigned_team, i.needs_caseworker,
                        i.due_at, i.breached(now)) for i in open_items[:oldest]],
    )


def sql_parameters(now: datetime, oldest: int) -> dict[str, object]:
    """The rules of the view as query parameters (activities.changes): no literal is repeated in SQL."""
    return {"now": now, "sla_days": SLA_DAYS, "window_days": WINDOW_DAYS, "band_starts": band_starts(),
            "window_floor": now - timedelta(seconds=WINDOW_DAYS * MAX_SECONDS_PER_DAY), "oldest": oldest}


def report_from_counts(open_by_band_number: dict[int, int], breaches_open: int, cleared: int, on_time: int,
                       oldest: list[OldItem]) -> SlaReport:
    """The report from the query's counts; band numbers are 1-based positions in AGE_BANDS."""
    bands = {label: open_by_band_number.get(number, 0) for number, (label, _, _) in enumerate(AGE_BANDS, start=1)}
    return SlaReport(
        open_by_band=bands, open_total=sum(bands.values()), cleared_last_4_weeks=cleared,
        cleared_on_time_last_4_weeks=on_time, breaches_open=breaches_open,
        breaches_last_4_weeks=cleared - on_time, oldest=oldest,
    )
