"""What a scenario runs on, started once per process and shared by every scenario it plays.

- An embedded PostgreSQL in a temporary folder, with every service's migrations.
- Temporal's time-skipping test server, with the product's data converter (payloads encrypted
  with a key ring made for this process).
- The payments service (in this process, on a free port) and the case API's servicer on a gRPC
  server of its own: the scenario calls them as a channel would.
- One worker for the case queue (CaseWorkflow, ChangeWorkflow and the case activities, with the
  scenario's HMRC table as the HMRC adapter and schedules handed to payments) and one for the
  payments queue (the collection cycles).

Nothing is left behind: leaving the context stops the workers and the servers and removes the
folder.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import tempfile
import uuid
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType

import grpc
import psycopg
from psycopg_pool import AsyncConnectionPool
from temporalio.client import Client
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Interceptor, UnsandboxedWorkflowRunner, Worker

from activities.case_payments import GrpcPayments, RecordingPayments
from cms.auth import ensure_dev_keys, issue_token
from cms.config import TASK_QUEUE_CASES, TASK_QUEUE_PAYMENTS, Settings, load_settings
from cms.db.migrate import apply_migrations
from cms.grpc_client import Channels
from cms.infra.postgres import postgres_url, start_postgres
from cms.infra.processes import free_port
from cms.infra.temporal_server import temporal_test_server
from cms.local_callers import local_channel
from cms.payload_codec import new_key_ring
from cms.scenario.hmrc import ScenarioHmrc
from cms.temporal import data_converter_for
from cms.worker_catalog import case_activities, payment_activities, payments_client, workflows_for
from cms_proto.case.v1 import case_pb2_grpc
from cms_proto.payments.v1 import payments_pb2_grpc
from services import SERVICES
from services.case_api.service import CaseService
from services.common.server import serve_in_background
from services.payments.service import register as register_payments


@dataclass
class ScenarioServices:
    """What the player talks to."""

    env: WorkflowEnvironment
    client: Client                 # the product's converter, on the time-skipping server
    pool: AsyncConnectionPool      # the case read model
    cases: case_pb2_grpc.CaseServiceStub
    payments: payments_pb2_grpc.PaymentsServiceStub
    hmrc: ScenarioHmrc
    cases_queue: str
    payments_queue: str


def scenario_settings(database_url: str) -> Settings:
    """Production settings but for the database, a free payments port, a real-length case day, and
    a key ring and a case id secret of this process's own (its data is thrown away after)."""
    settings = load_settings()
    return replace(settings, database_url=database_url, seconds_per_day=86400.0,
                   ports={**settings.ports, "payments": free_port()},
                   payload_keys=new_key_ring("scenario").to_json(), payload_keys_file=None,
                   case_id_secret=secrets.token_urlsafe(32), case_id_secret_file=None)


