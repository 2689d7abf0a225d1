"""Prometheus gauges of enforcement: running enforcements per step, approvals waiting, charges
posted and arrears collected through enforcement.

Read from Temporal's visibility in one listing of the running EnforcementWorkflows: the step is
the `EnforcementStep` search attribute, arrears `ArrearsPence`, and the figures that change a few
times a year (arrears at the start, charges posted, the step waiting for approval) are in each
workflow's memo (workflows/enforcement.py). Refreshed by the case API like its other business
metrics (services.common.refresher). Labels are step names only: never a case id.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from prometheus_client import Gauge
from temporalio.client import Client

from domain.enforcement import STEPS
from services.common.refresher import MetricsRefresher, start_refresher

SOURCE = "temporal_enforcement"
RUNNING_QUERY = "WorkflowType = 'EnforcementWorkflow' AND ExecutionStatus = 'Running'"
MAX_LISTED = 100_000

CASES_PER_STEP = Gauge("cms_enforcement_cases", "Running enforcements by the step they are at", ["step"])
APPROVALS_WAITING = Gauge("cms_enforcement_approvals_waiting",
                          "Running enforcements whose next step waits for a caseworker's approval, by step", ["step"])
CHARGES_POSTED = Gauge("cms_enforcement_charges_posted_pence",
                       "Enforcement charges posted to the ledger by the running enforcements, in pence")
ARREARS_COLLECTED = Gauge("cms_enforcement_arrears_collected_pence",
                          "Arrears collected since each running enforcement started, summed, in pence")


@dataclass
class EnforcementFigures:
    cases_per_step: Counter[str] = field(default_factory=Counter)
    approvals_waiting: Counter[str] = field(default_factory=Counter)
    charges_posted_pence: int = 0
    arrears_collected_pence: int = 0


def _pence(value: object) -> int:
    return value if type(value) is int and value > 0 else 0


async def enforcement_figures(client: Client, limit: int = MAX_LISTED) -> EnforcementFigures:
    figures = EnforcementFigures()
    async for execution in client.list_workflows(RUNNING_QUERY, limit=limit):
        attributes = execution.search_attributes
        step = (attributes.get("EnforcementStep") or [""])[0]
        if step in STEPS:
            figures.cases_per_step[str(step)] += 1
        memo = await execution.memo()
        pending = memo.get("pending_approval")
        if pending in STEPS:
            figures.approvals_waiting[pending] += 1
        figures.charges_posted_pence += _pence(memo.get("charges_posted_pence"))
        arrears_now = (attributes.get("ArrearsPence") or [None])[0]
        if type(arrears_now) is int:
            figures.arrears_collected_pence += _pence(_pence(memo.get("arrears_at_start_pence")) - arrears_now)
    return figures


class EnforcementMetrics:
    """Sets the gauges; every step is always present (0 when none), so a step that empties shows 0."""

    def __init__(self, client: Callable[[], Awaitable[Client]]):
        self._client = client

    async def refresh(self) -> None:
        figures = await enforcement_figures(await self._client())
        for step in STEPS:
            CASES_PER_STEP.labels(step).set(figures.cases_per_step.get(step, 0))
            APPROVALS_WAITING.labels(step).set(figures.approvals_waiting.get(step, 0))
        CHARGES_POSTED.set(figures.charges_posted_pence)
        ARREARS_COLLECTED.set(figures.arrears_collected_pence)


def start_enforcement_metrics(client: Callable[[], Awaitable[Client]], force: bool = False,
                              interval: float | None = None) -> MetricsRefresher | None:
    """Starts refreshing the gauges when metrics are on (or `force`); None otherwise."""
    return start_refresher(SOURCE, EnforcementMetrics(client).refresh, force=force, interval=interval)
