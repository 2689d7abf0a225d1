"""Changes of circumstances benchmarks (docs/design.md), on a headless Temporal dev server and an
embedded PostgreSQL started for this run, with an in-process worker.

Rows:

* sustained change workflows per second (automatic changes with caseworker reviews mixed in:
  one in ten has disputed evidence and is answered by a `review_decision` update), as a ratio
  to a bare one-activity workflow measured on the same server in the same run (three
  alternating rounds each, medians);
* the weekly volume on a fast calendar: changes arrive spread over a simulated week, simulated
  caseworkers answer reviews after 1-10 case days and a few only after day 28 (breaches); the
  run ends when every change has cleared. Reported: total wall time (the week of arrivals plus
  the 29-day tail of the late reviews), the share cleared on time (from the SLA report over
  `change_records`, which is timed too), the p95 report-to-clearance time of automatic changes
  under load, and the projected wall time for 30,000 at the sustained rate.

The calendar: arrivals run at 80% of the sustained rate (the worker kept busy, not flooded), or
faster when that is what it takes for the whole simulation (week + tail, about 5.2 times the
arrival week's wall time) to fit in the hour of the target (see _arrival_rate). Full mode simulates `CHANGES_WEEKLY` changes (default 2,000, so the whole
bench stays near 10 minutes on a 2-core machine; on a loaded machine the default volume is
capped so its week stays within MAX_WEEK_SECONDS); `CHANGES_WEEKLY=30000 python -m bench changes`
runs the full weekly volume end to end (about an hour; progress is printed every minute). Quick
mode: 1,000. Run alone: ``python -m bench.bench_changes [--quick]``.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio import activity, workflow

# This module also defines the baseline workflow, so the sandbox re-imports it: pass the rest through.
with workflow.unsafe.imports_passed_through():
    from psycopg_pool import AsyncConnectionPool
    from temporalio.client import Client, WorkflowUpdateFailedError
    from temporalio.worker import Worker

    from cms.config import load_settings
    from cms.db.migrate import apply_migrations
    from cms.infra.postgres import postgres_url, start_postgres
    from cms.infra.processes import ManagedProcess, free_port
    from cms.infra.temporal_server import start_dev_server
    from cms.payload_codec import new_key_ring
    from cms.temporal import connect_when_ready, data_converter_for
    from cms.worker_catalog import change_activities
    from services import SERVICES
    from services.case_api import repository as case_api
    from workflows.change import ChangeInput, ChangeWorkflow, ReportedChange, ReviewDecision, change_workflow_id

QUEUE = "bench-changes"
TARGET_WEEKLY = 30_000
TARGET_WALL_SECONDS = 3600
REVIEW_SHARE = 0.10
LATE_REVIEW_SHARE = 0.02  # of reviews: answered only after day 28 (breaches)
IN_FLIGHT = 64
MAX_WEEK_SECONDS = 100
WORKER_PROCESSES = int(os.environ.get("BENCH_CHANGE_WORKERS", "1"))
LATE_ANSWER_DAYS = (29.0, 29.5)
TAIL_DAYS = LATE_ANSWER_DAYS[1]

INPUTS = {
    "paying_parent": {"gross_weekly_income_pence": 40_000, "relevant_other_children": 0},
    "receiving_parents": [{"id": "rp-1", "children": [{"id": "c-1", "shared_care_nights": 51},
                                                      {"id": "c-2", "shared_care_nights": 0}]}],
    "service_type": "collect_and_pay",
}


@activity.defn
async def bare_activity(n: int) -> int:
    return n


@workflow.defn(name="BenchBareWorkflow")
class BareWorkflow:
    @workflow.run
    async def run(self, n: int) -> int:
        return await workflow.execute_activity(bare_activity, n, start_to_close_timeout=timedelta(seconds=30))


def _sample_change(rng: random.Random, review: bool) -> ReportedChange:
    kind = rng.choice(["income", "nights", "benefit", "roc", "address", "education"])
    details: dict[str, Any] = {}
    change_kind = kind
    if kind == "income":
        change_kind, details = "paying_parent_income", {"weekly_income_pence": rng.randint(20_000, 80_000)}
    elif kind == "nights":
        change_kind, details = "shared_care_nights", {"child_id": "c-1", "nights": rng.randint(0, 200)}
    elif kind == "benefit":
        change_kind = "flat_rate_benefit_started"
    elif kind == "roc":
        change_kind, details = "relevant_other_children", {"count": rng.randint(0, 4)}
    elif kind == "address":
        details = {"party": "paying_parent"}
    else:
        change_kind, details = "child_left_education", {"child_id": "c-2"}
    return ReportedChange(kind=change_kind, reported_date="2025-06-01", effective_date="2025-05-15",
                          details=details, evidence_disputed=review)


def _change_input(run: str, i: int, change: ReportedChange, seconds_per_day: float) -> ChangeInput:
    return ChangeInput(case_id=f"{run}{i}", n=1, change=change, current_inputs=INPUTS,
                       seconds_per_day=seconds_per_day, today="2025-06-01")


async def _answer_review(client: Client, workflow_id: str, after_seconds: float) -> None:
    await asyncio.sleep(after_seconds)
    handle = client.get_workflow_handle(workflow_id)
    decision = ReviewDecision(outcome="apply", reason="evidence checked", reviewer="bench-cw")
    for _ in range(600):
        try:
            await handle.execute_update(ChangeWorkflow.review_decision, decision)
            return
        except WorkflowUpdateFailedError:
            await asyncio.sleep(0.2)  # not waiting for review yet: the validator said so


async def _bare_rate(client: Client, count: int) -> float:
    gate = asyncio.Semaphore(IN_FLIGHT)
    run = uuid.uuid4().hex[:6]

    async def one(i: int) -> None:
        async with gate:
            await client.execute_workflow(BareWorkflow.run, i, id=f"bare-{run}-{i}", task_queue=QUEUE)

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(count)))
    return count / (time.perf_counter() - started)


async def _change_rate(client: Client, count: int) -> float:
    """Changes per second, all arriving at once, reviews answered as soon as they wait."""
    gate = asyncio.Semaphore(IN_FLIGHT)
    rng = random.Random(7)
    run = f"s{uuid.uuid4().hex[:6]}-"

    async def one(i: int) -> None:
        review = rng.random() < REVIEW_SHARE
        data = _change_input(run, i, _sample_change(rng, review), 86_400.0)
        async with gate:
            handle = await client.start_workflow(ChangeWorkflow.run, data, id=change_workflow_id(data.case_id, 1),
                                                 task_queue=QUEUE)
            if review:
                await _answer_review(client, handle.id, 0.05)
            await handle.result()

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(count)))
    return count / (time.perf_counter() - started)


def _arrival_rate(count: int, sustained_rate: float) -> float:
    """80% of the sustained rate, or faster when that is what fits the whole simulation (the
    week and its 29.5-day tail) within the hour of the target. Faster than the sustained rate
    is allowed on purpose: a week's changes need not clear the moment they arrive, only within
    28 case days, so a backlog of minutes on a calendar of ~90 s a day is no breach; the p95
    report-to-clearance row shows how far behind the workers fell."""
    fits_target = count * (7 + TAIL_DAYS) / 7 / (0.95 * TARGET_WALL_SECONDS)
    return max(0.8 * sustained_rate, fits_target)


async def _weekly(client: Client, pool: AsyncConnectionPool, count: int, sustained_rate: float) -> dict:
    """`count` changes spread over a simulated week; caseworkers answer reviews on day 1-10, a
    few only on day 29 (breaches). Ends when every change has cleared.

    Clearances are read from `change_records` (what operators see), not by waiting on each
    workflow's result: tens of thousands of result long-polls would exceed the server's
    concurrent poller limit and measure the bench, not the service."""
    arrival_rate = _arrival_rate(count, sustained_rate)
    week_seconds = count / arrival_rate
    seconds_per_day = week_seconds / 7
    rng = random.Random(2012)
    run = f"w{uuid.uuid4().hex[:6]}-"
    reported: dict[str, tuple[float, bool]] = {}     # case id -> (wall time reported, reviewed)
    tasks = []
    started = time.time()
    progress = asyncio.create_task(_report_progress(pool, run, reported, count, started))
    for i in range(count):
        due = started + week_seconds * i / count
        await asyncio.sleep(max(0.0, due - time.time()))
        review = rng.random() < REVIEW_SHARE
        late = review and rng.random() < LATE_REVIEW_SHARE
        answer_day = rng.uniform(*LATE_ANSWER_DAYS) if late else rng.uniform(1, 10)
        data = _change_input(run, i, _sample_change(rng, review), seconds_per_day)
        reported[data.case_id] = (time.time(), review)
        tasks.append(asyncio.create_task(_run_weekly_change(client, data, review, answer_day * seconds_per_day)))
    await asyncio.gather(*tasks)
    rows = await _wait_until_cleared(pool, run, count)
    wall = max(cleared_at for _, cleared_at, _ in rows) - started
    progress.cancel()
    latencies = sorted(cleared_at - reported[case_id][0] for case_id, cleared_at, _ in rows
                       if not reported[case_id][1])
    sla_started = time.perf_counter()
    async with case_api.read_snapshot(pool) as conn:
        report = await case_api.load_sla_report(conn)
    sla_seconds = time.perf_counter() - sla_started
    return {"wall": wall, "on_time": sum(1 for _, _, on_time in rows if on_time) / count,
            "report_share": float(report.on_time_share or 0), "sla_seconds": sla_seconds,
            "seconds_per_day": seconds_per_day, "breaches": report.breaches_last_4_weeks,
            "arrival_rate": arrival_rate, "week_seconds": week_seconds,
            # How long an automatic change took from report to clearance while the week arrived.
            "p95_latency": latencies[int(0.95 * (len(latencies) - 1))]}


async def _cleared_count(pool: AsyncConnectionPool, run: str) -> int:
    async with pool.connection() as conn:
        cursor = await conn.execute("SELECT count(*) FROM case_api.change_records"
                                    " WHERE case_id LIKE %s AND status = 'cleared'", (f"{run}%",))
        row = await cursor.fetchone()
    assert row is not None, "count(*) gives a row"
    return int(row[0])


async def _wait_until_cleared(pool: AsyncConnectionPool, run: str, count: int) -> list[tuple[str, float, bool]]:
    """Every change of the run cleared: (case id, cleared at as a wall-clock epoch, on time)."""
    while await _cleared_count(pool, run) < count:
        await asyncio.sleep(1)
    async with pool.connection() as conn:
        cursor = await conn.execute("SELECT case_id, extract(epoch FROM cleared_at)::float8, on_time"
                                    " FROM case_api.change_records WHERE case_id LIKE %s", (f"{run}%",))
        return [(case_id, float(at), bool(on_time)) for case_id, at, on_time in await cursor.fetchall()]


async def _report_progress(pool: AsyncConnectionPool, run: str, reported: dict, count: int, started: float) -> None:
    """One line a minute on stderr: a long run (the full weekly volume) must show it is alive."""
    while True:
        await asyncio.sleep(60)
        print(f"  weekly volume: {len(reported):,}/{count:,} reported, {await _cleared_count(pool, run):,} cleared, "
              f"{time.time() - started:,.0f} s", file=sys.stderr, flush=True)


async def _run_weekly_change(client: Client, data: ChangeInput, review: bool, answer_after: float) -> None:
    handle = await client.start_workflow(ChangeWorkflow.run, data, id=change_workflow_id(data.case_id, 1),
                                         task_queue=QUEUE)
    if review:
        await _answer_review(client, handle.id, answer_after)


def _row(name, value, unit, baseline=None, target=None, ratio=None):
    if ratio is None and baseline:
        ratio = value / baseline
    return {"benchmark": name, "value": round(value, 3), "unit": unit,
            "baseline": None if baseline is None else round(baseline, 3),
            "ratio": None if ratio is None else round(ratio, 3), "target": target}


async def _interleaved_rates(client: Client, sample: int, rounds: int = 3) -> tuple[float, float]:
    """Bare and change rates measured in alternating rounds, medians of each: the machine is
    shared, so a burst of other load must not land on one side of the ratio only."""
    bare, changes = [], []
    for _ in range(rounds):
        bare.append(await _bare_rate(client, sample // rounds))
        changes.append(await _change_rate(client, sample // rounds))
    return statistics.median(bare), statistics.median(changes)


async def _measure(client: Client, pool: AsyncConnectionPool, quick: bool) -> list[dict]:
    sample = 300 if quick else 1_500
    asked = os.environ.get("CHANGES_WEEKLY")
    weekly = 1_000 if quick else int(asked or "2000")
    await _bare_rate(client, 50)  # warm up the worker and the sandbox
    bare, changes = await _interleaved_rates(client, sample)
    if not asked:
        # The simulation lasts ~5 simulated weeks of wall time; on a loaded machine (lower rate)
        # cap the default volume so that the arrival week stays within MAX_WEEK_SECONDS.
        weekly = min(weekly, int(0.8 * changes * MAX_WEEK_SECONDS))
    week = await _weekly(client, pool, weekly, changes)
    projected = TARGET_WEEKLY / changes
    return [
        _row("bare one-activity workflow", bare, "workflows/s"),
        _row(f"change workflows ({int(REVIEW_SHARE * 100)}% caseworker-reviewed)", changes, "changes/s", bare,
             target=f">= {TARGET_WEEKLY / TARGET_WALL_SECONDS:.1f}/s (30k in 1h)"),
        _row(f"weekly volume simulated ({weekly:,} changes): total wall time incl. 29-day review tail",
             week["wall"], "s", baseline=TARGET_WALL_SECONDS if weekly >= TARGET_WEEKLY else None,
             target=f"calendar {week['seconds_per_day']:.1f} s/day; < 3600 s for 30,000"),
        _row("weekly volume: wall time of the week of arrivals", week["week_seconds"], "s",
             target=f"arrivals at {week['arrival_rate']:.1f}/s"),
        _row("weekly volume: p95 report-to-clearance time of automatic changes under load", week["p95_latency"], "s",
             target=f"28 days = {28 * week['seconds_per_day']:.0f} s"),
        _row("weekly volume: share cleared on time (from each change's record)", week["on_time"] * 100, "%",
             target=f"~{100 - REVIEW_SHARE * LATE_REVIEW_SHARE * 100:.1f}% (late reviews breach by design)"),
        _row("weekly volume: on-time share in the SLA report (last 4 weeks)", week["report_share"] * 100, "%"),
        _row("SLA report query over change_records", week["sla_seconds"] * 1000, "ms"),
        _row("projected wall time to process 30,000 changes at the sustained rate", projected, "s",
             baseline=TARGET_WALL_SECONDS, target="< 3600 s (ratio < 1)"),
    ]


async def _serve_worker(address: str, url: str) -> None:
    """The worker process: change and bare workflows with their activities, until killed."""
    client = await connect_when_ready(address, data_converter=data_converter_for(load_settings()))
    async with AsyncConnectionPool(url, min_size=2, max_size=10, open=False) as pool:
        async with Worker(client, task_queue=QUEUE, workflows=[ChangeWorkflow, BareWorkflow],
                          activities=[*change_activities(pool), bare_activity]):
            await asyncio.Event().wait()


def _start_workers(address: str, url: str, folder: Path) -> list[ManagedProcess]:
    """Workers run in processes of their own, as they do in production (cms.worker): the bench's
    client, with tens of thousands of changes in flight, must not take the worker's CPU."""
    return [ManagedProcess(f"bench-change-worker-{i}", [sys.executable, "-m", "bench.bench_changes", "--worker",
                                                        address, url], folder / f"worker-{i}.log").start()
            for i in range(WORKER_PROCESSES)]


