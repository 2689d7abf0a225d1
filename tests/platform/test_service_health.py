"""Every service is a real gRPC server: health SERVING, reflection, graceful NOT_SERVING on stop."""

import asyncio
from dataclasses import replace

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from cms.config import load_settings
from cms.infra.processes import free_port
from services import SERVICES
from services.common.server import serve, serve_in_background

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def _start(service_name: str, database_url: str):
    import importlib

    register = importlib.import_module(f"services.{service_name}.service").register
    settings = load_settings()
    settings = replace(settings, database_url=database_url,
                       ports={**settings.ports, service_name: free_port()})
    return await serve_in_background(service_name, register, settings)


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
async def test_service_is_healthy_reflects_and_stops_gracefully(service, database_url: str) -> None:
    running = await _start(service.name, database_url)
    address = running.address
    async with grpc.aio.insecure_channel(address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        reply = await health.Check(health_pb2.HealthCheckRequest(service=service.full_name), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING

        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        responses = reflection.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")])
        )
        names = [s.name async for r in responses for s in r.list_services_response.service]
        assert service.full_name in names

        with pytest.raises(grpc.aio.AioRpcError) as unknown:
            await health.Check(health_pb2.HealthCheckRequest(service="cms.nope.v1.Nope"), timeout=5)
        assert unknown.value.code() == grpc.StatusCode.NOT_FOUND

    await running.stop()
    async with grpc.aio.insecure_channel(address) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as gone:
            await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
        assert gone.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_port_in_use_gives_one_clear_line(database_url: str) -> None:
    from cms.errors import StartupError
    from services.risk.service import register

    settings = load_settings()
    port = free_port()
    settings = replace(settings, database_url=database_url, ports={**settings.ports, "risk": port})
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen()
        with pytest.raises(StartupError, match=f"port {port} .* already in use"):
            await serve("risk", register, settings, asyncio.Event())


async def test_unreachable_database_gives_one_clear_line() -> None:
    from cms.errors import StartupError
    from services.risk.service import register

    settings = load_settings()
    settings = replace(settings, database_url=f"postgresql://postgres@127.0.0.1:{free_port()}/postgres",
                       ports={**settings.ports, "risk": free_port()})
    with pytest.raises(StartupError, match="cannot reach the database"):
        await serve("risk", register, settings, asyncio.Event())