class ScenarioStack:
    """`async with ScenarioStack() as services:` starts everything; leaving stops it."""

    def __init__(self, quiet: bool = True, interceptors: Sequence[Interceptor] = ()) -> None:
        self._quiet = quiet
        # Worker interceptors, e.g. the benchmark that counts what a case-year costs.
        self._interceptors = list(interceptors)
        self._exit = AsyncExitStack()
        self._folder: Path | None = None

    async def __aenter__(self) -> ScenarioServices:
        if self._quiet:
            os.environ.setdefault("LOG_LEVEL", "ERROR")
            logging.getLogger().setLevel(logging.ERROR)
        try:
            return await self._start()
        except BaseException:
            await self._stop()
            raise

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        traceback: TracebackType | None) -> None:
        await self._stop()

    def _runtime(self) -> Runtime | None:
        """Temporal's core logs only errors when quiet: stderr is for the scenario's own errors."""
        if not self._quiet:
            return None
        quiet = TelemetryFilter(core_level="ERROR", other_level="ERROR")
        return Runtime(telemetry=TelemetryConfig(logging=LoggingConfig(filter=quiet)))

    async def _stop(self) -> None:
        try:
            await self._exit.aclose()
        finally:
            if self._folder is not None:
                shutil.rmtree(self._folder, ignore_errors=True)
                self._folder = None

    async def _start(self) -> ScenarioServices:
        self._folder = Path(tempfile.mkdtemp(prefix="cms-scenario-"))
        self._folder.chmod(0o755)
        database_url = self._start_postgres(self._folder)
        # Its own signing key: the payments service checks tokens against its JWKS, and the
        # harness signs each call as a caller the access table admits (cms/local_callers.py).
        key_file, jwks_file = ensure_dev_keys(self._folder / "auth")
        self._signing_key = key_file.read_text()
        settings = replace(scenario_settings(database_url), auth_jwks=str(jwks_file))
        converter = data_converter_for(settings)
        env = await WorkflowEnvironment.start_time_skipping(
            test_server_existing_path=str(temporal_test_server()), data_converter=converter,
            runtime=self._runtime())
        self._exit.push_async_callback(env.shutdown)
        client = env.client

        pool = AsyncConnectionPool(database_url, min_size=1, max_size=8, open=False)
        await pool.open(wait=True, timeout=30)
        self._exit.push_async_callback(pool.close)

        payments = await serve_in_background("payments", register_payments, settings)
        self._exit.push_async_callback(self._stop_service, payments)
        channels = Channels(issue_token(self._signing_key, "worker", "service"))
        self._exit.push_async_callback(channels.close)
        ledger = payments_client(payments.address, channels)

        suffix = uuid.uuid4().hex[:6]
        cases_queue, payments_queue = f"{TASK_QUEUE_CASES}-scenario-{suffix}", f"{TASK_QUEUE_PAYMENTS}-scenario-{suffix}"
        hmrc = ScenarioHmrc()
        schedules = GrpcPayments(ledger, record=RecordingPayments(pool), start_collections=True,
                                 collections_task_queue=payments_queue)
        # Unsandboxed: a year of a case is hundreds of short workflow runs (a collection cycle per
        # period), and the sandbox imports the workflow modules afresh for each. The code is the
        # same; its determinism is checked where it is deployed, by the sandboxed workers and the
        # replay of recorded histories.
        runner = UnsandboxedWorkflowRunner()
        case_worker = Worker(client, task_queue=cases_queue, workflows=workflows_for(TASK_QUEUE_CASES),
                             activities=case_activities(pool, hmrc, schedules=schedules), workflow_runner=runner,
                             interceptors=self._interceptors)
        payments_worker = Worker(client, task_queue=payments_queue, workflows=workflows_for(TASK_QUEUE_PAYMENTS),
                                 activities=payment_activities(ledger), workflow_runner=runner,
                                 interceptors=self._interceptors)
        await self._exit.enter_async_context(case_worker)
        await self._exit.enter_async_context(payments_worker)

        case_api = await self._serve_case_api(pool, settings, client, cases_queue)
        cases_channel = await self._exit.enter_async_context(local_channel(case_api, self._signing_key))
        payments_channel = await self._exit.enter_async_context(local_channel(payments.address, self._signing_key))
        return ScenarioServices(env=env, client=client, pool=pool,
                                cases=case_pb2_grpc.CaseServiceStub(cases_channel),
                                payments=payments_pb2_grpc.PaymentsServiceStub(payments_channel),
                                hmrc=hmrc, cases_queue=cases_queue, payments_queue=payments_queue)

    def _start_postgres(self, folder: Path) -> str:
        port = free_port()
        process = start_postgres(folder / "pgdata", port, folder / "postgres.log")
        self._exit.callback(process.stop)
        url = postgres_url(port)
        with psycopg.connect(url, autocommit=True) as conn:
            # A scenario's data is thrown away with the folder: no need to wait for each commit to
            # reach the disk (the ledger's many small transactions are most of a scenario's time).
            conn.execute("ALTER SYSTEM SET synchronous_commit = off")
            conn.execute("ALTER SYSTEM SET fsync = off")
            conn.execute("SELECT pg_reload_conf()")
        for service in SERVICES:
            apply_migrations(url, service.schema, service.migrations)
        return url

    async def _serve_case_api(self, pool: AsyncConnectionPool, settings: Settings, client: Client,
                              queue: str) -> str:
        # The time-skipping server cannot register custom search attributes: the case publishes none.
        service = CaseService(pool, settings, client, queue, publish_search_attributes=False)
        server = grpc.aio.server()
        case_pb2_grpc.add_CaseServiceServicer_to_server(service, server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        self._exit.push_async_callback(server.stop, None)
        return f"127.0.0.1:{port}"

    @staticmethod
    async def _stop_service(service) -> None:
        service.stop_event.set()
        await service.task
