"""The demo bank feed (cms/demo_bank_feed.py, `make run` only) pays charged periods the way its
paying parent behaves, through the real payments service: on time, late, half, not at all, and
a duplicate notification that posts once."""

import random

import pytest

from cms.config import load_settings
from cms.demo_bank_feed import Behaviour, DemoBankFeed, choose_behaviour, demo_case_ids
from cms_proto.payments.v1 import payments_pb2 as pb
from tests.payments.payments_helpers import new_schedule

session_loop = pytest.mark.asyncio(loop_scope="session")

SECONDS_PER_DAY = 10.0   # the feed is driven by explicit loop times here: nothing sleeps

ON_TIME_TWICE_NOTIFIED = Behaviour("on_time", 0, pays_half=False, duplicate=True)
LATE = Behaviour("late", 3, pays_half=False, duplicate=False)
HALF = Behaviour("part", 0, pays_half=True, duplicate=False)
MISSED = Behaviour("missed", 0, pays_half=False, duplicate=False)


async def statuses(stub, case_id: str, periods: int) -> list[str]:
    return [(await stub.CheckPeriod(pb.CheckPeriodRequest(case_id=case_id, period_index=n))).status
            for n in range(periods)]


@session_loop
async def test_the_feed_pays_each_charged_period_as_its_parent_behaves(payments_stub, fake_bank, case_id) -> None:
    await new_schedule(payments_stub, case_id)     # weekly £50 + £10 fee from Monday 5 January 2026
    behaviours = iter([ON_TIME_TWICE_NOTIFIED, LATE, HALF, MISSED])
    feed = DemoBankFeed(payments_stub, [case_id], SECONDS_PER_DAY, bank=fake_bank,
                        behaviour=lambda rng: next(behaviours))
    await feed.poll_once(now=0)
    assert feed.pending == []                      # nothing charged yet, nothing paid

    for n in range(4):
        await payments_stub.ChargePeriod(pb.ChargePeriodRequest(case_id=case_id, period_index=n))
    await feed.poll_once(now=100)
    assert await statuses(payments_stub, case_id, 4) == ["paid", "missed", "part_paid", "missed"]
    # Still to come: the duplicate notice a day later, the late payment three days later.
    assert sorted((d.send_at, d.notification.on.isoformat()) for d in feed.pending) == [
        (110.0, "2026-01-05"), (130.0, "2026-01-15")]

    await feed.poll_once(now=135)
    assert feed.pending == []
    assert await statuses(payments_stub, case_id, 4) == ["paid", "paid", "part_paid", "missed"]
    balance = await payments_stub.GetBalance(pb.GetBalanceRequest(case_id=case_id, as_of="2026-01-26"))
    assert balance.paid_to_date_pence == 6000 + 6000 + 3000       # the duplicate posted once
    assert balance.arrears_pence == 3000 + 6000


@session_loop
async def test_a_restarted_feed_leaves_periods_charged_before_it_alone(payments_stub, fake_bank, case_id) -> None:
    await new_schedule(payments_stub, case_id)
    for n in range(2):
        await payments_stub.ChargePeriod(pb.ChargePeriodRequest(case_id=case_id, period_index=n))
    feed = DemoBankFeed(payments_stub, [case_id], SECONDS_PER_DAY, bank=fake_bank,
                        behaviour=lambda rng: ON_TIME_TWICE_NOTIFIED)
    await feed.poll_once(now=0)
    assert feed.pending == []
    await payments_stub.ChargePeriod(pb.ChargePeriodRequest(case_id=case_id, period_index=2))
    await feed.poll_once(now=1)
    assert await statuses(payments_stub, case_id, 3) == ["missed", "missed", "paid"]


def test_most_parents_pay_on_time_and_every_kind_of_behaviour_occurs() -> None:
    rng = random.Random(3)
    kinds = [choose_behaviour(rng).kind for _ in range(1000)]
    assert {kind: kinds.count(kind) > 0 for kind in ("on_time", "late", "part", "missed")} == dict.fromkeys(
        ("on_time", "late", "part", "missed"), True)
    assert kinds.count("on_time") > 600


@session_loop
async def test_a_case_without_charged_periods_is_left_alone(payments_stub, fake_bank, case_id) -> None:
    await new_schedule(payments_stub, case_id, fee=0, service_type="direct_pay")
    feed = DemoBankFeed(payments_stub, [case_id, f"{case_id}-no-schedule"], SECONDS_PER_DAY, bank=fake_bank,
                        behaviour=lambda rng: ON_TIME_TWICE_NOTIFIED)
    movements_before = len(fake_bank.statement)
    await feed.poll_once(now=0)
    await feed.poll_once(now=1000)
    assert feed.pending == []
    assert len(fake_bank.statement) == movements_before    # the bank emitted nothing for them


def test_the_feed_watches_every_demo_case() -> None:
    assert len(set(demo_case_ids(load_settings()))) == 7
