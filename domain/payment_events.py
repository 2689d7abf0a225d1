"""Payment events payments reports to a case (a missed or part payment): what makes one unusable.

A case takes facts about money only from payments, and only whole ones: a report for another
case, of an unknown kind, without an id to drop a repeated delivery by, or with amounts that are
not whole non-negative pence is ignored (and logged) rather than put in the case's record.
"""

from __future__ import annotations

from typing import Protocol

PAYMENT_EVENT_KINDS = ("missed", "part_paid", "direct_pay_missed")


class PaymentEventFacts(Protocol):
    """What the check reads of an event (read-only, so frozen records qualify too)."""

    @property
    def event_id(self) -> str: ...
    @property
    def case_id(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def due_pence(self) -> int: ...
    @property
    def paid_pence(self) -> int: ...
    @property
    def arrears_pence(self) -> int: ...


def payment_event_problem(event: PaymentEventFacts, case_id: str, case_closed: bool) -> str:
    """What makes `event` unusable for case `case_id` ("" when nothing does)."""
    if event.case_id != case_id:
        return "event for another case"
    if event.kind not in PAYMENT_EVENT_KINDS:
        return f"unknown kind {event.kind!r}"
    if not event.event_id:
        return "no event_id"
    amounts = (event.due_pence, event.paid_pence, event.arrears_pence)
    if any(type(value) is not int or value < 0 for value in amounts):
        return "amounts must be whole non-negative pence"
    if case_closed:
        return "the case is closed"
    return ""
