import asyncio
from pathlib import Path

import pytest
import pytest_asyncio
from psycopg_pool import AsyncConnectionPool

from tests.helpers.auth import caller_channel
from tests.notifications.support import start_service, stub_for


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def notifications_pool(notifications_db: str):
    async with AsyncConnectionPool(notifications_db, min_size=1, max_size=8, open=False) as pool:
        await pool.wait()
        yield pool


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def notifications_stub(notifications_db: str, scratch_dir: Path):
    """The service without its background dispatcher: tests drive dispatchers themselves."""
    address, stop, task = await start_service(notifications_db, scratch_dir / "notifications-data", dispatch=False)
    _addresses.append(address)
    async with caller_channel(address) as channel:
        yield stub_for(channel)
    stop.set()
    await asyncio.wait_for(task, timeout=20)


_addresses: list[str] = []


@pytest.fixture
def notifications_address(notifications_stub) -> str:
    return _addresses[-1]
