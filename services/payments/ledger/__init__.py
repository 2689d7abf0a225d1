"""The ledger repository: PostgreSQL access for the payments schema, every function on the
caller's connection.

A write first *claims* its idempotency key (INSERT ... ON CONFLICT DO NOTHING RETURNING). If the
key was already claimed the first result is returned and nothing else happens; a different request
under the same key is refused (IdempotencyConflict). Work for one case is serialised with a
transaction-scoped advisory lock, so concurrent payments cannot allocate the same debt twice.
The database checks at COMMIT that each ledger transaction balances (see 0001_ledger.sql).

The caller owns the transaction. The modules' functions neither begin nor commit one: the
service layer opens `async with pool.connection() as conn, conn.transaction():` once per
request and passes `conn` down, so one business operation commits or rolls back as a whole.
A write on an autocommit connection outside a transaction is refused (NoTransaction): its lock
would be released at once and a failure could leave half of it.

  postings        headers under idempotency keys, legs, the case lock, bank movements
  debts           charge rows and their legs, what is outstanding
  allocations     money applied to debts, held credit, money released back into credit
  overpayments    maintenance passed on and then taken back (rp_overpaid), and its recovery
  schedules       schedule versions, and the adjustments a liability change posts
  charges         period charges and enforcement charges
  receipts        incoming payments (allocated, or held in suspense) and bank returns
  suspense        what is held in suspense, and assigning it to a case
  payouts         disbursement to the receiving parent: instructed, then settled
  direct_pay      the receiving parent's reports of Direct Pay payments
  queries         balance, statement, period status (the read side)
  reconciliation  proving the books, and recording each run
  outbox          the disbursement outbox the dispatcher drains
  figures         payments-wide figures for the gauges

The names below are the package's interface. Each write operation is offered here as a
transaction of its own, under its module function's name and signature (a savepoint when the
caller already has a transaction), for callers holding a bare connection: scripts, tests, the
bench. The service layer calls the modules' functions inside its own transaction instead.

Beyond the chart of accounts in services/payments/__init__.py (0002_ledger_operations.sql):
  rp_overpaid (debit)      maintenance passed to the receiving parent that a bank return or a
                           backdated decrease took back; recovered from later collections
Transaction kinds added there: suspense_assignment (suspense -> a case, `reverses` the unidentified
payment), rp_overpayment, overpayment_recovery, allocation_released (a decrease's excess -> credit).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, TypeVar

from psycopg import AsyncConnection

from . import charges, direct_pay, payouts, receipts, schedules, suspense
from .debts import outstanding_debts
from .payouts import payable_to_receiving_parent
from .postings import (
    BANK_CLEARING,
    CLIENT_FUNDS,
    SUSPENSE,
    IdempotencyConflict,
    Leg,
    NotFound,
    NoTransaction,
    Posted,
    Precondition,
    add_legs,
    claim,
    find_posted,
    fingerprint,
    lock_case,
)
from .queries import CaseBalance, PeriodStatus, balance, period_status, statement_events
from .receipts import IncomingPayment
from .reconciliation import reconcile, record_reconciliation
from .schedules import ScheduleRequest, ScheduleRow, current_schedule
from .suspense import SuspenseItem, suspense_items

_P = ParamSpec("_P")
_R = TypeVar("_R")


def in_own_transaction(
    operation: Callable[Concatenate[AsyncConnection, _P], Awaitable[_R]],
) -> Callable[Concatenate[AsyncConnection, _P], Coroutine[Any, Any, _R]]:
    """`operation` as a transaction of its own: begun before it, committed after it, rolled back
    if it raises (a savepoint when the connection is already in a transaction)."""
    @functools.wraps(operation)
    async def in_transaction(conn: AsyncConnection, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        async with conn.transaction():
            return await operation(conn, *args, **kwargs)
    return in_transaction


create_schedule = in_own_transaction(schedules.create_schedule)
stop_schedule = in_own_transaction(schedules.stop_schedule)
charge_period = in_own_transaction(charges.charge_period)
post_enforcement_charge = in_own_transaction(charges.post_enforcement_charge)
record_incoming_payment = in_own_transaction(receipts.record_incoming_payment)
record_return = in_own_transaction(receipts.record_return)
assign_suspense = in_own_transaction(suspense.assign_suspense)
start_disbursement = in_own_transaction(payouts.start_disbursement)
settle_disbursement = in_own_transaction(payouts.settle_disbursement)
report_direct_payment = in_own_transaction(direct_pay.report_direct_payment)

__all__ = [
    "BANK_CLEARING", "CLIENT_FUNDS", "SUSPENSE", "CaseBalance", "IdempotencyConflict", "IncomingPayment",
    "Leg", "NoTransaction", "NotFound", "PeriodStatus", "Posted", "Precondition", "ScheduleRequest",
    "ScheduleRow", "SuspenseItem", "add_legs", "assign_suspense", "balance", "charge_period", "claim",
    "create_schedule", "current_schedule", "find_posted", "fingerprint", "in_own_transaction", "lock_case",
    "outstanding_debts", "payable_to_receiving_parent", "period_status", "post_enforcement_charge",
    "reconcile", "record_incoming_payment", "record_reconciliation", "record_return", "report_direct_payment",
    "settle_disbursement", "start_disbursement", "statement_events", "stop_schedule", "suspense_items",
]
