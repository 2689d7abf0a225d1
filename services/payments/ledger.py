"""The ledger repository: every write is one PostgreSQL transaction, all-or-nothing.

A write first *claims* its idempotency key (INSERT ... ON CONFLICT DO NOTHING RETURNING). If the
key was already claimed the first result is returned and nothing else happens; a different request
under the same key is refused (IdempotencyConflict). Work for one case is serialised with a
transaction-scoped advisory lock, so concurrent payments cannot allocate the same debt twice.
The database checks at COMMIT that each ledger transaction balances (see 0001_ledger.sql).

Beyond the chart of accounts in services/payments/__init__.py (0002_ledger_operations.sql):
  rp_overpaid (debit)      maintenance passed to the receiving parent that a bank return or a
                           backdated decrease took back; recovered from later collections
Transaction kinds added there: suspense_assignment (suspense -> a case, `reverses` the unidentified
payment), rp_overpayment, overpayment_recovery, allocation_released (a decrease's excess -> credit).
Period indices are global across frequency changes: a schedule is a list of segments (one per
frequency, domain.payments.schedule.Segment) and every index<->date mapping goes through them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from domain.payments.allocation import ENFORCEMENT, FEE, MAINTENANCE, Allocation, Debt, allocate
from domain.payments.fees import receiving_parent_fee
from domain.payments.schedule import (
    Frequency,
    Rate,
    Segment,
    adjustments_at,
    instalment_at,
    period_at,
    period_containing_at,
    rates_after_change,
    segments_after,
)
from domain.rulesets import rule_set

SUSPENSE = "suspense"
CLIENT_FUNDS = "client_funds"
BANK_CLEARING = "bank_clearing"
_DEBT_ACCOUNT = {MAINTENANCE: "pp_maintenance", FEE: "pp_fee", ENFORCEMENT: "pp_enforcement"}


class IdempotencyConflict(Exception):
    """The idempotency key was used before for a different request."""


class NotFound(Exception):
    pass


class Precondition(Exception):
    pass


@dataclass(frozen=True)
class Leg:
    account: str
    amount_pence: int          # > 0 debit, < 0 credit
    case_id: str | None = None


@dataclass
class Posted:
    transaction_id: int
    duplicate: bool
    detail: dict[str, Any] = field(default_factory=dict)


def fingerprint(request: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(request, sort_keys=True, default=str).encode()).hexdigest()


async def lock_case(conn: AsyncConnection, case_id: str) -> None:
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 6))", (f"payments:{case_id}",))


async def claim(conn: AsyncConnection, key: str, request: dict[str, Any], *, kind: str,
                case_id: str | None, value_date: date, detail: dict[str, Any] | None = None,
                decision_ref: str | None = None, reverses: int | None = None) -> Posted:
    """Inserts the transaction header, or finds the one already posted under `key`.

    When two requests race on one key, the second INSERT waits on the unique index until the
    first commits, then finds its row: either way exactly one header exists."""
    fp = fingerprint(request)
    cur = await conn.execute(
        "INSERT INTO transactions (idempotency_key, fingerprint, case_id, kind, decision_ref, reverses,"
        " value_date, detail) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (idempotency_key) DO NOTHING RETURNING transaction_id",
        (key, fp, case_id, kind, decision_ref, reverses, value_date, Jsonb(detail or {})),
    )
    row = await cur.fetchone()
    if row is not None:
        return Posted(row[0], duplicate=False, detail=detail or {})
    found = await find_posted(conn, key, request)
    assert found is not None
    return found


async def find_posted(conn: AsyncConnection, key: str, request: dict[str, Any]) -> Posted | None:
    """The transaction already posted under `key`, checking that it was the same request."""
    cur = await conn.execute(
        "SELECT transaction_id, fingerprint, detail FROM transactions WHERE idempotency_key = %s", (key,))
    existing = await cur.fetchone()
    if existing is None:
        return None
    if existing[1] != fingerprint(request):
        raise IdempotencyConflict(f"idempotency key {key!r} was already used for a different request")
    return Posted(existing[0], duplicate=True, detail=existing[2])


async def add_legs(conn: AsyncConnection, transaction_id: int, legs: list[Leg]) -> None:
    legs = [leg for leg in legs if leg.amount_pence != 0]
    if sum(leg.amount_pence for leg in legs) != 0:
        raise AssertionError(f"unbalanced legs {legs}")  # the database would refuse it at commit anyway
    async with conn.cursor() as cur:
        await cur.execute(
            "INSERT INTO postings (transaction_id, account, case_id, amount_pence) "
            "SELECT %s, a, c, v FROM unnest(%s::text[], %s::text[], %s::bigint[]) AS u(a, c, v)",
            (transaction_id, [leg.account for leg in legs], [leg.case_id for leg in legs],
             [leg.amount_pence for leg in legs]),
        )


# --- schedules ---------------------------------------------------------------------------------

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

    def instalment(self, index: int):
        return instalment_at(self.segments, self.rates, index)

    def period_containing(self, day: date) -> int:
        return period_containing_at(self.segments, day)

    @property
    def starts_on(self) -> date:
        return self.segments[0].first_start


def _rates_json(rates: tuple[Rate, ...]) -> list[dict]:
    return [{"effective_from": r.effective_from.isoformat(), "weekly_pence": r.weekly_pence,
             "weekly_fee_pence": r.weekly_fee_pence} for r in rates]


def _rates_from(raw: list[dict]) -> tuple[Rate, ...]:
    return tuple(Rate(date.fromisoformat(r["effective_from"]), r["weekly_pence"], r["weekly_fee_pence"])
                 for r in raw)


_SCHEDULE_COLUMNS = ("schedule_id, case_id, version, service_type, frequency, method, first_start, "
                     "due_offset_days, rates, rule_set_id, decision_ref, index_base")


def _segment_of(row) -> Segment:
    return Segment(Frequency(row[4]), row[6], row[11], row[7])


def _schedule_from(row, history: list | None = None) -> ScheduleRow:
    """A schedule version; `history` (all versions up to it, oldest first) gives its segments."""
    segments: tuple[Segment, ...] = ()
    for earlier in (history or [row]):
        segments = segments_after(segments, _segment_of(earlier))
    return ScheduleRow(row[0], row[1], row[2], row[3], Frequency(row[4]), row[5], row[6], row[7],
                       _rates_from(row[8]), row[9], row[10], row[11], segments)


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


async def create_schedule(conn: AsyncConnection, req: ScheduleRequest) -> tuple[ScheduleRow, bool, list]:
    """Appends a schedule version. When one exists, the liability changes from the effective date
    and each period already charged gets an adjustment (new − old) in one ledger transaction; held
    credit then settles what an increase added, and money allocated beyond what a decrease left
    due becomes credit again. A different frequency starts a new segment of periods at a period
    boundary (see _new_frequency_segment). Returns (schedule, duplicate, adjustments posted)."""
    request = {**asdict(req), "frequency": req.frequency.value}
    fp = fingerprint(request)
    async with conn.transaction():
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
        charged = await _charged_periods(conn, req.case_id)
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
            " first_start, due_offset_days, rates, rule_set_id, decision_ref, index_base)"
            " VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) RETURNING " + _SCHEDULE_COLUMNS,
            (req.idempotency_key, fp, req.case_id, version, req.service_type, segment.frequency.value, req.method,
             segment.first_start, segment.due_offset_days, Jsonb(_rates_json(rates)), req.rule_set_id,
             req.decision_ref, segment.index_base),
        )
        new_row = await cur.fetchone()
        schedule = _schedule_from(new_row)
        schedule.segments = segments_after(old.segments if old else (), segment)
        posted: list = []
        if old is not None:
            posted = adjustments_at(old.segments, old.rates, schedule.segments, rates, charged)
            if posted:
                await _post_adjustments(conn, req, posted)
                await _settle_after_adjustments(conn, schedule, req, posted)
        return schedule, False, posted


async def _charged_periods(conn: AsyncConnection, case_id: str) -> list[int]:
    cur = await conn.execute("SELECT DISTINCT period_index FROM charges WHERE case_id = %s AND charge_kind = 'period'",
                             (case_id,))
    return [r[0] for r in await cur.fetchall()]


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
                        ) -> tuple[ScheduleRow, bool, list]:
    """A nil liability from `stop_from` (a new schedule version): nothing more falls due, periods
    already charged beyond it are adjusted back, and arrears stay collectable."""
    current = await current_schedule(conn, case_id)
    if current is None:
        raise NotFound(f"case {case_id} has no schedule")
    return await create_schedule(conn, ScheduleRequest(
        key, case_id, current.service_type, current.frequency, current.method, stop_from, 0, 0,
        current.rule_set_id, f"stopped:{reason}", current.due_offset_days))


async def _post_adjustments(conn: AsyncConnection, req: ScheduleRequest, found: list) -> None:
    detail = {"periods": [{"period_index": a.period.index, "amount_delta_pence": a.amount_delta_pence,
                           "fee_delta_pence": a.fee_delta_pence} for a in found]}
    header = await claim(conn, f"{req.idempotency_key}/adjustment", {"schedule_key": req.idempotency_key},
                         kind="schedule_adjustment", case_id=req.case_id, value_date=req.effective_date,
                         detail=detail, decision_ref=req.decision_ref)
    legs: list[Leg] = []
    for adj in found:
        for component, delta in ((MAINTENANCE, adj.amount_delta_pence), (FEE, adj.fee_delta_pence)):
            if delta:
                legs += _charge_legs(req.case_id, component, delta)
                await _insert_charge(conn, header.transaction_id, req.case_id, "adjustment", adj.period.index,
                                     adj.period.due_date, component, delta)
    await add_legs(conn, header.transaction_id, legs)


def _charge_legs(case_id: str, component: str, amount: int) -> list[Leg]:
    """Owed by the paying parent (debit) against who it is owed to (credit)."""
    if component == MAINTENANCE:
        return [Leg("pp_maintenance", amount, case_id), Leg("rp_entitled", -amount, case_id)]
    if component == FEE:
        return [Leg("pp_fee", amount, case_id), Leg("agency_fees", -amount)]
    return [Leg("pp_enforcement", amount, case_id), Leg("agency_enforcement", -amount)]


async def _insert_charge(conn: AsyncConnection, transaction_id: int, case_id: str, kind: str,
                         period_index: int | None, due_date: date, component: str, amount: int) -> None:
    await conn.execute(
        "INSERT INTO charges (transaction_id, case_id, charge_kind, period_index, due_date, component, amount_pence)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (transaction_id, case_id, kind, period_index, due_date, component, amount))


# --- charges -----------------------------------------------------------------------------------

async def charge_period(conn: AsyncConnection, case_id: str, period_index: int) -> Posted:
    """Posts what falls due for one period (maintenance + paying parent's fee). The key is the
    business key itself, so a period is charged once whoever asks."""
    key = f"period-charge/{case_id}/{period_index}"
    request = {"case_id": case_id, "period_index": period_index}
    async with conn.transaction():
        await lock_case(conn, case_id)
        if (found := await find_posted(conn, key, request)) is not None:
            return found
        schedule = await current_schedule(conn, case_id)
        if schedule is None:
            raise NotFound(f"case {case_id} has no schedule")
        if schedule.service_type != "collect_and_pay":
            raise Precondition("Direct Pay cases are not charged through the ledger; the receiving parent reports payments")
        due = schedule.instalment(period_index)
        if due.amount_pence == 0 and due.fee_pence == 0:
            raise Precondition("nothing is due for this period (nil liability)")
        detail = {"period_index": period_index, "due_date": due.period.due_date.isoformat(),
                  "amount_pence": due.amount_pence, "fee_pence": due.fee_pence, "account": "pp_maintenance"}
        header = await claim(conn, key, request, kind="period_charge", case_id=case_id,
                             value_date=due.period.due_date, detail=detail, decision_ref=schedule.decision_ref)
        legs = []
        for component, amount in ((MAINTENANCE, due.amount_pence), (FEE, due.fee_pence)):
            if amount:
                legs += _charge_legs(case_id, component, amount)
                await _insert_charge(conn, header.transaction_id, case_id, "period", period_index,
                                     due.period.due_date, component, amount)
        await add_legs(conn, header.transaction_id, legs)
        await _apply_credit(conn, schedule, case_id, f"credit-applied/{case_id}/{period_index}", due.period.due_date)
        return header


async def post_enforcement_charge(conn: AsyncConnection, key: str, case_id: str, kind: str, amount: int,
                                  on: date, decision_ref: str | None) -> Posted:
    request = {"case_id": case_id, "kind": kind, "amount": amount}
    detail = {"charge_kind": kind, "amount_pence": amount, "account": "pp_enforcement"}
    async with conn.transaction():
        await lock_case(conn, case_id)
        header = await claim(conn, key, request, kind="enforcement_charge", case_id=case_id, value_date=on,
                             detail=detail, decision_ref=decision_ref)
        if header.duplicate:
            return header
        await _insert_charge(conn, header.transaction_id, case_id, "enforcement", None, on, ENFORCEMENT, amount)
        await add_legs(conn, header.transaction_id, _charge_legs(case_id, ENFORCEMENT, amount))
        return header


# --- money received ----------------------------------------------------------------------------

async def outstanding_debts(conn: AsyncConnection, case_id: str) -> list[Debt]:
    """Net outstanding per (due date, component): charges and adjustments less allocations.
    Allocations are recorded against the first positive charge of each group (its key)."""
    cur = await conn.execute(
        "SELECT c.due_date, c.component, sum(c.amount_pence) - coalesce(sum(a.allocated), 0) AS outstanding,"
        "       min(c.charge_id) FILTER (WHERE c.amount_pence > 0) AS charge_id"
        "  FROM charges c"
        "  LEFT JOIN (SELECT charge_id, sum(amount_pence) AS allocated FROM allocations GROUP BY charge_id) a"
        "    USING (charge_id)"
        " WHERE c.case_id = %s GROUP BY c.due_date, c.component", (case_id,))
    return [Debt(key=row[3], due_date=row[0], component=row[1], outstanding_pence=int(row[2]))
            for row in await cur.fetchall() if row[3] is not None]


@dataclass
class IncomingPayment:
    idempotency_key: str       # bank reference
    case_id: str
    amount_pence: int
    received_on: date
    method: str


async def record_incoming_payment(conn: AsyncConnection, payment: IncomingPayment) -> Posted:
    request = asdict(payment)
    async with conn.transaction():
        if payment.case_id:
            await lock_case(conn, payment.case_id)
        if (found := await find_posted(conn, payment.idempotency_key, request)) is not None:
            return found
        schedule = await current_schedule(conn, payment.case_id) if payment.case_id else None
        if schedule is None or schedule.service_type != "collect_and_pay":
            reason = "unknown case" if schedule is None else "case is not on Collect & Pay"
            return await _to_suspense(conn, payment, request, reason)
        debts = await outstanding_debts(conn, payment.case_id)
        allocations, credit = allocate(payment.amount_pence, debts, _current_due_date(debts, payment.received_on))
        legs, detail = _allocation_legs(payment.case_id, allocations, schedule)
        detail.update(account="pp_maintenance", amount_pence=payment.amount_pence, credit_pence=credit)
        header = await claim(conn, payment.idempotency_key, request, kind="incoming_payment",
                             case_id=payment.case_id, value_date=payment.received_on, detail=detail)
        legs.append(Leg(CLIENT_FUNDS, payment.amount_pence))
        if credit:   # paid in advance or overpaid: held for the paying parent, applied to the next charge
            legs.append(Leg("pp_credit", -credit, payment.case_id))
        await add_legs(conn, header.transaction_id, legs)
        await _insert_allocations(conn, header.transaction_id, allocations)
        await _bank_movement(conn, payment.idempotency_key, payment.amount_pence, payment.received_on, header.transaction_id)
        await _recover_overpayment(conn, payment.case_id, payment.idempotency_key, payment.received_on)
        return header


def _allocation_legs(case_id: str, allocations: list, schedule: ScheduleRow) -> tuple[list[Leg], dict]:
    """Legs that settle allocated debts; collected maintenance becomes payable to the receiving
    parent less the receiving parent's fee (4%), which is agency income."""
    by_component = {c: sum(a.amount_pence for a in allocations if a.debt.component == c)
                    for c in (MAINTENANCE, FEE, ENFORCEMENT)}
    legs = [Leg(_DEBT_ACCOUNT[c], -amount, case_id) for c, amount in by_component.items() if amount]
    collected = by_component[MAINTENANCE]
    rp_fee = receiving_parent_fee(collected, rule_set(schedule.rule_set_id))
    if collected:
        legs += [Leg("rp_entitled", collected, case_id), Leg("rp_payable", -(collected - rp_fee), case_id),
                 Leg("agency_fees", -rp_fee)]
    return legs, {"allocated": by_component, "receiving_parent_fee_pence": rp_fee}


async def _insert_allocations(conn: AsyncConnection, transaction_id: int, allocations: list) -> None:
    if allocations:
        async with conn.cursor() as cur:
            await cur.executemany("INSERT INTO allocations (transaction_id, charge_id, amount_pence) VALUES (%s, %s, %s)",
                                  [(transaction_id, a.debt.key, a.amount_pence) for a in allocations])


async def _apply_credit(conn: AsyncConnection, schedule: ScheduleRow, case_id: str, key: str, on: date) -> None:
    """Money paid in advance settles new debts (a period charge, or what a liability increase added)
    as soon as they are posted. `key` is derived from what caused them, so a retry applies it once."""
    credit = await _account_balance(conn, case_id, "pp_credit", credit_side=True)
    if credit <= 0:
        return
    debts = await outstanding_debts(conn, case_id)
    allocations, left = allocate(credit, debts, _current_due_date(debts, on))
    if not allocations:
        return
    legs, detail = _allocation_legs(case_id, allocations, schedule)
    detail.update(account="pp_credit", amount_pence=credit - left)
    header = await claim(conn, key, {"case_id": case_id, "key": key},
                         kind="credit_applied", case_id=case_id, value_date=on, detail=detail)
    if header.duplicate:
        return
    await add_legs(conn, header.transaction_id, legs + [Leg("pp_credit", credit - left, case_id)])
    await _insert_allocations(conn, header.transaction_id, allocations)
    await _recover_overpayment(conn, case_id, key, on)


async def _account_balance(conn: AsyncConnection, case_id: str, account: str, *, credit_side: bool) -> int:
    """A case account's balance: positive on its normal side (credit side for liabilities to people)."""
    cur = await conn.execute("SELECT coalesce(sum(amount_pence), 0) FROM postings WHERE case_id = %s AND account = %s",
                             (case_id, account))
    total = int((await cur.fetchone())[0])
    return -total if credit_side else total


# --- overpayments to the receiving parent ----------------------------------------------------
#
# Maintenance is passed on to the receiving parent soon after it is collected. When it is later
# taken back (the bank returns the payment, or a backdated decrease reduces what was due), the
# part still waiting in rp_payable is simply not paid out; the part already passed on is an
# overpayment to the receiving parent, recorded on rp_overpaid (a debit) by its own transaction
# and recovered, one transaction per recovery, from collections before they become payable.

async def _undisbursed_share(conn: AsyncConnection, case_id: str, source_transaction_id: int, amount: int) -> int:
    """How much of `amount`, credited to rp_payable by the source transaction, is still waiting to
    be passed on. Payable money leaves first in, first out: what is waiting now is the newest
    money, so the source's money is still there only beyond what was credited after it."""
    cur = await conn.execute(
        "SELECT coalesce(sum(amount_pence), 0),"
        "       coalesce(-sum(p.amount_pence) FILTER (WHERE p.amount_pence < 0 AND p.transaction_id > %s"
        "                AND t.kind <> 'rp_overpayment'), 0)"
        "  FROM postings p JOIN transactions t USING (transaction_id)"
        " WHERE p.case_id = %s AND p.account = 'rp_payable'", (source_transaction_id, case_id))
    balance, credited_later = (int(v) for v in await cur.fetchone())
    waiting = -balance
    return max(0, min(amount, waiting - credited_later))


async def _record_overpayment(conn: AsyncConnection, case_id: str, key: str, on: date, amount: int,
                              cause: str) -> None:
    """`amount` already passed on but no longer due: owed back by the receiving parent."""
    if amount <= 0:
        return
    header = await claim(conn, key, {"case_id": case_id, "amount": amount, "cause": cause}, kind="rp_overpayment",
                         case_id=case_id, value_date=on,
                         detail={"account": "rp_overpaid", "amount_pence": amount, "cause": cause})
    if not header.duplicate:
        await add_legs(conn, header.transaction_id, [Leg("rp_overpaid", amount, case_id), Leg("rp_payable", -amount, case_id)])


async def _recover_overpayment(conn: AsyncConnection, case_id: str, trigger_key: str, on: date) -> None:
    """Collected money waiting for the receiving parent first repays what they were overpaid."""
    overpaid = await _account_balance(conn, case_id, "rp_overpaid", credit_side=False)
    if overpaid <= 0:
        return
    payable = await _account_balance(conn, case_id, "rp_payable", credit_side=True)
    recovered = min(overpaid, payable)
    if recovered <= 0:
        return
    header = await claim(conn, f"{trigger_key}/rp-recovery", {"case_id": case_id, "trigger": trigger_key},
                         kind="overpayment_recovery", case_id=case_id, value_date=on,
                         detail={"account": "rp_overpaid", "amount_pence": recovered, "trigger": trigger_key})
    if not header.duplicate:
        await add_legs(conn, header.transaction_id, [Leg("rp_payable", recovered, case_id), Leg("rp_overpaid", -recovered, case_id)])


# --- after a liability change --------------------------------------------------------------------

async def _settle_after_adjustments(conn: AsyncConnection, schedule: ScheduleRow, req: ScheduleRequest,
                                    posted: list) -> None:
    """An increase is settled from held credit; a decrease below what was already paid gives the
    paying parent that money back as credit (which then settles any other debt)."""
    on = max([req.effective_date] + [a.period.due_date for a in posted])
    await _release_over_allocations(conn, schedule, req.case_id, f"{req.idempotency_key}/released", on)
    await _apply_credit(conn, schedule, req.case_id, f"credit-applied/{req.case_id}/schedule/{req.idempotency_key}", on)


async def _release_over_allocations(conn: AsyncConnection, schedule: ScheduleRow, case_id: str, key: str,
                                    on: date) -> None:
    """Periods a backdated decrease left paid beyond what is now due: the excess is un-allocated
    and held as the paying parent's credit."""
    over = [d for d in await outstanding_debts(conn, case_id) if d.outstanding_pence < 0 and d.component != ENFORCEMENT]
    if over:
        await _release(conn, schedule, case_id, key, on, [Allocation(d, d.outstanding_pence) for d in over],
                       "liability_decrease")


async def _unapply_credit(conn: AsyncConnection, schedule: ScheduleRow, case_id: str, key: str, on: date,
                          shortfall: int) -> None:
    """A returned payment had been held as credit and the credit had already settled debts: undo
    those settlements, newest debt first (fee before maintenance, the reverse of allocation), up
    to what the return took, so the debts are owed again everywhere (balance and period status)."""
    cur = await conn.execute(
        "SELECT a.charge_id, c.due_date, c.component, sum(a.amount_pence)"
        "  FROM allocations a JOIN charges c USING (charge_id) JOIN transactions t ON t.transaction_id = a.transaction_id"
        " WHERE c.case_id = %s AND (t.kind = 'credit_applied'"
        "       OR (t.kind = 'allocation_released' AND t.detail->>'cause' = 'bank_return'))"
        " GROUP BY a.charge_id, c.due_date, c.component HAVING sum(a.amount_pence) > 0"
        " ORDER BY c.due_date DESC, c.component = 'maintenance', a.charge_id DESC", (case_id,))
    releases, left = [], shortfall
    for charge_id, due_date, component, funded in await cur.fetchall():
        if left == 0:
            break
        taken = min(left, int(funded))
        releases.append(Allocation(Debt(charge_id, due_date, component, 0), -taken))
        left -= taken
    if releases:
        await _release(conn, schedule, case_id, key, on, releases, "bank_return")


async def _release(conn: AsyncConnection, schedule: ScheduleRow, case_id: str, key: str, on: date,
                   releases: list[Allocation], cause: str) -> None:
    """Un-allocates money from debts (negative allocations) into the paying parent's credit.
    Maintenance in it had been collected for the receiving parent, so it comes back from
    rp_payable (the 4% fee on it, halves up on the amount released, from the agency's fees);
    what had already been passed on becomes an overpayment to recover."""
    released = {c: -sum(r.amount_pence for r in releases if r.debt.component == c) for c in (MAINTENANCE, FEE, ENFORCEMENT)}
    maintenance, total = released[MAINTENANCE], sum(released.values())
    rp_fee = receiving_parent_fee(maintenance, rule_set(schedule.rule_set_id))
    clawed_back = maintenance - rp_fee
    cur = await conn.execute("SELECT coalesce(max(transaction_id), 0) FROM allocations WHERE charge_id = ANY(%s)"
                             " AND amount_pence > 0", ([r.debt.key for r in releases],))
    source = int((await cur.fetchone())[0])
    waiting = await _undisbursed_share(conn, case_id, source, clawed_back)
    detail = {"account": "pp_credit", "amount_pence": total, "released": released, "receiving_parent_fee_pence": rp_fee,
              "cause": cause, "periods": sorted({str(r.debt.due_date) for r in releases})}
    header = await claim(conn, key, {"case_id": case_id, "key": key}, kind="allocation_released", case_id=case_id,
                         value_date=on, detail=detail)
    if header.duplicate:
        return
    legs = [Leg(_DEBT_ACCOUNT[c], amount, case_id) for c, amount in released.items()] + [Leg("pp_credit", -total, case_id)]
    if maintenance:
        legs += [Leg("rp_entitled", -maintenance, case_id), Leg("rp_payable", clawed_back, case_id),
                 Leg("agency_fees", rp_fee)]
    await add_legs(conn, header.transaction_id, legs)
    await _insert_allocations(conn, header.transaction_id, releases)
    await _record_overpayment(conn, case_id, f"{key}/rp-overpaid", on, clawed_back - waiting, cause)
    await _recover_overpayment(conn, case_id, key, on)


def _current_due_date(debts: list[Debt], received_on: date) -> date | None:
    due = [d.due_date for d in debts if d.component != ENFORCEMENT and d.due_date <= received_on]
    return max(due) if due else None


async def _to_suspense(conn: AsyncConnection, payment: IncomingPayment, request: dict, reason: str) -> Posted:
    """Money we cannot attribute is held in suspense and reported by reconciliation: never lost."""
    detail = {"account": SUSPENSE, "claimed_case_id": payment.case_id, "reason": reason,
              "amount_pence": payment.amount_pence}
    header = await claim(conn, payment.idempotency_key, request, kind="unidentified_payment",
                         case_id=None, value_date=payment.received_on, detail=detail)
    if header.duplicate:
        return header
    await add_legs(conn, header.transaction_id, [Leg(CLIENT_FUNDS, payment.amount_pence), Leg(SUSPENSE, -payment.amount_pence)])
    await _bank_movement(conn, payment.idempotency_key, payment.amount_pence, payment.received_on, header.transaction_id)
    return header


async def _bank_movement(conn: AsyncConnection, reference: str, amount: int, on: date, transaction_id: int) -> None:
    await conn.execute("INSERT INTO bank_movements (bank_reference, amount_pence, value_date, transaction_id)"
                       " VALUES (%s, %s, %s, %s)", (reference, amount, on, transaction_id))


async def record_return(conn: AsyncConnection, key: str, original_reference: str, on: date) -> Posted:
    """The bank returned a payment (e.g. a direct debit bounced): reverse its legs and allocations,
    so what it paid is owed again. A payment that had been assigned from suspense is reversed
    together with its assignment. Maintenance from it that was already passed to the receiving
    parent becomes a recorded overpayment (see _record_overpayment), never a negative payable."""
    request = {"original": original_reference}
    async with conn.transaction():
        await _lock(conn, f"bank-reference:{original_reference}")
        original = await _transaction_by_key(conn, original_reference)
        if original is None:
            raise NotFound(f"no payment with bank reference {original_reference!r}")
        if original.kind not in ("incoming_payment", "unidentified_payment"):
            raise Precondition(f"{original_reference!r} is not an incoming payment")
        assignment = await _reversed_by(conn, original.transaction_id)
        if assignment is not None and assignment.kind != "suspense_assignment":
            assignment = None    # the return itself: the duplicate check below finds it
        case_id = assignment.case_id if assignment else original.case_id
        if case_id:
            await lock_case(conn, case_id)
        if (found := await find_posted(conn, key, request)) is not None:
            return found
        paid_by = assignment or original
        if await _reversed_by(conn, paid_by.transaction_id) is not None:
            raise Precondition(f"payment {original_reference!r} was already returned")
        amount = int(original.detail.get("amount_pence", 0))
        payable = -sum(v for a, v, _ in await _legs_of(conn, paid_by.transaction_id) if a == "rp_payable")
        waiting = await _undisbursed_share(conn, case_id, paid_by.transaction_id, payable) if case_id else 0
        detail = {"account": "reversal", "reverses": original_reference, "amount_pence": amount}
        header = await claim(conn, key, request, kind="reversal", case_id=case_id, value_date=on,
                             detail=detail, reverses=paid_by.transaction_id)
        await _reverse(conn, header.transaction_id, [original.transaction_id] + ([assignment.transaction_id] if assignment else []))
        await _bank_movement(conn, key, -amount, on, header.transaction_id)
        if case_id:
            await _after_return(conn, case_id, key, on, passed_on=payable - waiting)
        return header


async def _reverse(conn: AsyncConnection, transaction_id: int, reversed_ids: list[int]) -> None:
    """Posts the negation of the reversed transactions' legs (netted per account) and allocations."""
    legs: dict[tuple[str, str | None], int] = {}
    for tid in reversed_ids:
        for account, value, leg_case in await _legs_of(conn, tid):
            legs[(account, leg_case)] = legs.get((account, leg_case), 0) - value
    await add_legs(conn, transaction_id, [Leg(a, v, c) for (a, c), v in legs.items()])
    await conn.execute("INSERT INTO allocations (transaction_id, charge_id, amount_pence)"
                       " SELECT %s, charge_id, -amount_pence FROM allocations WHERE transaction_id = ANY(%s)",
                       (transaction_id, reversed_ids))


async def _after_return(conn: AsyncConnection, case_id: str, key: str, on: date, passed_on: int) -> None:
    """The receiving parent's side of a return (what was already passed on is an overpayment),
    then the paying parent's: credit the returned money had already spent is un-spent."""
    if passed_on > 0:
        await _record_overpayment(conn, case_id, f"{key}/rp-overpaid", on, passed_on, "bank_return")
        await _recover_overpayment(conn, case_id, key, on)
    held = await _account_balance(conn, case_id, "pp_credit", credit_side=True)
    if held < 0:
        await _unapply_credit(conn, await current_schedule(conn, case_id), case_id, f"{key}/credit-unapplied", on, -held)


@dataclass
class _Transaction:
    transaction_id: int
    kind: str
    case_id: str | None
    detail: dict[str, Any]
    value_date: date


async def _transaction_by_key(conn: AsyncConnection, key: str) -> _Transaction | None:
    cur = await conn.execute("SELECT transaction_id, kind, case_id, detail, value_date FROM transactions"
                             " WHERE idempotency_key = %s", (key,))
    row = await cur.fetchone()
    return None if row is None else _Transaction(*row)


async def _reversed_by(conn: AsyncConnection, transaction_id: int) -> _Transaction | None:
    """The one transaction (a return, or a suspense assignment) that reverses this one, if any."""
    cur = await conn.execute("SELECT transaction_id, kind, case_id, detail, value_date FROM transactions"
                             " WHERE reverses = %s", (transaction_id,))
    row = await cur.fetchone()
    return None if row is None else _Transaction(*row)


async def _legs_of(conn: AsyncConnection, transaction_id: int) -> list[tuple[str, int, str | None]]:
    cur = await conn.execute("SELECT account, amount_pence, case_id FROM postings WHERE transaction_id = %s"
                             " ORDER BY posting_id", (transaction_id,))
    return [(a, int(v), c) for a, v, c in await cur.fetchall()]


async def _lock(conn: AsyncConnection, name: str) -> None:
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 6))", (f"payments:{name}",))


