"""PaymentsService (cms.payments.v1): servicer and registration on a gRPC server."""

from __future__ import annotations

import grpc
from psycopg_pool import AsyncConnectionPool

from cms.payments.v1 import payments_pb2_grpc
from cms.config import Settings


class PaymentsService(payments_pb2_grpc.PaymentsServiceServicer):
    def __init__(self, pool: AsyncConnectionPool, settings: Settings):
        self._pool = pool
        self._settings = settings


async def register(server: grpc.aio.Server, pool: AsyncConnectionPool, settings: Settings) -> None:
    payments_pb2_grpc.add_PaymentsServiceServicer_to_server(PaymentsService(pool, settings), server)
