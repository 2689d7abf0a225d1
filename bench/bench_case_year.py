"""What one case-year costs, the inputs of the scale model (docs/scale.md, scripts/scale_model.py).

Two years of a weekly Collect & Pay case with five changes of circumstances (2.5 a year, near the
national 2.0: 30,000 changes a week over 780,000 cases) are played through `cms scenario`'s
stack: the real case, change and collection workflows and activities, the payments service and
PostgreSQL, on the time-skipping server. Counted, per case-year:

* Temporal: workflow runs, history events and history bytes (every run of every workflow the
  case started, fetched after the play), activity executions and workflow tasks (counted by a
  worker interceptor);
* PostgreSQL: rows written (inserts, updates, deletes from pg_stat_database) and bytes added to
  the database;
* CPU: the seconds this process spent (worker, services and client together) and those of the
  time-skipping server and PostgreSQL (its children), per case-year and per workflow task or
  activity ("case action").

The baseline row is a bare one-activity workflow's history on the same server, so the ratio says
how many bare workflows' worth of history a case-year is. Run alone: ``python -m bench.bench_case_year``.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import psutil
from temporalio import activity, workflow
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    ExecuteWorkflowInput,
    Interceptor,
    UnsandboxedWorkflowRunner,
    Worker,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

from bench.bare_workflow import BareWorkflow, bare_activity
from bench.bench_scenario import YEARS, two_year_case
from cms.scenario.player import ScenarioPlayer
from cms.scenario.stack import ScenarioServices, ScenarioStack


@dataclass
class Census:
    """What the workers did while it was recording."""
    runs: set[tuple[str, str]] = field(default_factory=set)         # (workflow id, run id)
    workflow_tasks: int = 0
    activities: Counter[str] = field(default_factory=Counter)
    recording: bool = False


CENSUS = Census()


class _CountingActivity(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        if CENSUS.recording:
            CENSUS.activities[activity.info().activity_type] += 1
        return await super().execute_activity(input)


class _CountingWorkflow(WorkflowInboundInterceptor):
    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        info = workflow.info()
        if CENSUS.recording and not workflow.unsafe.is_replaying():
            CENSUS.runs.add((info.workflow_id, info.run_id))
        return await super().execute_workflow(input)


class CountingInterceptor(Interceptor):
    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _CountingActivity(next)

    def workflow_interceptor_class(self, input: WorkflowInterceptorClassInput) -> type[WorkflowInboundInterceptor]:
        return _CountingWorkflow


@dataclass(frozen=True)
class HistoryTotals:
    events: int
    bytes: int
    workflow_tasks: int


async def _history_totals(services: ScenarioServices, runs: set[tuple[str, str]]) -> HistoryTotals:
    events = size = tasks = 0
    for workflow_id, run_id in runs:
        history = await services.client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        events += len(history.events)
        size += sum(event.ByteSize() for event in history.events)
        tasks += sum(1 for event in history.events if event.HasField("workflow_task_completed_event_attributes"))
    return HistoryTotals(events, size, tasks)


async def _database_counters(services: ScenarioServices) -> tuple[int, int]:
    async with services.pool.connection() as conn:
        row = await (await conn.execute(
            "SELECT tup_inserted + tup_updated + tup_deleted, pg_database_size(current_database())"
            " FROM pg_stat_database WHERE datname = current_database()")).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def _cpu_seconds() -> tuple[float, float]:
    """(this process, its children: the time-skipping server and PostgreSQL)."""
    me = psutil.Process()
    own = me.cpu_times()
    children = 0.0
    for child in me.children(recursive=True):
        try:
            times = child.cpu_times()
            children += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return own.user + own.system, children


async def _bare_history(services: ScenarioServices) -> HistoryTotals:
    queue = f"bench-bare-{uuid.uuid4().hex[:6]}"
    async with Worker(services.client, task_queue=queue, workflows=[BareWorkflow], activities=[bare_activity],
                      workflow_runner=UnsandboxedWorkflowRunner()):
        handle = await services.client.start_workflow(BareWorkflow.run, 0, id=f"bare-{queue}", task_queue=queue)
        await handle.result()
    return await _history_totals(services, {(handle.id, handle.result_run_id or "")})


@dataclass(frozen=True)
class CaseYear:
    """One profile's costs, per case-year."""
    runs: float
    history: HistoryTotals
    activities: float
    database_rows: float
    database_bytes: float
    own_cpu: float
    server_cpu: float
    wall: float


