"""A case on a default decision whose income arrives with a change of circumstances, while a
change dated after the default's date waits for a caseworker.

Before the default decision was revised from its own date (cases decided before patch
"default-revised-from-its-date", whose recorded histories still replay), the income counted from
its own date and the earlier-dated change was recalculated as a default decision on the facts of
its date (patch "change-out-of-order-default-rate"). Now the income revises the default from the
date it took effect (s.16(3) CSA 1991), so there is no period left on the default: the change
dated later applies on the income from its own date.

The case of test_change_clearance_order.py with HMRC finding nothing: a default decision (£51 a
week for two children) from 2025-01-12. On 2025-03-05 the paying parent reports an income of
£650 a week, which clears at once; the relevant other child stopping counting from 2025-02-01
waits for a caseworker and clears after it."""

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
from tests.changes.test_change_clearance_order import (
    NEW_WEEKLY_INCOME,
    in_force,
    income,
    other_child_stops,
    two_changes,
    versions,
)
from workflows.case import CaseWorkflow

pytestmark = pytest.mark.asyncio(loop_scope="session")

class HmrcFindsNothing:
    async def verify_address(self, party_id: str) -> bool:
        return True

    async def latest_annual_income(self, party_id: str, requested_on: str) -> HmrcIncome:
        return HmrcIncome(found=False)


def default_weekly(on: str) -> int:
    parent = ReceivingParent("rp-1", (Child("c-1", 0), Child("c-2", 0)))
    return default_decision(2, (parent,), "direct_pay", effective_date=date.fromisoformat(on)).weekly_liability_pence


def stated_weekly(other_children: int, on: str) -> int:
    request = {"paying_parent": {"relevant_other_children": other_children, "flat_rate_benefit": False,
                                 "gross_weekly_income_pence": NEW_WEEKLY_INCOME},
               "receiving_parents": [{"id": "rp-1", "children": [{"id": "c-1", "shared_care_nights": 0},
                                                                 {"id": "c-2", "shared_care_nights": 0}]}],
               "service_type": "direct_pay"}
    return calculate(parse_request(request), effective_date=date.fromisoformat(on)).weekly_liability_pence


DEFAULT = ("2025-01-12", default_weekly("2025-01-12"))
INCOME_FROM_THE_DEFAULTS_DATE = ("2025-01-12", stated_weekly(1, "2025-01-12"))
BOTH = ("2025-02-01", stated_weekly(0, "2025-02-01"))


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def default_client(change_pool) -> AsyncIterator[tuple[WorkflowEnvironment, Client, str]]:
    async with case_worker(change_pool, HmrcFindsNothing(), "case-change-default") as running:
        yield running


async def test_the_income_revises_the_default_from_its_date_and_the_later_change_applies_on_it(
        default_client, change_pool) -> None:
    env, client, queue = default_client
    case, case_id = await two_changes(env, client, queue, change_pool, first=income(False),
                                      waits=other_child_stops(True), initial=DEFAULT)
    handed = await versions(change_pool, case_id, 3)
    assert handed == [DEFAULT, INCOME_FROM_THE_DEFAULTS_DATE, BOTH]
    assert in_force(handed) == [INCOME_FROM_THE_DEFAULTS_DATE, BOTH]
    # £51 on the default; £650 less 11% for the other child: 16% of £578.50 = £92.56, £93; without: £104.
    assert (DEFAULT[1], INCOME_FROM_THE_DEFAULTS_DATE[1], BOTH[1]) == (5100, 9300, 10400)
    view = await case.query(CaseWorkflow.state)
    assert (view.liability.rate, view.liability.effective_date, view.liability.weekly_liability_pence) == (
        "basic", *BOTH)
