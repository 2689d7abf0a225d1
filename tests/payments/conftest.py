"""Payments test fixtures: a database of our own (the ledger is reconciled globally, so other
tests' rows must not mix in) and the payments gRPC service in-process with a fake bank."""

from __future__ import annotations

import asyncio
import functools
import itertools
from dataclasses import replace

import grpc
import pytest
import pytest_asyncio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cms.config import load_settings
from cms.infra.processes import free_port
from cms_proto.payments.v1 import payments_pb2_grpc
from services.common.server import serve
from services.payments.bank import FakeBank
from services.payments.service import register
from tests.payments.payments_helpers import fresh_database

_counter = itertools.count(1)


@pytest.fixture(scope="session")
def payments_db(database_url: str) -> str:
    return fresh_database(database_url, "payments_tests")


@pytest.fixture
def case_id() -> str:
    return f"pay-{next(_counter):05d}"


@pytest.fixture(scope="session")
def fake_bank() -> FakeBank:
    return FakeBank(seed=7)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def payments_stub(payments_db: str, fake_bank: FakeBank):
    settings = load_settings()
    settings = replace(settings, database_url=payments_db, ports={**settings.ports, "payments": free_port()})
    stop = asyncio.Event()
    task = asyncio.create_task(serve("payments", functools.partial(register, bank=fake_bank), settings, stop))
    address = settings.address_of("payments")
    for _ in range(200):
        if task.done():
            task.result()
        try:
            async with grpc.aio.insecure_channel(address) as channel:
                await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
            break
        except grpc.aio.AioRpcError:
            await asyncio.sleep(0.1)
    channel = grpc.aio.insecure_channel(address)
    stub = payments_pb2_grpc.PaymentsServiceStub(channel)
    stub.address = address   # for activities under test
    yield stub
    await channel.close()
    stop.set()
    await asyncio.wait_for(task, timeout=20)