# --- suspense ------------------------------------------------------------------------------------

@dataclass
class SuspenseItem:
    bank_reference: str
    claimed_case_id: str
    amount_pence: int
    received_on: date


async def suspense_items(conn: AsyncConnection, as_of: date | None = None, limit: int = 100) -> list[SuspenseItem]:
    """Money still held in suspense: unidentified payments neither assigned to a case nor
    returned (either links back through `reverses`) on `as_of`."""
    as_of = as_of or date.max
    cur = await conn.execute(
        "SELECT t.idempotency_key, coalesce(t.detail->>'claimed_case_id', ''), (t.detail->>'amount_pence')::bigint,"
        "       t.value_date"
        "  FROM transactions t WHERE t.kind = 'unidentified_payment' AND t.value_date <= %s"
        "   AND NOT EXISTS (SELECT 1 FROM transactions r WHERE r.reverses = t.transaction_id AND r.value_date <= %s)"
        " ORDER BY t.value_date, t.transaction_id LIMIT %s", (as_of, as_of, limit))
    return [SuspenseItem(k, c, int(a), d) for k, c, a, d in await cur.fetchall()]


async def assign_suspense(conn: AsyncConnection, key: str, bank_reference: str, case_id: str, on: date,
                          assigned_by: str) -> Posted:
    """Moves a payment held in suspense to the case it belongs to and allocates it exactly as an
    incoming payment received that day would have been (current period, oldest arrears,
    enforcement last, the rest as credit; receiving parent's 4% fee; rp_payable). The money is
    already in client funds, so there is no bank movement. The assignment reverses the suspense
    entry (`reverses`), so an item is assigned at most once and leaves the suspense list."""
    request = {"bank_reference": bank_reference, "case_id": case_id, "on": on, "assigned_by": assigned_by}
    async with conn.transaction():
        await _lock(conn, f"bank-reference:{bank_reference}")
        await lock_case(conn, case_id)
        if (found := await find_posted(conn, key, request)) is not None:
            return found
        original = await _transaction_by_key(conn, bank_reference)
        if original is None:
            raise NotFound(f"no payment with bank reference {bank_reference!r}")
        if original.kind != "unidentified_payment":
            raise Precondition(f"payment {bank_reference!r} is not held in suspense")
        taken = await _reversed_by(conn, original.transaction_id)
        if taken is not None:
            what = f"assigned to case {taken.case_id}" if taken.kind == "suspense_assignment" else "returned by the bank"
            raise Precondition(f"payment {bank_reference!r} was already {what}")
        schedule = await current_schedule(conn, case_id)
        if schedule is None or schedule.service_type != "collect_and_pay":
            raise Precondition(f"case {case_id} has no Collect & Pay schedule to take the payment")
        if on < original.value_date:
            raise Precondition(f"cannot assign a payment before it was received ({original.value_date})")
        amount = int(original.detail["amount_pence"])
        debts = await outstanding_debts(conn, case_id)
        allocations, credit = allocate(amount, debts, _current_due_date(debts, original.value_date))
        legs, detail = _allocation_legs(case_id, allocations, schedule)
        detail.update(account="pp_maintenance", amount_pence=amount, credit_pence=credit, bank_reference=bank_reference,
                      received_on=original.value_date.isoformat(), assigned_by=assigned_by)
        header = await claim(conn, key, request, kind="suspense_assignment", case_id=case_id, value_date=on,
                             detail=detail, reverses=original.transaction_id)
        legs.append(Leg(SUSPENSE, amount))
        if credit:
            legs.append(Leg("pp_credit", -credit, case_id))
        await add_legs(conn, header.transaction_id, legs)
        await _insert_allocations(conn, header.transaction_id, allocations)
        await _recover_overpayment(conn, case_id, key, on)
        return header


