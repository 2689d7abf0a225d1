"""Payments test fixtures: a database of our own (the ledger is reconciled globally, so other
tests' rows must not mix in) and the payments gRPC service in-process with a fake bank."""

from __future__ import annotations

import asyncio
import functools
import itertools
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import TYPE_CHECKING

import grpc
import pytest
import pytest_asyncio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cms.config import load_settings
from cms.infra.processes import free_port
from services.common.server import serve
from services.payments.bank import FakeBank
from services.payments.service import register
from tests.helpers.auth import caller_channel
from tests.payments.payments_helpers import fresh_database

if TYPE_CHECKING:
    # The stubs declare the asyncio flavour of the client for the type checker only: at run time
    # one generated class serves both kinds of channel.
    from cms_proto.payments.v1.payments_pb2_grpc import PaymentsServiceAsyncStub as _PaymentsClient
else:
    from cms_proto.payments.v1.payments_pb2_grpc import PaymentsServiceStub as _PaymentsClient

_counter = itertools.count(1)


class AddressedPaymentsStub(_PaymentsClient):
    """The payments service's client on an asyncio channel, with the address it dials: activities
    under test open channels of their own to the same service."""

    def __init__(self, channel: grpc.aio.Channel, address: str) -> None:
        super().__init__(channel)
        self.address = address


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
async def payments_stub(payments_db: str, fake_bank: FakeBank) -> AsyncIterator[AddressedPaymentsStub]:
    settings = load_settings()
    settings = replace(settings, database_url=payments_db, ports={**settings.ports, "payments": free_port()})
    stop = asyncio.Event()
    task = asyncio.create_task(serve("payments", functools.partial(register, bank=fake_bank), settings, stop))
    address = settings.address_of("payments")
    for _ in range(200):
        if task.done():
            task.result()
        try:
            async with caller_channel(address) as channel:
                await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
            break
        except grpc.aio.AioRpcError:
            await asyncio.sleep(0.1)
    channel = caller_channel(address)
    yield AddressedPaymentsStub(channel, address)
    await channel.close()
    stop.set()
    await asyncio.wait_for(task, timeout=20)

