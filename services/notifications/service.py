"""NotificationsService (cms.notifications.v1): servicer and registration on a gRPC server."""

from __future__ import annotations

import grpc
from psycopg_pool import AsyncConnectionPool

from cms.notifications.v1 import notifications_pb2_grpc
from cms.config import Settings


class NotificationsService(notifications_pb2_grpc.NotificationsServiceServicer):
    def __init__(self, pool: AsyncConnectionPool, settings: Settings):
        self._pool = pool
        self._settings = settings


async def register(server: grpc.aio.Server, pool: AsyncConnectionPool, settings: Settings) -> None:
    notifications_pb2_grpc.add_NotificationsServiceServicer_to_server(NotificationsService(pool, settings), server)