# --- disbursement ------------------------------------------------------------------------------

async def payable_to_receiving_parent(conn: AsyncConnection, case_id: str) -> int:
    cur = await conn.execute("SELECT coalesce(-sum(amount_pence), 0) FROM postings"
                             " WHERE case_id = %s AND account = 'rp_payable'", (case_id,))
    return int((await cur.fetchone())[0])


async def start_disbursement(conn: AsyncConnection, key: str, case_id: str, on: date, due_by: date) -> Posted | None:
    """Moves all that is payable to the receiving parent into bank clearing (payment instructed).
    None when nothing is payable."""
    request = {"case_id": case_id, "on": on, "due_by": due_by}
    async with conn.transaction():
        await lock_case(conn, case_id)
        if (found := await find_posted(conn, key, request)) is not None:
            return found
        await _recover_overpayment(conn, case_id, key, on)
        payable = await payable_to_receiving_parent(conn, case_id)
        if payable <= 0:
            return None
        detail = {"account": "rp_payable", "amount_pence": payable, "due_by": due_by.isoformat()}
        header = await claim(conn, key, request, kind="disbursement", case_id=case_id, value_date=on, detail=detail)
        await add_legs(conn, header.transaction_id, [Leg("rp_payable", payable, case_id), Leg(BANK_CLEARING, -payable)])
        return header