async def _run(quick: bool) -> list[dict]:
    folder = Path(tempfile.mkdtemp(prefix="cms-bench-changes-"))
    folder.chmod(0o755)
    pg_port, temporal_port = free_port(), free_port()
    postgres = start_postgres(folder / "pgdata", pg_port, folder / "postgres.log")
    try:
        url = postgres_url(pg_port)
        for service in SERVICES:
            apply_migrations(url, service.schema, service.migrations)
        temporal = start_dev_server(temporal_port, None, None, folder / "temporal.log")
        workers: list[ManagedProcess] = []
        try:
            address = f"127.0.0.1:{temporal_port}"
            # Payloads encrypted as in production, with a key made for this run; the worker
            # processes inherit it.
            os.environ["CMS_PAYLOAD_KEYS"] = new_key_ring("bench").to_json()
            client = await connect_when_ready(address, data_converter=data_converter_for(load_settings()))
            workers = _start_workers(address, url, folder)
            async with AsyncConnectionPool(url, min_size=1, max_size=2, open=False) as pool:
                return await _measure(client, pool, quick)
        finally:
            for worker in workers:
                worker.stop()
            temporal.stop()
    finally:
        postgres.stop()


def run(quick: bool = False) -> list[dict]:
    return asyncio.run(_run(quick))


if __name__ == "__main__":
    # Import under the package name so the workflow classes are registered as bench.bench_changes.
    from bench import bench_changes

    if sys.argv[1:2] == ["--worker"]:
        asyncio.run(bench_changes._serve_worker(sys.argv[2], sys.argv[3]))
    else:
        for result in bench_changes.run(quick="--quick" in sys.argv):
            print(result)
