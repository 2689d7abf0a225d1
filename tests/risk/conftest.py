"""Risk test fixtures: the payments service in-process on a database of its own, so the risk
service can read case ledgers through payments' gRPC API as it does in production."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest_asyncio

from cms.config import load_settings
from cms.infra.processes import free_port
from cms_proto.payments.v1 import payments_pb2_grpc
from services.common.server import serve_in_background
from services.payments.bank import FakeBank
from services.payments.service import register as register_payments
from tests.helpers.auth import caller_channel
from tests.payments.payments_helpers import fresh_database


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def payments_address(database_url: str) -> AsyncIterator[str]:
    settings = load_settings()
    settings = replace(settings, database_url=fresh_database(database_url, "risk_payments_tests"),
                       ports={**settings.ports, "payments": free_port()})
    service = await serve_in_background("payments", functools.partial(register_payments, bank=FakeBank(seed=7)),
                                        settings)
    yield service.address
    await service.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def payments(payments_address: str) -> AsyncIterator[payments_pb2_grpc.PaymentsServiceStub]:
    async with caller_channel(payments_address) as channel:
        yield payments_pb2_grpc.PaymentsServiceStub(channel)