async def settle_disbursement(conn: AsyncConnection, key: str, bank_reference: str, case_id: str, amount: int,
                              on: date) -> Posted:
    """The bank accepted the outgoing payment: clearing -> client funds, and a bank movement."""
    request = {"case_id": case_id, "amount": amount, "bank_reference": bank_reference}
    detail = {"account": CLIENT_FUNDS, "amount_pence": amount, "bank_reference": bank_reference}
    async with conn.transaction():
        header = await claim(conn, key, request, kind="disbursement_settled", case_id=case_id, value_date=on, detail=detail)
        if header.duplicate:
            return header
        await add_legs(conn, header.transaction_id, [Leg(BANK_CLEARING, amount), Leg(CLIENT_FUNDS, -amount)])
        await _bank_movement(conn, bank_reference, -amount, on, header.transaction_id)
        return header


# --- Direct Pay --------------------------------------------------------------------------------

async def report_direct_payment(conn: AsyncConnection, key: str, case_id: str, due_date: date, received: bool,
                                amount: int) -> tuple[bool, int]:
    """Records a receiving parent's report. Returns (duplicate, amount short of what was due)."""
    request = {"case_id": case_id, "due_date": due_date, "received": received, "amount": amount}
    async with conn.transaction():
        schedule = await current_schedule(conn, case_id)
        if schedule is None:
            raise NotFound(f"case {case_id} has no schedule")
        if due_date < schedule.starts_on:
            raise Precondition("due_date is before the schedule started")
        due = schedule.instalment(schedule.period_containing(due_date)).amount_pence
        paid = amount if received else 0
        cur = await conn.execute(
            "INSERT INTO direct_pay_reports (idempotency_key, fingerprint, case_id, due_date, received, due_pence, amount_pence)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (idempotency_key) DO NOTHING RETURNING report_id",
            (key, fingerprint(request), case_id, due_date, received, due, paid))
        if await cur.fetchone() is not None:
            return False, max(due - paid, 0)
        cur = await conn.execute("SELECT fingerprint, due_pence, amount_pence FROM direct_pay_reports WHERE idempotency_key = %s", (key,))
        fp, due_p, paid_p = await cur.fetchone()
        if fp != fingerprint(request):
            raise IdempotencyConflict(f"idempotency key {key!r} was already used for a different report")
        return True, max(due_p - paid_p, 0)


