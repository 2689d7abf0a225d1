"""Statements both parents can read: what fell due, what was paid, the running balance.

Lines carry no bank references, methods' account details, addresses or names, so one statement
is safe to send to either parent (safeguarding, docs/design.md, Security and safeguarding); the redaction mechanism still applies
to anything else sent alongside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from domain.money import format_pence


@dataclass(frozen=True)
class LedgerEvent:
    on: date
    kind: str            # period_charge | schedule_adjustment | enforcement_charge | incoming_payment | reversal
                         # | suspense_assignment
    due_pence: int = 0   # added to what the paying parent owes
    paid_pence: int = 0  # money received from the paying parent


@dataclass(frozen=True)
class StatementLine:
    on: date
    description: str
    due_pence: int
    paid_pence: int
    balance_pence: int   # owed after this line (negative = in credit)


_DESCRIPTIONS = {
    "period_charge": "Maintenance and collection fee due",
    "schedule_adjustment": "Adjustment after a change to the calculation",
    "enforcement_charge": "Enforcement charge",
    "incoming_payment": "Payment received",
    "reversal": "Payment returned by the bank",
    "suspense_assignment": "Payment received (matched to this case later)",
    "direct_pay_due": "Direct Pay payment due",
    "direct_pay_received": "Direct Pay payment reported received",
}


def statement_lines(events: list[LedgerEvent], opening_balance_pence: int = 0) -> list[StatementLine]:
    balance = opening_balance_pence
    lines = []
    for event in sorted(events, key=lambda e: e.on):  # stable: same-day events keep ledger order
        balance += event.due_pence - event.paid_pence
        lines.append(StatementLine(event.on, _DESCRIPTIONS.get(event.kind, event.kind.replace("_", " ")),
                                   event.due_pence, event.paid_pence, balance))
    return lines


def render_text(case_id: str, lines: list[StatementLine]) -> str:
    rows = [f"Statement for case {case_id}", f"{'Date':<12}{'Description':<48}{'Due':>12}{'Paid':>12}{'Balance':>12}"]
    for line in lines:
        rows.append(f"{line.on.isoformat():<12}{line.description:<48}{format_pence(line.due_pence):>12}"
                    f"{format_pence(line.paid_pence):>12}{format_pence(line.balance_pence):>12}")
    closing = lines[-1].balance_pence if lines else 0
    rows.append(f"Balance owed: {format_pence(closing)}" if closing >= 0 else f"In credit: {format_pence(-closing)}")
    return "\n".join(rows)
