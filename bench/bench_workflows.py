"""Case lifecycle benchmarks (docs/design.md), on a Temporal dev server started for the run
and an embedded PostgreSQL (the read model the case activities write).

Rows:
* cases started and driven to "Active" per second (application, address check, HMRC request,
  notice, calculation, notices to both parents, payment schedule, read-model writes), as a ratio
  to a bare one-activity workflow on the same server in the same run, same concurrency;
* the same, with the payload codec (AES-256-GCM on every payload, as every client and worker
  runs) against the strict converter alone, same run: the ratio is the cost of encryption;
* worker memory per case held in the worker's workflow cache (RSS growth / cases);
* history events and bytes per case for one year of simulated case life (application to the
  first annual review's continue-as-new): target under 200 events.

The HMRC fake answers without delay or failures here, so the figure is the orchestration cost.
Run alone: ``python -m bench.bench_workflows [--quick]``.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
import uuid
from pathlib import Path

from psycopg_pool import AsyncConnectionPool
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.worker import Worker

from activities.adapters.hmrc import FakeHmrc
from bench.bare_workflow import BareWorkflow, bare_activity
from cms.db.migrate import apply_migrations
from cms.infra.postgres import postgres_url, start_postgres
from cms.infra.processes import free_port
from cms.infra.temporal_server import start_dev_server
from cms.payload_codec import EncryptionCodec, new_key_ring
from cms.temporal import connect_when_ready
from cms.worker_catalog import Activity, case_activities
from services import SERVICES
from workflows.case import CaseWorkflow
from workflows.case_messages import Calendar, CaseInput, ChildFacts
from workflows.converter import STRICT_DATA_CONVERTER, data_converter

CONCURRENCY = 50


def _rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


async def _bounded(count: int, make) -> None:
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(i: int) -> None:
        async with gate:
            await make(i)

    await asyncio.gather(*(one(i) for i in range(count)))


async def _bare_rate(client: Client, count: int) -> float:
    """Bare workflows per second: all started (CONCURRENCY start calls in flight), then all awaited,
    the same shape as the case measurement."""
    queue = f"bench-bare-{uuid.uuid4().hex[:6]}"
    async with Worker(client, task_queue=queue, workflows=[BareWorkflow], activities=[bare_activity]):
        started = time.perf_counter()
        handles = []

        async def start(i: int) -> None:
            handles.append(await client.start_workflow(BareWorkflow.run, i, id=f"bare-{queue}-{i}", task_queue=queue))
        await _bounded(count, start)
        await asyncio.gather(*(handle.result() for handle in handles))
        return count / (time.perf_counter() - started)


def _case(case_id: str, seconds_per_day: float) -> CaseInput:
    return CaseInput(case_id=case_id, application_date="2025-01-10", receiving_parent_id="rp-1",
                     paying_parent_id=f"pp-{case_id}", children=[ChildFacts("c-1", "2015-03-01")],
                     calendar=Calendar(seconds_per_day))


async def _active_count(pool: AsyncConnectionPool, prefix: str) -> int:
    async with pool.connection() as conn:
        row = await (await conn.execute("SELECT count(*) FROM case_api.cases WHERE case_id LIKE %s AND stage = 'Active'",
                                        (f"{prefix}%",))).fetchone()
    assert row is not None, "count(*) gives a row"
    return row[0]


async def _case_rate(client: Client, pool: AsyncConnectionPool, activities: list[Activity],
                     count: int) -> tuple[float, float]:
    """Cases per second to Active, and worker RSS growth per case held in the cache."""
    queue = f"bench-cases-{uuid.uuid4().hex[:6]}"
    prefix = f"bench{uuid.uuid4().hex[:6]}-"
    rss_before = _rss_bytes()
    async with Worker(client, task_queue=queue, workflows=[CaseWorkflow], activities=activities,
                      max_cached_workflows=max(1000, count * 2)):
        started = time.perf_counter()
        # 0.2 s a day: the 2-day wait to the initial effective date is 0.4 s, and no case reaches
        # its annual review (67 s) while the batch is measured.
        await _bounded(count, lambda i: client.start_workflow(CaseWorkflow.run, _case(f"{prefix}{i}", 0.2),
                                                              id=f"case-{prefix}{i}", task_queue=queue))
        while await _active_count(pool, prefix) < count:
            await asyncio.sleep(0.05)
        rate = count / (time.perf_counter() - started)
        per_case = (_rss_bytes() - rss_before) / count
        async for execution in client.list_workflows(f"TaskQueue = '{queue}' AND ExecutionStatus = 'Running'"):
            await client.get_workflow_handle(execution.id).terminate("bench done")
    return rate, per_case


async def _history_per_year(client: Client, activities: list[Activity]) -> tuple[int, int]:
    """Events and bytes of the first run: application to the first review's continue-as-new."""
    queue = f"bench-year-{uuid.uuid4().hex[:6]}"
    case_id = f"benchyear{uuid.uuid4().hex[:6]}"
    async with Worker(client, task_queue=queue, workflows=[CaseWorkflow], activities=activities):
        handle = await client.start_workflow(CaseWorkflow.run, _case(case_id, 0.01), id=f"case-{case_id}",
                                             task_queue=queue)
        first = client.get_workflow_handle(handle.id, run_id=handle.first_execution_run_id)
        while (await first.describe()).status == WorkflowExecutionStatus.RUNNING:
            await asyncio.sleep(0.2)
        history = await first.fetch_history()
        await client.get_workflow_handle(handle.id).terminate("bench done")
    return len(history.events), len(history.to_json().encode())