async def _measure(services: ScenarioServices, player: ScenarioPlayer, collect_and_pay: bool) -> CaseYear:
    CENSUS.runs.clear()
    CENSUS.activities.clear()
    rows_before, bytes_before = await _database_counters(services)
    own_before, children_before = _cpu_seconds()
    CENSUS.recording, started = True, time.perf_counter()
    result = await player.play(two_year_case(collect_and_pay=collect_and_pay))
    wall = time.perf_counter() - started
    CENSUS.recording = False
    own_after, children_after = _cpu_seconds()
    assert result["stage"] == "Active", result["stage"]
    # pg_stat counters reach pg_stat_database when each backend reports; give them a moment.
    await asyncio.sleep(1.0)
    rows_after, bytes_after = await _database_counters(services)
    totals = await _history_totals(services, CENSUS.runs)
    return CaseYear(runs=len(CENSUS.runs) / YEARS, history=HistoryTotals(
                        totals.events // YEARS, totals.bytes // YEARS, totals.workflow_tasks // YEARS),
                    activities=sum(CENSUS.activities.values()) / YEARS,
                    database_rows=(rows_after - rows_before) / YEARS,
                    database_bytes=(bytes_after - bytes_before) / YEARS,
                    own_cpu=(own_after - own_before) / YEARS, server_cpu=(children_after - children_before) / YEARS,
                    wall=wall / YEARS)


def _rows(profile: str, year: CaseYear, bare: HistoryTotals) -> list[dict]:
    def row(what: str, value: float, unit: str, baseline: float | None = None) -> dict:
        return {"benchmark": f"case-year, {profile}: {what}", "value": value, "unit": unit, "baseline": baseline,
                "ratio": (value / baseline) if baseline else None, "target": "measured (scale model input)"}

    actions = year.history.workflow_tasks + year.activities
    return [
        row("workflow runs", year.runs, "runs"),
        row("history events", year.history.events, "events", bare.events),
        row("history bytes", year.history.bytes / 1024, "KiB", bare.bytes / 1024),
        row("workflow tasks", year.history.workflow_tasks, "tasks", bare.workflow_tasks),
        row("activity executions", year.activities, "activities"),
        row("PostgreSQL rows written", year.database_rows, "rows"),
        row("PostgreSQL bytes added", year.database_bytes / 1024, "KiB"),
        row("worker and services CPU", year.own_cpu, "s"),
        row("Temporal test server and PostgreSQL CPU", year.server_cpu, "s"),
        row("worker and services CPU per case action", year.own_cpu / max(actions, 1) * 1000, "ms"),
        row("wall time on the time-skipping server", year.wall, "s"),
    ]


async def _run(quick: bool) -> list[dict]:
    async with ScenarioStack(interceptors=[CountingInterceptor()]) as services:
        player = ScenarioPlayer(services)
        await player.play(two_year_case())      # warm-up: imports, connections, caches
        direct_pay = await _measure(services, player, collect_and_pay=False)
        collect_and_pay = await _measure(services, player, collect_and_pay=True)
        bare = await _bare_history(services)
    return _rows("Direct Pay", direct_pay, bare) + _rows("weekly Collect & Pay", collect_and_pay, bare)


def run(quick: bool) -> list[dict]:
    return asyncio.run(_run(quick))


if __name__ == "__main__":
    for line in run(quick="--quick" in sys.argv):
        print(line)