# --- reads -------------------------------------------------------------------------------------

@dataclass
class CaseBalance:
    case_id: str
    service_type: str
    arrears_pence: int              # maintenance + collection fee owed and due on or before as_of
    enforcement_charges_pence: int
    credit_pence: int               # paid in advance / overpaid, held for the paying parent
    paid_to_date_pence: int
    payable_to_receiving_parent_pence: int
    next_payment_due: date | None
    next_payment_pence: int
    overpaid_to_receiving_parent_pence: int = 0   # passed on, then returned or no longer due; being recovered


async def balance(conn: AsyncConnection, case_id: str, as_of: date) -> CaseBalance:
    schedule = await current_schedule(conn, case_id)
    if schedule is None:
        raise NotFound(f"case {case_id} has no schedule")
    if schedule.service_type == "direct_pay":
        cur = await conn.execute("SELECT coalesce(sum(due_pence - amount_pence), 0), coalesce(sum(amount_pence), 0)"
                                 " FROM direct_pay_reports WHERE case_id = %s AND due_date <= %s", (case_id, as_of))
        arrears, paid = (int(v) for v in await cur.fetchone())
        enforcement = credit = payable = overpaid = 0
    else:
        cur = await conn.execute(
            "SELECT coalesce(sum(amount_pence) FILTER (WHERE component <> 'enforcement'), 0),"
            "       coalesce(sum(amount_pence) FILTER (WHERE component = 'enforcement'), 0) FROM ("
            "  SELECT c.component, c.amount_pence FROM charges c WHERE c.case_id = %s AND c.due_date <= %s"
            "  UNION ALL SELECT c.component, -a.amount_pence FROM allocations a JOIN charges c USING (charge_id)"
            "   WHERE c.case_id = %s AND c.due_date <= %s) owed", (case_id, as_of, case_id, as_of))
        arrears, enforcement = (int(v) for v in await cur.fetchone())
        # Paid: money received for the case (directly, or assigned from suspense), less returns.
        cur = await conn.execute(
            "SELECT coalesce(sum(p.amount_pence) FILTER (WHERE (p.account = 'client_funds'"
            "         AND t.kind IN ('incoming_payment', 'reversal'))"
            "         OR (p.account = 'suspense' AND t.kind = 'suspense_assignment')), 0),"
            "       coalesce(-sum(p.amount_pence) FILTER (WHERE p.account = 'pp_credit'), 0),"
            "       coalesce(-sum(p.amount_pence) FILTER (WHERE p.account = 'rp_payable'), 0),"
            "       coalesce(sum(p.amount_pence) FILTER (WHERE p.account = 'rp_overpaid'), 0)"
            "  FROM transactions t JOIN postings p USING (transaction_id)"
            " WHERE t.case_id = %s", (case_id,))
        paid, credit, payable, overpaid = (int(v) for v in await cur.fetchone())
        if credit < 0:   # a returned payment whose credit had already been applied: owed again
            arrears, credit = arrears - credit, 0
    next_due, next_amount = _next_payment(schedule, as_of)
    return CaseBalance(case_id, schedule.service_type, arrears, enforcement, credit, paid, payable, next_due, next_amount,
                       overpaid)


