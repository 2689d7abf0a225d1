"""Payment schedules: versions appended under an idempotency key, and what a liability change
does to periods already charged.

Period indices are global across frequency changes: a schedule is a list of segments (one per
frequency, domain.payments.schedule.Segment) and every index<->date mapping goes through them.

Runs on the caller's connection, inside the caller's transaction.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from domain.payments.allocation import FEE, MAINTENANCE
from domain.payments.schedule import (
    Adjustment,
    Frequency,
    Instalment,
    Rate,
    Segment,
    adjustments_at,
    instalment_at,
    period_at,
    period_containing_at,
    rates_after_change,
    segments_after,
)

from .allocations import apply_credit, release_over_allocations
from .debts import charge_legs, charged_periods, insert_charge
from .postings import IdempotencyConflict, Leg, NotFound, Precondition, add_legs, claim, fingerprint, lock_case


@dataclass
class ScheduleRow:
    schedule_id: int
    case_id: str
    version: int
    service_type: str
    frequency: Frequency
    method: str
    first_start: date            # start of the current frequency's first period (index_base)
    due_offset_days: int
    rates: tuple[Rate, ...]
    rule_set_id: str
    decision_ref: str | None
    index_base: int = 0
    segments: tuple[Segment, ...] = ()   # every frequency the schedule has had, oldest first
    # Collect & Pay: the first collection's due date; what fell due before it is initial arrears,
    # spread over the first 52 weeks' instalments (None: each period falls due on its own).
    first_collection: date | None = None

    def instalment(self, index: int) -> Instalment:
        return instalment_at(self.segments, self.rates, index, self.first_collection)

    def first_collected_index(self) -> int:
        """The first period charged: the first falling due on or after the first collection."""
        index = 0
        while self.first_collection is not None and self.instalment(index).period.due_date < self.first_collection:
            index += 1
        return index

    def period_containing(self, day: date) -> int:
        return period_containing_at(self.segments, day)

    @property
    def starts_on(self) -> date:
        return self.segments[0].first_start


@dataclass
class ScheduleRequest:
    idempotency_key: str
    case_id: str
    service_type: str
    frequency: Frequency
    method: str
    effective_date: date
    weekly_pence: int
    weekly_fee_pence: int
    rule_set_id: str
    decision_ref: str | None
    due_offset_days: int = 0
    # Collect & Pay: the first collection (see ScheduleRow); kept from the first version on.
    first_collection: date | None = None


def _rates_json(rates: tuple[Rate, ...]) -> list[dict[str, Any]]:
    return [{"effective_from": r.effective_from.isoformat(), "weekly_pence": r.weekly_pence,
             "weekly_fee_pence": r.weekly_fee_pence} for r in rates]


def _rates_from(raw: list[dict[str, Any]]) -> tuple[Rate, ...]:
    return tuple(Rate(date.fromisoformat(r["effective_from"]), r["weekly_pence"], r["weekly_fee_pence"])
                 for r in raw)


_SCHEDULE_COLUMNS = ("schedule_id, case_id, version, service_type, frequency, method, first_start, "
                     "due_offset_days, rates, rule_set_id, decision_ref, index_base, first_collection")


def _segment_of(row: tuple[Any, ...]) -> Segment:
    return Segment(Frequency(row[4]), row[6], row[11], row[7])


def _schedule_from(row: tuple[Any, ...], history: list[tuple[Any, ...]] | None = None) -> ScheduleRow:
    """A schedule version; `history` (all versions up to it, oldest first) gives its segments."""
    segments: tuple[Segment, ...] = ()
    for earlier in (history or [row]):
        segments = segments_after(segments, _segment_of(earlier))
    return ScheduleRow(row[0], row[1], row[2], row[3], Frequency(row[4]), row[5], row[6], row[7],
                       _rates_from(row[8]), row[9], row[10], row[11], segments, row[12])


async def current_schedule(conn: AsyncConnection, case_id: str) -> ScheduleRow | None:
    cur = await conn.execute(f"SELECT {_SCHEDULE_COLUMNS} FROM schedules WHERE case_id = %s ORDER BY version",
                             (case_id,))
    rows = await cur.fetchall()
    return _schedule_from(rows[-1], rows) if rows else None


async def _schedule_version(conn: AsyncConnection, case_id: str, version: int) -> ScheduleRow:
    cur = await conn.execute(f"SELECT {_SCHEDULE_COLUMNS} FROM schedules WHERE case_id = %s AND version <= %s"
                             " ORDER BY version", (case_id, version))
    rows = await cur.fetchall()
    return _schedule_from(rows[-1], rows)


async def create_schedule(conn: AsyncConnection, req: ScheduleRequest) -> tuple[ScheduleRow, bool, list[Adjustment]]:
    """Appends a schedule version. When one exists, the liability changes from the effective date
    and each period already charged gets an adjustment (new − old) in one ledger transaction; held
    credit then settles what an increase added, and money allocated beyond what a decrease left
    due becomes credit again. A different frequency starts a new segment of periods at a period
    boundary (see _new_frequency_segment). Returns (schedule, duplicate, adjustments posted)."""
    request = {**asdict(req), "frequency": req.frequency.value}
    if req.first_collection is None:   # fingerprints of requests made before the field stay the same
        del request["first_collection"]
    fp = fingerprint(request)
    await lock_case(conn, req.case_id)
    cur = await conn.execute("SELECT case_id, version, fingerprint FROM schedules WHERE idempotency_key = %s",
                             (req.idempotency_key,))
    row = await cur.fetchone()
    if row is not None:
        if row[2] != fp:
            raise IdempotencyConflict(f"idempotency key {req.idempotency_key!r} was already used for a different schedule")
        return await _schedule_version(conn, row[0], row[1]), True, []
    old = await current_schedule(conn, req.case_id)
    change = Rate(req.effective_date, req.weekly_pence, req.weekly_fee_pence)
    charged = await charged_periods(conn, req.case_id)
    rates: tuple[Rate, ...]
    first_collection = req.first_collection if old is None else old.first_collection
    if old is None:
        version, rates, segment = 1, (change,), Segment(req.frequency, req.effective_date, 0, req.due_offset_days)
    else:
        if req.effective_date < old.first_start:
            raise Precondition(f"effective_date {req.effective_date} is before the current {old.frequency.value} "
                               f"schedule started ({old.first_start}); a liability change cannot reach back "
                               "past the schedule's start or a change of frequency")
        version, rates = old.version + 1, rates_after_change(old.rates, change)
        segment = (old.segments[-1] if req.frequency == old.frequency
                   else _new_frequency_segment(old, req, charged))
    cur = await conn.execute(
        "INSERT INTO schedules (idempotency_key, fingerprint, case_id, version, service_type, frequency, method,"
        " first_start, due_offset_days, rates, rule_set_id, decision_ref, index_base, first_collection)"
        " VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) RETURNING " + _SCHEDULE_COLUMNS,
        (req.idempotency_key, fp, req.case_id, version, req.service_type, segment.frequency.value, req.method,
         segment.first_start, segment.due_offset_days, Jsonb(_rates_json(rates)), req.rule_set_id,
         req.decision_ref, segment.index_base, first_collection),
    )
    new_row = await cur.fetchone()
    if new_row is None:   # INSERT ... RETURNING without ON CONFLICT returns its row or raises
        raise RuntimeError(f"schedule version {version} of case {req.case_id} was not stored")
    schedule = _schedule_from(new_row)
    schedule.segments = segments_after(old.segments if old else (), segment)
    posted: list[Adjustment] = []
    if old is not None:
        posted = adjustments_at(old.segments, old.rates, schedule.segments, rates, charged, first_collection)
        if posted:
            await _post_adjustments(conn, req, posted)
            await _settle_after_adjustments(conn, schedule, req, posted)
    return schedule, False, posted


def _new_frequency_segment(old: ScheduleRow, req: ScheduleRequest, charged: list[int]) -> Segment:
    """A new frequency starts on a boundary of the current periods, at or after the first period
    not yet charged, so no charged period changes its dates and no day is charged twice or
    skipped. Its first period takes the index of the period it replaces."""
    first_open = max(max(charged) + 1 if charged else 0, old.index_base)
    index = old.period_containing(req.effective_date)
    on_boundary = period_at(old.segments, index).start == req.effective_date
    if on_boundary and index >= first_open:
        return Segment(req.frequency, req.effective_date, index, req.due_offset_days)
    earliest = period_at(old.segments, first_open).start
    following = period_at(old.segments, max(first_open, index + 1)).start
    raise Precondition(
        f"a change of frequency ({old.frequency.value} to {req.frequency.value}) must start on the first day of a "
        f"collection period not yet charged: {earliest} or a later period start (next one after "
        f"{req.effective_date}: {following}); {req.effective_date} is not")


async def stop_schedule(conn: AsyncConnection, key: str, case_id: str, stop_from: date, reason: str
                        ) -> tuple[ScheduleRow, bool, list[Adjustment]]:
    """A nil liability from `stop_from` (a new schedule version): nothing more falls due, periods
    already charged beyond it are adjusted back, and arrears stay collectable."""
    current = await current_schedule(conn, case_id)
    if current is None:
        raise NotFound(f"case {case_id} has no schedule")
    return await create_schedule(conn, ScheduleRequest(
        key, case_id, current.service_type, current.frequency, current.method, stop_from, 0, 0,
        current.rule_set_id, f"stopped:{reason}", current.due_offset_days))


async def _post_adjustments(conn: AsyncConnection, req: ScheduleRequest, found: list[Adjustment]) -> None:
    detail = {"periods": [{"period_index": a.period.index, "amount_delta_pence": a.amount_delta_pence,
                           "fee_delta_pence": a.fee_delta_pence} for a in found]}
    header = await claim(conn, f"{req.idempotency_key}/adjustment", {"schedule_key": req.idempotency_key},
                         kind="schedule_adjustment", case_id=req.case_id, value_date=req.effective_date,
                         detail=detail, decision_ref=req.decision_ref)
    legs: list[Leg] = []
    for adj in found:
        for component, delta in ((MAINTENANCE, adj.amount_delta_pence), (FEE, adj.fee_delta_pence)):
            if delta:
                legs += charge_legs(req.case_id, component, delta)
                await insert_charge(conn, header.transaction_id, req.case_id, "adjustment", adj.period.index,
                                    adj.period.due_date, component, delta)
    await add_legs(conn, header.transaction_id, legs)


async def _settle_after_adjustments(conn: AsyncConnection, schedule: ScheduleRow, req: ScheduleRequest,
                                    posted: list[Adjustment]) -> None:
    """An increase is settled from held credit; a decrease below what was already paid gives the
    paying parent that money back as credit (which then settles any other debt)."""
    on = max([req.effective_date] + [a.period.due_date for a in posted])
    await release_over_allocations(conn, schedule.rule_set_id, req.case_id, f"{req.idempotency_key}/released", on)
    await apply_credit(conn, schedule.rule_set_id, req.case_id,
                       f"credit-applied/{req.case_id}/schedule/{req.idempotency_key}", on)
