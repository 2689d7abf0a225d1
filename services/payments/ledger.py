"""The ledger repository: every write is one PostgreSQL transaction, all-or-nothing.

A write first *claims* its idempotency key (INSERT ... ON CONFLICT DO NOTHING RETURNING). If the
key was already claimed the first result is returned and nothing else happens; a different request
under the same key is refused (IdempotencyConflict). Work for one case is serialised with a
transaction-scoped advisory lock, so concurrent payments cannot allocate the same debt twice.
The database checks at COMMIT that each ledger transaction balances (see 0001_ledger.sql).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from domain.payments.allocation import ENFORCEMENT, FEE, MAINTENANCE, Debt, allocate
from domain.payments.fees import receiving_parent_fee
from domain.payments.schedule import Frequency, Rate, adjustments, instalment, period_containing, rates_after_change
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
    first_start: date
    due_offset_days: int
    rates: tuple[Rate, ...]
    rule_set_id: str
    decision_ref: str | None


def _rates_json(rates: tuple[Rate, ...]) -> list[dict]:
    return [{"effective_from": r.effective_from.isoformat(), "weekly_pence": r.weekly_pence,
             "weekly_fee_pence": r.weekly_fee_pence} for r in rates]


def _rates_from(raw: list[dict]) -> tuple[Rate, ...]:
    return tuple(Rate(date.fromisoformat(r["effective_from"]), r["weekly_pence"], r["weekly_fee_pence"])
                 for r in raw)


_SCHEDULE_COLUMNS = ("schedule_id, case_id, version, service_type, frequency, method, first_start, "
                     "due_offset_days, rates, rule_set_id, decision_ref")


def _schedule_from(row) -> ScheduleRow:
    return ScheduleRow(row[0], row[1], row[2], row[3], Frequency(row[4]), row[5], row[6], row[7],
                       _rates_from(row[8]), row[9], row[10])


async def current_schedule(conn: AsyncConnection, case_id: str) -> ScheduleRow | None:
    cur = await conn.execute(f"SELECT {_SCHEDULE_COLUMNS} FROM schedules WHERE case_id = %s "
                             "ORDER BY version DESC LIMIT 1", (case_id,))
    row = await cur.fetchone()
    return None if row is None else _schedule_from(row)


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
    and each period already charged gets an adjustment (new − old) in one ledger transaction.
    Returns (schedule, duplicate, adjustments posted)."""
    request = {**asdict(req), "frequency": req.frequency.value}
    fp = fingerprint(request)
    async with conn.transaction():
        await lock_case(conn, req.case_id)
        cur = await conn.execute(f"SELECT {_SCHEDULE_COLUMNS}, fingerprint FROM schedules WHERE idempotency_key = %s",
                                 (req.idempotency_key,))
        row = await cur.fetchone()
        if row is not None:
            if row[-1] != fp:
                raise IdempotencyConflict(f"idempotency key {req.idempotency_key!r} was already used for a different schedule")
            return _schedule_from(row[:-1]), True, []
        old = await current_schedule(conn, req.case_id)
        change = Rate(req.effective_date, req.weekly_pence, req.weekly_fee_pence)
        if old is None:
            new_rates, first_start, frequency, offset, version = (change,), req.effective_date, req.frequency, req.due_offset_days, 1
        else:
            if req.effective_date < old.first_start:
                raise Precondition("effective_date is before the schedule started")
            if req.frequency != old.frequency:
                raise Precondition("a schedule's frequency cannot change with a liability change; "
                                   "create the new frequency from a period start instead")
            new_rates = rates_after_change(old.rates, change)
            first_start, frequency, offset, version = old.first_start, old.frequency, old.due_offset_days, old.version + 1
        cur = await conn.execute(
            "INSERT INTO schedules (idempotency_key, fingerprint, case_id, version, service_type, frequency, method,"
            " first_start, due_offset_days, rates, rule_set_id, decision_ref)"
            " VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) RETURNING " + _SCHEDULE_COLUMNS,
            (req.idempotency_key, fp, req.case_id, version, req.service_type, frequency.value, req.method,
             first_start, offset, Jsonb(_rates_json(new_rates)), req.rule_set_id, req.decision_ref),
        )
        schedule = _schedule_from(await cur.fetchone())
        posted: list = []
        if old is not None:
            cur = await conn.execute("SELECT DISTINCT period_index FROM charges WHERE case_id = %s AND charge_kind = 'period'",
                                     (req.case_id,))
            charged = [r[0] for r in await cur.fetchall()]
            posted = adjustments(frequency, first_start, old.rates, new_rates, charged, offset)
            if posted:
                await _post_adjustments(conn, req, posted)
        return schedule, False, posted


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
        due = instalment(schedule.frequency, schedule.first_start, schedule.rates, period_index, schedule.due_offset_days)
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
        await _apply_credit(conn, schedule, case_id, period_index, due.period.due_date)
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