def _next_payment(schedule: ScheduleRow, as_of: date) -> tuple[date | None, int]:
    index = schedule.period_containing(max(as_of, schedule.starts_on))
    for candidate in (index, index + 1):
        due = schedule.instalment(candidate)
        if due.period.due_date > as_of:
            return due.period.due_date, due.amount_pence + due.fee_pence
    return None, 0


async def statement_events(conn: AsyncConnection, case_id: str, start: date, end: date) -> tuple[int, list]:
    """(opening balance, events) for a case between two dates, from the paying parent's side."""
    from domain.payments.statement import LedgerEvent

    owed_accounts = ("pp_maintenance", "pp_fee", "pp_enforcement", "pp_credit")
    cur = await conn.execute(
        "SELECT t.value_date, t.kind, t.transaction_id,"
        "       coalesce(sum(p.amount_pence) FILTER (WHERE p.account = ANY(%s) AND p.amount_pence > 0"
        "                AND t.kind NOT IN ('incoming_payment', 'reversal', 'suspense_assignment')), 0) AS due,"
        "       coalesce(sum(p.amount_pence) FILTER (WHERE p.account = 'client_funds'"
        "                OR (p.account = 'suspense' AND t.kind = 'suspense_assignment')), 0) AS paid,"
        "       coalesce(sum(p.amount_pence) FILTER (WHERE p.account = ANY(%s)), 0) AS net"
        "  FROM transactions t JOIN postings p USING (transaction_id)"
        " WHERE t.case_id = %s AND t.kind IN ('period_charge', 'schedule_adjustment', 'enforcement_charge',"
        "       'incoming_payment', 'reversal', 'suspense_assignment') AND t.value_date <= %s"
        " GROUP BY t.transaction_id ORDER BY t.value_date, t.transaction_id",
        (list(owed_accounts), list(owed_accounts), case_id, end))
    opening, events = 0, []
    for on, kind, _tid, due, paid, net in await cur.fetchall():
        if kind == "schedule_adjustment":
            due = net
        if on < start:
            opening += int(net)
            continue
        events.append(LedgerEvent(on, kind, int(due), int(paid)))
    # Direct Pay: what fell due and what the receiving parent reported as received.
    cur = await conn.execute("SELECT due_date, due_pence, amount_pence FROM direct_pay_reports"
                             " WHERE case_id = %s AND due_date <= %s ORDER BY due_date, report_id", (case_id, end))
    for on, due, paid in await cur.fetchall():
        if on < start:
            opening += int(due) - int(paid)
            continue
        events.append(LedgerEvent(on, "direct_pay_due", due_pence=int(due)))
        if paid:
            events.append(LedgerEvent(on, "direct_pay_received", paid_pence=int(paid)))
    return opening, events


