"""The bank adapter: a Protocol a real bank file or API implements, and a local fake for dev/tests.

Incoming notifications (payments from paying parents, returns) are *pushed* to the payments
service's RecordIncomingPayment / RecordBankReturn by whoever reads the bank's feed; outgoing
payments to receiving parents go through `send_payment`, which must be idempotent by reference.
The fake keeps its own statement, so reconciliation compares the ledger with what "the bank" says.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from datetime import date
from typing import Protocol


@dataclass(frozen=True)
class BankNotification:
    kind: str                 # payment | return
    bank_reference: str
    case_reference: str       # what the payer quoted: our case id, possibly wrong or missing
    amount_pence: int
    on: date
    method: str = "METHOD_DIRECT_DEBIT"
    original_reference: str = ""   # for returns


@dataclass(frozen=True)
class OutgoingPayment:
    bank_reference: str
    amount_pence: int
    on: date


class BankAdapter(Protocol):
    def send_payment(self, bank_reference: str, amount_pence: int, on: date) -> OutgoingPayment:
        """Instructs a payment out of the client funds account; idempotent by reference."""

    def closing_balance(self, as_of: date) -> int | None:
        """The client funds account balance per the bank's statement (None: not available)."""


@dataclass
class FakeBank:
    """An in-memory bank. `emit_*` create the bank's side of a movement and return the
    notification(s) the bank would send; `deliveries` replays them with duplicates and shuffling."""
    seed: int = 0
    statement: dict[str, tuple[int, date]] = field(default_factory=dict)
    # False for the payments service's own fake in development: payments reach it from elsewhere
    # (the demo bank feed has a FakeBank of its own), so its statement would hold only what it
    # sent out and reconciliation would report a difference that is not there.
    reports_balance: bool = True
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _counter: int = 0

    def _reference(self, prefix: str) -> str:
        self._counter += 1
        return f"{prefix}-{self.seed}-{self._counter:08d}"

    def emit_payment(self, case_reference: str, amount_pence: int, on: date,
                     method: str = "METHOD_DIRECT_DEBIT") -> BankNotification:
        with self._lock:
            reference = self._reference("IN")
            self.statement[reference] = (amount_pence, on)
        return BankNotification("payment", reference, case_reference, amount_pence, on, method)

    def emit_return(self, original: BankNotification, on: date) -> BankNotification:
        with self._lock:
            reference = self._reference("RET")
            self.statement[reference] = (-original.amount_pence, on)
        return BankNotification("return", reference, original.case_reference, original.amount_pence, on,
                                original.method, original.bank_reference)

    def deliveries(self, notifications: list[BankNotification], duplicate_share: float = 0.3,
                   shuffle: bool = True) -> list[BankNotification]:
        """At-least-once, out-of-order delivery as real bank feeds do (returns still follow
        their payment: a bank cannot return what it has not yet reported)."""
        rng = random.Random(self.seed)
        delivered = [n for n in notifications for _ in range(2 if rng.random() < duplicate_share else 1)]
        if shuffle:
            rng.shuffle(delivered)
            first_seen: dict[str, int] = {}
            for position, n in enumerate(delivered):
                first_seen.setdefault(n.bank_reference, position)
            delivered.sort(key=lambda n: (first_seen.get(n.original_reference, -1) if n.kind == "return" else -1,
                                          first_seen[n.bank_reference]))
        return delivered

    def send_payment(self, bank_reference: str, amount_pence: int, on: date) -> OutgoingPayment:
        with self._lock:
            self.statement.setdefault(bank_reference, (-amount_pence, on))
            amount, day = self.statement[bank_reference]
        return OutgoingPayment(bank_reference, -amount, day)

    def closing_balance(self, as_of: date) -> int | None:
        if not self.reports_balance:
            return None
        with self._lock:
            return sum(amount for amount, on in self.statement.values() if on <= as_of)
