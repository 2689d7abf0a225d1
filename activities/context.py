"""Shared resources of activities in one worker process (a database pool), set at worker start."""

from __future__ import annotations

from psycopg_pool import AsyncConnectionPool

_pool: AsyncConnectionPool | None = None


def set_db_pool(pool: AsyncConnectionPool | None) -> None:
    global _pool
    _pool = pool


def db_pool() -> AsyncConnectionPool:
    if _pool is None:
        raise RuntimeError("the worker has not opened its database pool")
    return _pool
