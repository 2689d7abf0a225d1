"""Payments test fixtures: a database of our own (the ledger is reconciled globally, so other
tests' rows must not mix in) and the payments gRPC service in-process with a fake bank."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import TYPE_CHECKING

import grpc
import pytest
import pytest_asyncio

from cms.config import Settings, load_settings
from cms.infra.processes import free_port
from services.common.server import serve_in_background
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


@contextlib.asynccontextmanager
async def payments_service(settings: Settings, bank: FakeBank) -> AsyncIterator[AddressedPaymentsStub]:
    """The payments service in this event loop, called with a caller's token until the block ends."""
    running = await serve_in_background("payments", functools.partial(register, bank=bank), settings)
    channel = caller_channel(running.address)
    try:
        yield AddressedPaymentsStub(channel, running.address)
    finally:
        await channel.close()
        running.stop_event.set()
        await asyncio.wait_for(running.task, timeout=20)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def payments_stub(payments_db: str, fake_bank: FakeBank) -> AsyncIterator[AddressedPaymentsStub]:
    settings = load_settings()
    settings = replace(settings, database_url=payments_db, ports={**settings.ports, "payments": free_port()})
    async with payments_service(settings, fake_bank) as stub:
        yield stub

