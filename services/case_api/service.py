"""CaseService (cms.case.v1): servicer and registration on a gRPC server."""

from __future__ import annotations

import grpc
from psycopg_pool import AsyncConnectionPool

from cms.case.v1 import case_pb2_grpc
from cms.config import Settings


class CaseService(case_pb2_grpc.CaseServiceServicer):
    def __init__(self, pool: AsyncConnectionPool, settings: Settings):
        self._pool = pool
        self._settings = settings


async def register(server: grpc.aio.Server, pool: AsyncConnectionPool, settings: Settings) -> None:
    case_pb2_grpc.add_CaseServiceServicer_to_server(CaseService(pool, settings), server)
