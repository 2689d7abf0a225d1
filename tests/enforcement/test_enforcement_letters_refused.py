"""A letter notifications will never accept does not stop enforcement: a caseworker is asked to
check and resend it, and the ladder goes on."""

from __future__ import annotations

import pytest
from temporalio.exceptions import ApplicationError

from activities.case_messages import CaseNotice
from tests.enforcement.enforcement_helpers import enforcement_input, next_case_id, start, step_open, until

pytestmark = pytest.mark.asyncio(loop_scope="session")


class RefusingLetters:
    async def send_all(self, notices: list[CaseNotice]) -> None:
        raise ApplicationError(f"no template {notices[0].template}", type="InvalidNotification", non_retryable=True)


@pytest.fixture
def letters() -> RefusingLetters:
    return RefusingLetters()


async def test_refused_letters_go_to_a_caseworker_and_enforcement_goes_on(enforcement_env):
    handle = await start(enforcement_env, enforcement_input(next_case_id()))
    reason = "the deduction_from_earnings_order letters were refused by notifications: check and resend"
    status = await until(handle, lambda s: step_open("deduction_from_earnings_order")(s)
                         and s.caseworker_reason == reason, "the earnings order's letters refused")
    assert status.needs_caseworker and status.charges_posted_pence == 5000
