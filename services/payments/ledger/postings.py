"""Double-entry primitives: a transaction header claimed under its idempotency key, its legs, the
case lock, bank movements, and looking transactions up.

Everything here runs on the caller's connection, inside the caller's transaction. The case lock
is a transaction-scoped advisory lock and the balance check runs at COMMIT, so both are only
meaningful inside a transaction: `require_transaction` refuses to work without one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date
from typing import Any, LiteralString

from psycopg import AsyncConnection
from psycopg.abc import Params
from psycopg.pq import TransactionStatus
from psycopg.types.json import Jsonb

SUSPENSE = "suspense"
CLIENT_FUNDS = "client_funds"
BANK_CLEARING = "bank_clearing"


class IdempotencyConflict(Exception):
    """The idempotency key was used before for a different request."""


class NotFound(Exception):
    pass


class Precondition(Exception):
    pass


class NoTransaction(RuntimeError):
    """A ledger write was called in autocommit mode outside a transaction: its lock would not hold."""


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


def require_transaction(conn: AsyncConnection) -> None:
    """Refuses an autocommit connection outside a transaction block: each statement would commit
    on its own, the advisory lock would be released at once and a failure half-way would leave
    half a posting. (Without autocommit, psycopg begins a transaction that the caller commits.)"""
    if conn.autocommit and conn.info.transaction_status != TransactionStatus.INTRANS:
        raise NoTransaction("ledger writes run inside the caller's transaction: "
                            "`async with conn.transaction():` around the call")


def fingerprint(request: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(request, sort_keys=True, default=str).encode()).hexdigest()


async def lock_case(conn: AsyncConnection, case_id: str) -> None:
    """Serialises work on one case until the caller's transaction ends."""
    await lock(conn, case_id)


async def lock(conn: AsyncConnection, name: str) -> None:
    """A transaction-scoped advisory lock on `name` (a case id, or e.g. `bank-reference:<ref>`)."""
    require_transaction(conn)
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 6))", (f"payments:{name}",))


async def claim(conn: AsyncConnection, key: str, request: dict[str, Any], *, kind: str,
                case_id: str | None, value_date: date, detail: dict[str, Any] | None = None,
                decision_ref: str | None = None, reverses: int | None = None) -> Posted:
    """Inserts the transaction header, or finds the one already posted under `key`.

    When two requests race on one key, the second INSERT waits on the unique index until the
    first commits, then finds its row: either way exactly one header exists."""
    require_transaction(conn)
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
    if found is None:   # ON CONFLICT met a committed row under this key, and transactions are never deleted
        raise RuntimeError(f"idempotency key {key!r} conflicted, yet no transaction holds it")
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


async def record_bank_movement(conn: AsyncConnection, reference: str, amount: int, on: date,
                               transaction_id: int) -> None:
    await conn.execute("INSERT INTO bank_movements (bank_reference, amount_pence, value_date, transaction_id)"
                       " VALUES (%s, %s, %s, %s)", (reference, amount, on, transaction_id))


async def aggregate_row(conn: AsyncConnection, query: LiteralString, params: Params | None = None) -> tuple[Any, ...]:
    """The row of an aggregate query without GROUP BY, which SQL always answers with exactly one."""
    cur = await conn.execute(query, params)
    row = await cur.fetchone()
    if row is None:
        raise RuntimeError(f"an aggregate query returned no row: {query}")
    return row


async def sum_of(conn: AsyncConnection, query: LiteralString, params: Params) -> int:
    """The one total an aggregate query answers (the query coalesces an empty sum to 0)."""
    return int((await aggregate_row(conn, query, params))[0])


async def account_balance(conn: AsyncConnection, case_id: str, account: str, *, credit_side: bool) -> int:
    """A case account's balance: positive on its normal side (credit side for liabilities to people)."""
    total = await sum_of(conn, "SELECT coalesce(sum(amount_pence), 0) FROM postings WHERE case_id = %s AND account = %s",
                         (case_id, account))
    return -total if credit_side else total


@dataclass
class LedgerTransaction:
    transaction_id: int
    kind: str
    case_id: str | None
    detail: dict[str, Any]
    value_date: date


async def transaction_by_key(conn: AsyncConnection, key: str) -> LedgerTransaction | None:
    cur = await conn.execute("SELECT transaction_id, kind, case_id, detail, value_date FROM transactions"
                             " WHERE idempotency_key = %s", (key,))
    row = await cur.fetchone()
    return None if row is None else LedgerTransaction(*row)


async def reversed_by(conn: AsyncConnection, transaction_id: int) -> LedgerTransaction | None:
    """The one transaction (a return, or a suspense assignment) that reverses this one, if any."""
    cur = await conn.execute("SELECT transaction_id, kind, case_id, detail, value_date FROM transactions"
                             " WHERE reverses = %s", (transaction_id,))
    row = await cur.fetchone()
    return None if row is None else LedgerTransaction(*row)


async def legs_of(conn: AsyncConnection, transaction_id: int) -> list[tuple[str, int, str | None]]:
    cur = await conn.execute("SELECT account, amount_pence, case_id FROM postings WHERE transaction_id = %s"
                             " ORDER BY posting_id", (transaction_id,))
    return [(a, int(v), c) for a, v, c in await cur.fetchall()]
