"""Stands in for CaseWorkflow in payment workflow tests: the same signal name and argument type.
Its own module, with only sandbox-safe imports."""

from __future__ import annotations

from dataclasses import dataclass, field

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.payments import PaymentEvent


@dataclass
class Received:
    events: list[PaymentEvent] = field(default_factory=list)


@workflow.defn(name="PaymentEventsStubWorkflow")
class CaseStub:
    def __init__(self) -> None:
        self._events: list[PaymentEvent] = []

    @workflow.run
    async def run(self, expected: int) -> Received:
        await workflow.wait_condition(lambda: len(self._events) >= expected)
        return Received(self._events)

    @workflow.signal(name="payment_event")
    def payment_event(self, event: PaymentEvent) -> None:
        self._events.append(event)