async def reconcile(conn: AsyncConnection, as_of: date, bank_balance_pence: int | None) -> dict[str, Any]:
    """Proves the books: every transaction balances and has its legs, the ledger sums to zero,
    client funds equal the bank movements (and the bank's own balance when given). Set-based
    SQL, so a million postings take seconds. Any difference is reported, with suspense items."""
    report: dict[str, Any] = {"as_of": as_of.isoformat()}
    cur = await conn.execute(
        "SELECT count(*), coalesce(sum(amount_pence), 0),"
        "       coalesce(sum(amount_pence) FILTER (WHERE account = 'client_funds'), 0),"
        "       coalesce(sum(amount_pence) FILTER (WHERE account = 'bank_clearing'), 0),"
        "       coalesce(-sum(amount_pence) FILTER (WHERE account = 'suspense'), 0),"
        "       coalesce(sum(amount_pence) FILTER (WHERE account = 'rp_overpaid'), 0)"
        "  FROM postings JOIN transactions USING (transaction_id) WHERE value_date <= %s", (as_of,))
    postings, total, client_funds, clearing, suspense, overpaid = (int(v) for v in await cur.fetchone())
    report.update(postings=postings, ledger_total_pence=total, client_funds_pence=client_funds,
                  bank_clearing_pence=clearing, suspense_pence=suspense, rp_overpaid_pence=overpaid)
    cur = await conn.execute(
        "SELECT t.idempotency_key, coalesce(s.total, 0), coalesce(s.legs, 0) FROM transactions t"
        "  LEFT JOIN (SELECT transaction_id, sum(amount_pence) AS total, count(*) AS legs FROM postings"
        "             GROUP BY transaction_id) s USING (transaction_id)"
        " WHERE t.value_date <= %s AND (s.legs IS NULL OR s.legs < 2 OR s.total <> 0) LIMIT 100", (as_of,))
    report["unbalanced_transactions"] = [{"key": k, "sum_pence": int(t), "legs": int(n)} for k, t, n in await cur.fetchall()]
    cur = await conn.execute("SELECT coalesce(sum(amount_pence), 0) FROM bank_movements WHERE value_date <= %s", (as_of,))
    movements = int((await cur.fetchone())[0])
    report["bank_movements_pence"] = movements
    report["bank_balance_pence"] = bank_balance_pence
    report["suspense_items"] = [{"bank_reference": i.bank_reference, "claimed_case_id": i.claimed_case_id,
                                 "amount_pence": i.amount_pence, "received_on": i.received_on.isoformat()}
                                for i in await suspense_items(conn, as_of)]
    # Maintenance passed to receiving parents and then returned by the bank (or no longer due),
    # not yet recovered from later collections: money the agency is owed back, per case.
    # Each case's rp_overpaid is never negative, so a zero total means none (and skips a scan).
    report["receiving_parent_overpayments"] = []
    if overpaid:
        cur = await conn.execute(
            "SELECT p.case_id, sum(p.amount_pence) FROM postings p JOIN transactions t USING (transaction_id)"
            " WHERE p.account = 'rp_overpaid' AND t.value_date <= %s GROUP BY p.case_id"
            " HAVING sum(p.amount_pence) <> 0 ORDER BY p.case_id LIMIT 100", (as_of,))
        report["receiving_parent_overpayments"] = [{"case_id": c, "amount_pence": int(a)} for c, a in await cur.fetchall()]
    differences = []
    if total != 0:
        differences.append(f"ledger does not sum to zero: {total} pence")
    if report["unbalanced_transactions"]:
        differences.append(f"{len(report['unbalanced_transactions'])} transactions do not balance")
    if client_funds != movements:
        differences.append(f"client funds {client_funds} pence differ from bank movements {movements} pence")
    if bank_balance_pence is not None and bank_balance_pence != movements:
        differences.append(f"bank balance {bank_balance_pence} pence differs from recorded movements {movements} pence")
    report["differences"] = differences
    report["ok"] = not differences
    return report


