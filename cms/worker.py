"""The worker process: hosts the workflows and activities on the task queues of docs/design.md, Contracts.

Run with `python -m cms.worker`. One process serves every queue in development; in production
each queue can get its own horizontally scaled deployment (see deploy/).
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Mapping, Sequence
from types import TracebackType

from psycopg_pool import AsyncConnectionPool
from temporalio.client import Client
from temporalio.worker import Worker

from cms.config import ALL_TASK_QUEUES, Settings, load_settings
from cms.errors import StartupError
from cms.grpc_client import Channels
from cms.infra.postgres import check_reachable
from cms.log import configure_logging
from cms.temporal import connect
from cms.worker_catalog import Activity, build_activities, workflows_for


def build_workers(client: Client, activities: Mapping[str, Sequence[Activity]],
                  task_queues: Sequence[str] = ALL_TASK_QUEUES) -> list[Worker]:
    """One worker per task queue that has workflows or activities (`build_activities`)."""
    workers = []
    for queue in task_queues:
        workflows, queue_activities = workflows_for(queue), list(activities.get(queue, ()))
        if workflows or queue_activities:
            workers.append(Worker(client, task_queue=queue, workflows=workflows, activities=queue_activities))
    return workers


async def open_pool(settings: Settings) -> AsyncConnectionPool:
    pool = AsyncConnectionPool(settings.database_url, min_size=1, max_size=10, open=False)
    await pool.open(wait=True, timeout=30)
    return pool


async def run_worker(settings: Settings, stop: asyncio.Event) -> None:
    log = configure_logging("worker")
    check_reachable(settings.database_url)
    client = await connect(settings)
    pool = await open_pool(settings)
    channels = Channels(settings.service_token)
    workers = build_workers(client, build_activities(settings, pool, channels))
    log.info("worker_started", task_queues=[w.task_queue for w in workers])
    try:
        async with _all_running(workers):
            await stop.wait()
    finally:
        await channels.close()
        await pool.close()
        log.info("worker_stopped")


class _all_running:
    """Runs several workers together; on exit each finishes its in-flight tasks and stops."""

    def __init__(self, workers: list[Worker]):
        self._workers = workers
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> None:
        self._tasks = [asyncio.create_task(worker.run()) for worker in self._workers]

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        traceback: TracebackType | None) -> None:
        await asyncio.gather(*(worker.shutdown() for worker in self._workers), return_exceptions=True)
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def _main() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await run_worker(load_settings(), stop)


def main() -> None:
    try:
        asyncio.run(_main())
    except StartupError as error:
        raise SystemExit(f"error: worker: {error}") from None


if __name__ == "__main__":
    main()
