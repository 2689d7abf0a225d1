"""RiskService (cms.risk.v1): servicer and registration on a gRPC server."""

from __future__ import annotations

import grpc
from psycopg_pool import AsyncConnectionPool

from cms.risk.v1 import risk_pb2_grpc
from cms.config import Settings


class RiskService(risk_pb2_grpc.RiskServiceServicer):
    def __init__(self, pool: AsyncConnectionPool, settings: Settings):
        self._pool = pool
        self._settings = settings


async def register(server: grpc.aio.Server, pool: AsyncConnectionPool, settings: Settings) -> None:
    risk_pb2_grpc.add_RiskServiceServicer_to_server(RiskService(pool, settings), server)