async def _run(quick: bool) -> list[dict]:
    count = 60 if quick else 300
    scratch = Path(tempfile.mkdtemp(prefix="cms-bench-wf-"))
    scratch.chmod(0o755)
    pg_port, temporal_port = free_port(), free_port()
    postgres = start_postgres(scratch / "pg", pg_port, scratch / "pg.log")
    temporal = start_dev_server(temporal_port, None, None, scratch / "temporal.log")
    try:
        url = postgres_url(pg_port)
        for service in SERVICES:
            apply_migrations(url, service.schema, service.migrations)
        # The product's converter, with a key made for the run; and one without the codec, to compare.
        sealed = data_converter(EncryptionCodec(new_key_ring("bench")))
        client = await connect_when_ready(f"127.0.0.1:{temporal_port}", data_converter=sealed)
        clear_config = client.config()
        clear_config["data_converter"] = STRICT_DATA_CONVERTER
        clear_client = Client(**clear_config)
        async with AsyncConnectionPool(url, min_size=2, max_size=10, open=False) as pool:
            # An HMRC that answers at once: the bench measures the workflow, not the fake's delays.
            activities = case_activities(pool, FakeHmrc(min_delay_seconds=0, max_delay_seconds=0,
                                                        transient_failure_rate=0))
            await _bare_rate(client, 20)  # warm-up
            bare = await _bare_rate(client, count)
            cases, memory = await _case_rate(client, pool, activities, count)
            clear_cases, _ = await _case_rate(clear_client, pool, activities, count)
            events, size = await _history_per_year(client, activities)
    finally:
        temporal.stop()
        postgres.stop()
    return [
        {"benchmark": f"cases to Active ({count}, concurrency {CONCURRENCY})", "value": cases, "unit": "cases/s",
         "baseline": bare, "ratio": cases / bare, "target": ">= 0.3 x bare one-activity workflow"},
        {"benchmark": f"cases to Active with payload encryption ({count})", "value": cases, "unit": "cases/s",
         "baseline": clear_cases, "ratio": cases / clear_cases, "target": ">= 0.9 x the same without the codec"},
        {"benchmark": "worker memory per cached case", "value": memory / 1024, "unit": "KiB/case",
         "baseline": None, "ratio": None, "target": "measured"},
        {"benchmark": "history events, one year of case life", "value": events, "unit": "events",
         "baseline": 200, "ratio": events / 200, "target": "< 200 events"},
        {"benchmark": "history size, one year of case life", "value": size / 1024, "unit": "KiB",
         "baseline": None, "ratio": None, "target": "measured"},
    ]


def run(quick: bool) -> list[dict]:
    return asyncio.run(_run(quick))


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print(row)
