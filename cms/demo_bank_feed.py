"""DEMO ONLY: the paying parents' bank for `make run`, so the demo shows money moving.

Never part of a production configuration: cms/stack.py starts it (`python -m cms.demo_bank_feed`
with CMS_DEMO_BANK_FEED=1) next to the services, and it refuses to run without that variable or
on the real calendar (CMS_SECONDS_PER_DAY of a day or more).

For each demo case on Collect & Pay it watches the periods the collection cycle charges
(PaymentsService.CheckPeriod) and, for each newly charged period, plays a paying parent: most pay
on the due date, some a few days late, some only half, a few not at all; now and then the bank
notifies a payment twice. The payments reach the service as a bank feed would deliver them,
through RecordIncomingPayment, from notifications made by services.payments.bank.FakeBank.

Its FakeBank is its own: the payments service's fake bank (behind the daily reconciliation's
"bank balance") does not see this money. Amounts and dates are invented; ids carry no personal data.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import time
from dataclasses import dataclass
from datetime import date, timedelta

import grpc
import structlog

from cms.config import Settings, load_settings
from cms.grpc_client import channel_with_token
from cms.log import configure_logging
from cms_proto.payments.v1 import payments_pb2 as pb
from cms_proto.payments.v1 import payments_pb2_grpc
from services.payments.bank import BankNotification, FakeBank

log = structlog.get_logger("demo_bank_feed")

ENABLE_ENV = "CMS_DEMO_BANK_FEED"
LATE_DAYS = 3            # a late payer pays this many case days after the due date
DUPLICATE_AFTER_DAYS = 1


@dataclass(frozen=True)
class Behaviour:
    """What one paying parent does about one instalment."""
    kind: str            # on_time | late | part | missed
    delay_days: int
    pays_half: bool
    duplicate: bool      # the bank notifies the payment a second time

    @property
    def pays(self) -> bool:
        return self.kind != "missed"


def choose_behaviour(rng: random.Random) -> Behaviour:
    roll = rng.random()
    duplicate = rng.random() < 0.15
    if roll < 0.70:
        return Behaviour("on_time", 0, False, duplicate)
    if roll < 0.82:
        return Behaviour("late", LATE_DAYS, False, duplicate)
    if roll < 0.94:
        return Behaviour("part", 0, True, duplicate)
    return Behaviour("missed", 0, False, False)


@dataclass(frozen=True)
class Delivery:
    send_at: float                   # event-loop time
    notification: BankNotification


def plan_instalment(bank: FakeBank, period: pb.PeriodStatus, behaviour: Behaviour, now: float,
                    seconds_per_day: float) -> list[Delivery]:
    """The bank notifications one charged period leads to, and when each is delivered."""
    owed = period.due_pence - period.paid_pence   # credit may already have settled some of it
    if not behaviour.pays or owed <= 0:
        return []
    amount = owed // 2 if behaviour.pays_half else owed
    if amount <= 0:
        return []
    paid_on = date.fromisoformat(period.due_date) + timedelta(days=behaviour.delay_days)
    method = "METHOD_CARD" if behaviour.kind == "late" else "METHOD_DIRECT_DEBIT"
    notification = bank.emit_payment(period.case_id, amount, paid_on, method)
    send_at = now + behaviour.delay_days * seconds_per_day
    deliveries = [Delivery(send_at, notification)]
    if behaviour.duplicate:
        deliveries.append(Delivery(send_at + DUPLICATE_AFTER_DAYS * seconds_per_day, notification))
    return deliveries


class DemoBankFeed:
    def __init__(self, stub: payments_pb2_grpc.PaymentsServiceStub, case_ids: list[str], seconds_per_day: float,
                 bank: FakeBank | None = None, rng: random.Random | None = None,
                 behaviour=choose_behaviour):
        self._stub = stub
        self._seconds_per_day = seconds_per_day
        # A seed per start: bank references stay unique across restarts of `make run`.
        self._bank = bank or FakeBank(seed=int(time.time()))
        self._rng = rng or random.Random(self._bank.seed)
        self._behaviour = behaviour
        self._next_period: dict[str, int | None] = {case_id: None for case_id in case_ids}
        self._pending: list[Delivery] = []

    async def _charged(self, case_id: str, index: int) -> pb.PeriodStatus | None:
        try:
            return await self._stub.CheckPeriod(pb.CheckPeriodRequest(case_id=case_id, period_index=index), timeout=10)
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                return None      # not charged yet (or no schedule yet)
            raise

    async def _first_unhandled(self, case_id: str) -> int:
        """After a restart, periods charged before it are history: start at the first uncharged."""
        index = 0
        while await self._charged(case_id, index) is not None:
            index += 1
        return index

    async def poll_once(self, now: float) -> None:
        for case_id, index in self._next_period.items():
            if index is None:
                index = self._next_period[case_id] = await self._first_unhandled(case_id)
            while (period := await self._charged(case_id, index)) is not None:
                behaviour = self._behaviour(self._rng)
                self._pending += plan_instalment(self._bank, period, behaviour, now, self._seconds_per_day)
                log.info("demo_instalment_planned", case_id=case_id, period_index=index, behaviour=behaviour.kind,
                         duplicate=behaviour.duplicate)
                index = self._next_period[case_id] = index + 1
        await self._deliver_due(now)

    async def _deliver_due(self, now: float) -> None:
        due = sorted((d for d in self._pending if d.send_at <= now), key=lambda d: d.send_at)
        for delivery in due:
            n = delivery.notification
            reply = await self._stub.RecordIncomingPayment(pb.RecordIncomingPaymentRequest(
                idempotency_key=n.bank_reference, case_id=n.case_reference, amount_pence=n.amount_pence,
                received_on=n.on.isoformat(), method=pb.Method.Value(n.method)), timeout=10)
            self._pending.remove(delivery)
            log.info("demo_payment_delivered", case_id=n.case_reference, bank_reference=n.bank_reference,
                     amount_pence=n.amount_pence, received_on=n.on.isoformat(), duplicate=reply.duplicate)

    @property
    def pending(self) -> list[Delivery]:
        return list(self._pending)

    @property
    def case_ids(self) -> list[str]:
        return list(self._next_period)


def demo_case_ids(settings: Settings) -> list[str]:
    """Every demo case: those not (or not yet) on Collect & Pay simply have no charged periods.
    Their ids are keyed with the case API's secret, which the stack hands this process too."""
    from cms.demo import demo_applications
    from services.case_api.case_ids import case_id_for, case_id_secret

    secret = case_id_secret(settings)
    return [case_id_for(request.idempotency_key, secret) for request in demo_applications(date.today())]