async def record_reconciliation(conn: AsyncConnection, report: dict[str, Any]) -> int:
    cur = await conn.execute("INSERT INTO reconciliation_runs (as_of, ok, report) VALUES (%s, %s, %s) RETURNING run_id",
                             (date.fromisoformat(report["as_of"]), report["ok"], Jsonb(report)))
    return (await cur.fetchone())[0]


@dataclass
class PeriodStatus:
    period_index: int
    due_date: date | None
    due_pence: int
    paid_pence: int

    @property
    def status(self) -> str:
        if self.paid_pence >= self.due_pence:
            return "paid"
        return "missed" if self.paid_pence <= 0 else "part_paid"


async def period_status(conn: AsyncConnection, case_id: str, period_index: int) -> PeriodStatus:
    cur = await conn.execute(
        "SELECT min(c.due_date), coalesce(sum(c.amount_pence), 0),"
        "       coalesce((SELECT sum(a.amount_pence) FROM allocations a JOIN charges c2 USING (charge_id)"
        "                  WHERE c2.case_id = %s AND c2.period_index = %s AND c2.component <> 'enforcement'), 0)"
        "  FROM charges c WHERE c.case_id = %s AND c.period_index = %s AND c.component <> 'enforcement'",
        (case_id, period_index, case_id, period_index))
    due_date, due, paid = await cur.fetchone()
    if due_date is None:
        raise NotFound(f"period {period_index} of case {case_id} has not been charged")
    return PeriodStatus(period_index, due_date, int(due), int(paid))