async def _apply_credit(conn: AsyncConnection, schedule: ScheduleRow, case_id: str, period_index: int, on: date) -> None:
    """Money paid in advance settles a new charge as soon as it is posted."""
    cur = await conn.execute("SELECT coalesce(-sum(amount_pence), 0) FROM postings WHERE case_id = %s AND account = 'pp_credit'",
                             (case_id,))
    credit = int((await cur.fetchone())[0])
    if credit <= 0:
        return
    debts = await outstanding_debts(conn, case_id)
    allocations, left = allocate(credit, debts, _current_due_date(debts, on))
    if not allocations:
        return
    legs, detail = _allocation_legs(case_id, allocations, schedule)
    detail.update(account="pp_credit", amount_pence=credit - left)
    header = await claim(conn, f"credit-applied/{case_id}/{period_index}", {"case_id": case_id, "period_index": period_index},
                         kind="credit_applied", case_id=case_id, value_date=on, detail=detail)
    await add_legs(conn, header.transaction_id, legs + [Leg("pp_credit", credit - left, case_id)])
    await _insert_allocations(conn, header.transaction_id, allocations)


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
    """The bank returned a payment (e.g. a direct debit bounced): reverse its legs and allocations."""
    request = {"original": original_reference}
    async with conn.transaction():
        cur = await conn.execute("SELECT transaction_id, case_id, detail FROM transactions WHERE idempotency_key = %s",
                                 (original_reference,))
        original = await cur.fetchone()
        if original is None:
            raise NotFound(f"no payment with bank reference {original_reference!r}")
        if original[1]:
            await lock_case(conn, original[1])
        amount = int(original[2].get("amount_pence", 0))
        detail = {"account": "reversal", "reverses": original_reference, "amount_pence": amount}
        header = await claim(conn, key, request, kind="reversal", case_id=original[1], value_date=on,
                             detail=detail, reverses=original[0])
        if header.duplicate:
            return header
        cur = await conn.execute("SELECT account, amount_pence, case_id FROM postings WHERE transaction_id = %s", (original[0],))
        await add_legs(conn, header.transaction_id, [Leg(a, -v, c) for a, v, c in await cur.fetchall()])
        await conn.execute("INSERT INTO allocations (transaction_id, charge_id, amount_pence)"
                           " SELECT %s, charge_id, -amount_pence FROM allocations WHERE transaction_id = %s",
                           (header.transaction_id, original[0]))
        await _bank_movement(conn, key, -amount, on, header.transaction_id)
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
        if due_date < schedule.first_start:
            raise Precondition("due_date is before the schedule started")
        index = period_containing(schedule.frequency, schedule.first_start, due_date)
        due = instalment(schedule.frequency, schedule.first_start, schedule.rates, index, schedule.due_offset_days).amount_pence
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


