"""A case on a default decision whose income arrives with a change of circumstances, and a change
dated before that income change clearing after it (patch "change-out-of-order-default-rate"):
the period from the earlier change's date to the income's is recalculated as a default decision
on the facts of that date, not on an income of £0 (which gives a nil rate, £0 a week).

The case of test_change_clearance_order.py with HMRC finding nothing: a default decision (£51 a
week for two children) from 2025-01-12. On 2025-03-05 the paying parent reports an income of
£650 a week from 2025-03-01, which clears at once; a shared care change (c-1, 52 nights a year)
from 2025-02-01 waits for a caseworker and clears after it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date

import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from activities.adapters.hmrc import HmrcIncome
from domain.calculation import Child, ReceivingParent, calculate, default_decision, parse_request
from tests.changes.case_worker import case_worker
from tests.changes.test_change_clearance_order import NEW_WEEKLY_INCOME, in_force, income, shared_care, two_changes, versions
from tests.helpers.replay import CASE_CHANGE_HISTORIES, record_history
from workflows.case import CaseWorkflow

pytestmark = pytest.mark.asyncio(loop_scope="session")

HISTORY = "default_decision_change_dated_before_the_income"


class HmrcFindsNothing:
    async def verify_address(self, party_id: str) -> bool:
        return True

    async def latest_annual_income(self, party_id: str, requested_on: str) -> HmrcIncome:
        return HmrcIncome(found=False)


def default_weekly(c1_nights: int, on: str) -> int:
    parent = ReceivingParent("rp-1", (Child("c-1", c1_nights), Child("c-2", 0)))
    return default_decision(2, (parent,), "direct_pay", effective_date=date.fromisoformat(on)).weekly_liability_pence


def stated_weekly(c1_nights: int, on: str) -> int:
    request = {"paying_parent": {"relevant_other_children": 0, "flat_rate_benefit": False,
                                 "gross_weekly_income_pence": NEW_WEEKLY_INCOME},
               "receiving_parents": [{"id": "rp-1", "children": [{"id": "c-1", "shared_care_nights": c1_nights},
                                                                 {"id": "c-2", "shared_care_nights": 0}]}],
               "service_type": "direct_pay"}
    return calculate(parse_request(request), effective_date=date.fromisoformat(on)).weekly_liability_pence


DEFAULT = ("2025-01-12", default_weekly(0, "2025-01-12"))
SHARED_CARE_ON_DEFAULT = ("2025-02-01", default_weekly(52, "2025-02-01"))
INCOME_ONLY = ("2025-03-01", stated_weekly(0, "2025-03-01"))
BOTH = ("2025-03-01", stated_weekly(52, "2025-03-01"))


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def default_client(change_pool) -> AsyncIterator[tuple[WorkflowEnvironment, Client, str]]:
    async with case_worker(change_pool, HmrcFindsNothing(), "case-change-default") as running:
        yield running


async def test_the_period_before_the_income_stays_a_default_decision(default_client, change_pool) -> None:
    env, client, queue = default_client
    case, case_id = await two_changes(env, client, queue, change_pool, first=income(False), waits=shared_care(True),
                                      initial=DEFAULT)
    handed = await versions(change_pool, case_id, 4)
    assert handed == [DEFAULT, INCOME_ONLY, SHARED_CARE_ON_DEFAULT, BOTH]
    assert in_force(handed) == [DEFAULT, SHARED_CARE_ON_DEFAULT, BOTH]
    # Not a £0 week: what the old code handed payments for February (a nil rate on "income £0").
    assert SHARED_CARE_ON_DEFAULT[1] == 5100 > 0
    view = await case.query(CaseWorkflow.state)
    assert (view.liability.rate, view.liability.effective_date, view.liability.weekly_liability_pence) == (
        "basic", *BOTH)
    await record_history(client.get_workflow_handle(case.id), CASE_CHANGE_HISTORIES, HISTORY)

