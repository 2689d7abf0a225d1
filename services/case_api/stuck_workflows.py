"""cms_workflow_task_failures: running workflows whose workflow task keeps failing.

A workflow whose task fails is not failed: Temporal retries the task for ever, and nothing moves
until the code or the data is fixed. The server flags such a workflow with the built-in search
attribute `TemporalReportedProblems` after consecutive task failures (the dynamic config value
`system.numConsecutiveWorkflowTaskProblemsToTriggerSearchAttribute`, which `make run` sets to 2
and deploy/k8s/README.md asks of a real cluster), and clears it when a task succeeds. This gauge
counts the flagged running workflows per workflow type, refreshed by the case API like its other
business metrics (services.common.refresher). The label is the workflow type only: never an id.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable

from prometheus_client import Gauge
from temporalio.client import Client

from services.common.refresher import MetricsRefresher, start_refresher

SOURCE = "temporal_task_failures"
STUCK_QUERY = "ExecutionStatus = 'Running' AND TemporalReportedProblems IS NOT NULL"
# A listing bound: past this many stuck workflows the count is a floor, and operators have a
# deployment problem that the UI's list shows better than a number.
MAX_LISTED = 10_000

TASK_FAILURES = Gauge("cms_workflow_task_failures",
                      "Running workflows whose workflow task has failed repeatedly and is still failing "
                      "(find them in the Temporal UI with: TemporalReportedProblems IS NOT NULL)",
                      ["workflow_type"])


async def stuck_by_type(client: Client, limit: int = MAX_LISTED) -> Counter[str]:
    counts: Counter[str] = Counter()
    async for execution in client.list_workflows(STUCK_QUERY, limit=limit):
        counts[execution.workflow_type] += 1
    return counts


class StuckWorkflowMetrics:
    """Sets the gauge per workflow type; a type that recovers shows 0 rather than vanishing."""

    def __init__(self, client: Callable[[], Awaitable[Client]]):
        self._client = client
        self._types_seen: set[str] = set()

    async def refresh(self) -> None:
        counts = await stuck_by_type(await self._client())
        self._types_seen |= counts.keys()
        for workflow_type in self._types_seen:
            TASK_FAILURES.labels(workflow_type).set(counts.get(workflow_type, 0))


def start_stuck_workflow_metrics(client: Callable[[], Awaitable[Client]], force: bool = False,
                                 interval: float | None = None) -> MetricsRefresher | None:
    """Starts refreshing the gauge when metrics are on (or `force`); None otherwise."""
    return start_refresher(SOURCE, StuckWorkflowMetrics(client).refresh, force=force, interval=interval)