async def run_feed(settings: Settings, stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    tick = min(max(settings.seconds_per_day / 4, 0.5), 5.0)
    async with channel_with_token(settings.address_of("payments"), settings.service_token) as channel:
        feed = DemoBankFeed(payments_pb2_grpc.PaymentsServiceStub(channel), demo_case_ids(settings),
                            settings.seconds_per_day)
        log.info("demo_bank_feed_started", cases=len(feed.case_ids), seconds_per_day=settings.seconds_per_day)
        while not stop.is_set():
            try:
                await feed.poll_once(loop.time())
            except grpc.aio.AioRpcError as error:   # the service restarting: try again next tick
                log.warning("demo_bank_feed_paused", error=error.code().name)
            try:
                await asyncio.wait_for(stop.wait(), timeout=tick)
            except TimeoutError:
                pass


def main() -> None:
    settings = load_settings()
    if os.environ.get(ENABLE_ENV) != "1" or settings.seconds_per_day >= 86400:
        sys.exit(f"error: the demo bank feed invents payments; it runs only under `make run` "
                 f"({ENABLE_ENV}=1 and a fast CMS_SECONDS_PER_DAY)")
    configure_logging("demo_bank_feed")
    stop = asyncio.Event()

    async def runner() -> None:
        import signal

        for signum in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(signum, stop.set)
        await run_feed(settings, stop)

    asyncio.run(runner())


if __name__ == "__main__":
    main()