async def balance(conn: AsyncConnection, case_id: str, as_of: date) -> CaseBalance:
    schedule = await current_schedule(conn, case_id)
    if schedule is None:
        raise NotFound(f"case {case_id} has no schedule")
    if schedule.service_type == "direct_pay":
        cur = await conn.execute("SELECT coalesce(sum(due_pence - amount_pence), 0), coalesce(sum(amount_pence), 0)"
                                 " FROM direct_pay_reports WHERE case_id = %s AND due_date <= %s", (case_id, as_of))
        arrears, paid = (int(v) for v in await cur.fetchone())
        enforcement = credit = payable = 0
    else:
        cur = await conn.execute(
            "SELECT coalesce(sum(amount_pence) FILTER (WHERE component <> 'enforcement'), 0),"
            "       coalesce(sum(amount_pence) FILTER (WHERE component = 'enforcement'), 0) FROM ("
            "  SELECT c.component, c.amount_pence FROM charges c WHERE c.case_id = %s AND c.due_date <= %s"
            "  UNION ALL SELECT c.component, -a.amount_pence FROM allocations a JOIN charges c USING (charge_id)"
            "   WHERE c.case_id = %s AND c.due_date <= %s) owed", (case_id, as_of, case_id, as_of))
        arrears, enforcement = (int(v) for v in await cur.fetchone())
        cur = await conn.execute(
            "SELECT coalesce(sum(p.amount_pence) FILTER (WHERE p.account = 'client_funds'"
            "         AND t.kind IN ('incoming_payment', 'reversal')), 0),"
            "       coalesce(-sum(p.amount_pence) FILTER (WHERE p.account = 'pp_credit'), 0),"
            "       coalesce(-sum(p.amount_pence) FILTER (WHERE p.account = 'rp_payable'), 0)"
            "  FROM transactions t JOIN postings p USING (transaction_id)"
            " WHERE t.case_id = %s", (case_id,))
        paid, credit, payable = (int(v) for v in await cur.fetchone())
        if credit < 0:   # a returned payment whose credit had already been applied: owed again
            arrears, credit = arrears - credit, 0
    next_due, next_amount = _next_payment(schedule, as_of)
    return CaseBalance(case_id, schedule.service_type, arrears, enforcement, credit, paid, payable, next_due, next_amount)


def _next_payment(schedule: ScheduleRow, as_of: date) -> tuple[date | None, int]:
    index = period_containing(schedule.frequency, schedule.first_start, max(as_of, schedule.first_start))
    for candidate in (index, index + 1):
        due = instalment(schedule.frequency, schedule.first_start, schedule.rates, candidate, schedule.due_offset_days)
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
        "                AND t.kind NOT IN ('incoming_payment', 'reversal')), 0) AS due,"
        "       coalesce(sum(p.amount_pence) FILTER (WHERE p.account = 'client_funds'), 0) AS paid,"
        "       coalesce(sum(p.amount_pence) FILTER (WHERE p.account = ANY(%s)), 0) AS net"
        "  FROM transactions t JOIN postings p USING (transaction_id)"
        " WHERE t.case_id = %s AND t.kind IN ('period_charge', 'schedule_adjustment', 'enforcement_charge',"
        "       'incoming_payment', 'reversal') AND t.value_date <= %s"
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
        "       coalesce(-sum(amount_pence) FILTER (WHERE account = 'suspense'), 0)"
        "  FROM postings JOIN transactions USING (transaction_id) WHERE value_date <= %s", (as_of,))
    postings, total, client_funds, clearing, suspense = (int(v) for v in await cur.fetchone())
    report.update(postings=postings, ledger_total_pence=total, client_funds_pence=client_funds,
                  bank_clearing_pence=clearing, suspense_pence=suspense)
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
    cur = await conn.execute(
        "SELECT t.idempotency_key, t.detail->>'claimed_case_id', (t.detail->>'amount_pence')::bigint, t.value_date"
        "  FROM transactions t WHERE t.kind = 'unidentified_payment' AND t.value_date <= %s"
        "   AND NOT EXISTS (SELECT 1 FROM transactions r WHERE r.reverses = t.transaction_id)"
        " ORDER BY t.value_date LIMIT 100", (as_of,))
    report["suspense_items"] = [{"bank_reference": k, "claimed_case_id": c, "amount_pence": int(a), "received_on": d.isoformat()}
                                for k, c, a, d in await cur.fetchall()]
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
