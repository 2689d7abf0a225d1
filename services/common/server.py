"""Runs one gRPC service: health, reflection, structured logs, graceful shutdown, migrations.

A service module provides `register(server, pool, settings)` which adds its servicer; this
runner does the rest, so every service behaves the same way to operators.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import start_http_server
from psycopg_pool import AsyncConnectionPool

from cms.auth import TokenVerifier
from cms.config import Settings, load_settings
from cms.db.migrate import apply_migrations
from cms.errors import StartupError
from cms.infra.postgres import check_reachable
from cms.infra.processes import require_free_port
from cms.log import configure_logging
from services import SERVICES_BY_NAME
from services.common.auth import AuthInterceptor, PartyCheck
from services.common.metrics import MetricsInterceptor

Register = Callable[[grpc.aio.Server, AsyncConnectionPool, Settings], Awaitable[Any]]

GRACE_SECONDS = 10


async def serve(service_name: str, register: Register, settings: Settings | None = None,
                stop_event: asyncio.Event | None = None) -> None:
    settings = settings or load_settings()
    info = SERVICES_BY_NAME[service_name]
    log = configure_logging(service_name)
    port = settings.port_of(service_name)
    require_free_port(settings.grpc_host, port, service_name, f"{service_name.upper()}_PORT")
    verifier = _verifier(settings)
    check_reachable(settings.database_url)
    applied = apply_migrations(settings.database_url, info.schema, info.migrations)
    if applied:
        log.info("migrations_applied", schema=info.schema, versions=applied)

    pool = AsyncConnectionPool(
        settings.database_url, min_size=1, max_size=10, open=False,
        kwargs={"options": f"-c search_path={info.schema},public"},
    )
    await pool.open(wait=True, timeout=30)
    gate = AuthInterceptor(service_name, verifier, party_check(pool, info.parties_table))
    server = grpc.aio.server(interceptors=[MetricsInterceptor(service_name), gate])
    _serve_metrics(port, log)
    extra = await register(server, pool, settings)

    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (info.full_name, reflection.SERVICE_NAME, health.SERVICE_NAME), server
    )
    server.add_insecure_port(f"{settings.grpc_host}:{port}")
    await server.start()
    for name in ("", info.full_name):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("service_started", address=f"{settings.grpc_host}:{port}")

    stop = stop_event or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(signum, stop.set)
        except (NotImplementedError, RuntimeError):
            pass  # not the main thread (tests run several services in one process)
    await stop.wait()

    # Graceful: report NOT_SERVING so load balancers drain, finish in-flight calls, then close.
    log.info("service_stopping")
    await health_servicer.enter_graceful_shutdown()
    await server.stop(GRACE_SECONDS)
    closer = getattr(extra, "aclose", None)
    if closer is not None:
        await closer()
    await pool.close()
    log.info("service_stopped")


@dataclass
class RunningService:
    """A service started by `serve_in_background`: its address, and how to stop it."""

    address: str
    stop_event: asyncio.Event
    task: asyncio.Task

    async def stop(self, timeout: float = 20) -> None:
        self.stop_event.set()
        await asyncio.wait_for(self.task, timeout)


async def serve_in_background(service_name: str, register: Register, settings: Settings,
                              timeout: float = 30) -> RunningService:
    """Starts a service inside this event loop and returns once its health check answers.

    For tests and benchmarks, which run services in-process on free ports. A start-up failure
    is raised here rather than lost in the background task.
    """
    stop = asyncio.Event()
    task = asyncio.create_task(serve(service_name, register, settings, stop))
    address = settings.address_of(service_name)
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        if task.done():
            task.result()
            raise RuntimeError(f"{service_name} stopped before it served")
        try:
            async with grpc.aio.insecure_channel(address) as channel:
                await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
            return RunningService(address, stop, task)
        except grpc.aio.AioRpcError:
            if asyncio.get_running_loop().time() > deadline:
                stop.set()
                raise
            await asyncio.sleep(0.1)


def _verifier(settings: Settings) -> TokenVerifier:
    """The keys callers' tokens are checked with; no service answers anyone without them."""
    if not settings.auth_jwks:
        raise StartupError("no token keys configured: set CMS_AUTH_JWKS to a JWKS file or URL "
                           "(`make run` sets it to .data/auth/jwks.json)")
    try:
        return TokenVerifier(settings.auth_jwks)
    except (OSError, ValueError) as error:
        raise StartupError(f"CMS_AUTH_JWKS={settings.auth_jwks}: cannot read the token keys ({error})") from None


# How long "this party is a party of that case" is remembered: a case's parties are fixed when it
# is opened, so only a "yes" is kept, and briefly; a "no" is asked again every time.
PARTY_ANSWER_SECONDS = 60.0


def party_check(pool: AsyncConnectionPool, parties_table: str) -> PartyCheck | None:
    """Whether a party is a party of a case, from the service's own parties table."""
    if not parties_table:
        return None
    query = f"SELECT EXISTS (SELECT 1 FROM {parties_table} WHERE case_id = %s AND party_id = %s)"
    known: dict[tuple[str, str], float] = {}

    async def is_party(case_id: str, party_id: str) -> bool:
        now = time.monotonic()
        if known.get((case_id, party_id), 0.0) > now:
            return True
        async with pool.connection() as conn:
            row = await (await conn.execute(query, (case_id, party_id))).fetchone()
        if row and row[0]:
            if len(known) > 10_000:
                known.clear()
            known[(case_id, party_id)] = now + PARTY_ANSWER_SECONDS
            return True
        return False

    return is_party


def _serve_metrics(grpc_port: int, log: Any) -> None:
    if os.environ.get("CMS_METRICS", "off") == "off":
        return
    metrics_port = int(os.environ.get("METRICS_PORT") or grpc_port + 1000)
    try:
        start_http_server(metrics_port, addr="127.0.0.1")
        log.info("metrics_serving", address=f"127.0.0.1:{metrics_port}/metrics")
    except OSError as error:  # metrics are useful, not essential: never stop the service for them
        log.warning("metrics_unavailable", port=metrics_port, error=str(error))


def main(service_name: str, register: Register) -> None:
    try:
        asyncio.run(serve(service_name, register))
    except StartupError as error:
        raise SystemExit(f"error: {service_name}: {error}") from None
