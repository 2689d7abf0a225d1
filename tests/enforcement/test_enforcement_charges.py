"""Each enforcement charge is posted once, even when the posting activity is retried after
payments has already taken it (the answer was lost): the key is the workflow's and the step's."""

from __future__ import annotations

import pytest
from temporalio import activity

from activities.payments_messages import EnforcementChargeRequest, PostingOutcome
from tests.enforcement.enforcement_helpers import (
    charges_in_ledger,
    enforcement_input,
    fail_step,
    next_case_id,
    start,
    until,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

attempts: list[tuple[str, int, bool]] = []


@pytest.fixture
def payment_activity_wrapper():
    """The real posting, followed on its first attempt by a lost answer (the activity fails after
    payments has committed), so Temporal retries it."""

    def wrap(activities):
        real = next(a for a in activities if getattr(a, "__name__", "") == "post_enforcement_charge")

        @activity.defn(name="post_enforcement_charge")
        async def post_then_lose_the_answer(request: EnforcementChargeRequest) -> PostingOutcome:
            outcome = await real(request)
            attempt = activity.info().attempt
            attempts.append((request.charge_kind, attempt, outcome.duplicate))
            if attempt == 1:
                raise RuntimeError("connection reset after the posting")
            return outcome

        return [a for a in activities if a is not real] + [post_then_lose_the_answer]

    return wrap


async def test_each_charge_is_posted_once_across_retries(enforcement_env):
    case_id = next_case_id()
    handle = await start(enforcement_env, enforcement_input(case_id, employed=False, requested=20_000))
    await fail_step(handle, "regular_deduction_order")
    await fail_step(handle, "lump_sum_deduction_order")
    status = await until(handle, lambda s: s.steps[-1].step == "liability_order", "the liability order")
    assert status.charges_posted_pence == 25_000 == await charges_in_ledger(enforcement_env, case_id)
    assert attempts == [("regular_deduction_order", 1, False), ("regular_deduction_order", 2, True),
                        ("lump_sum_deduction_order", 1, False), ("lump_sum_deduction_order", 2, True)]
