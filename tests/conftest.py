"""Shared fixtures: real PostgreSQL (embedded) and real Temporal, each started once per session.

- `database_url`: an embedded PostgreSQL on a free port, in a temporary folder, with every
  service's migrations applied.
- `time_skipping_env`: Temporal's Java time-skipping test server, for workflow logic.
- `dev_temporal`: a headless Temporal dev server (SQLite in memory) with the custom search
  attributes, for visibility (list/count), search attributes and update-with-start.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from hypothesis import settings as hypothesis_settings
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from cms.db.migrate import apply_migrations
from cms.infra.postgres import postgres_url, start_postgres
from cms.infra.processes import free_port
from cms.infra.temporal_server import start_dev_server, temporal_test_server
from cms.payload_codec import new_key_ring
from cms.temporal import connect_when_ready
from services import SERVICES
from tests.helpers.auth import install_environment

# The notifications database fixtures, for the notifications and safeguarding tests.
pytest_plugins = ["tests.notifications.fixtures"]

# Payload keys for this session, inherited by every service and worker a test starts: every client
# and worker encrypts history with them, as in production.
os.environ["CMS_PAYLOAD_KEYS"] = new_key_ring("tests-1").to_json()
# The case API's secret that keys case ids (services/case_api/case_ids.py).
os.environ["CMS_CASE_ID_SECRET"] = secrets.token_urlsafe(32)

# The session's token keys (tests/helpers/auth.py): every service a test starts checks tokens
# against its JWKS, and the worker and the case API present a service token signed with it.
install_environment()

# Property tests share the machine with the servers above, so an example may take longer than
# Hypothesis's default 200 ms deadline for reasons that are not the code's: no deadline (timing
# belongs in `make bench`), and a failure prints the blob that reproduces it.
hypothesis_settings.register_profile("cms", deadline=None, print_blob=True)
hypothesis_settings.load_profile("cms")


@pytest.fixture(scope="session")
def scratch_dir() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="cms-tests-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server(scratch_dir: Path) -> Iterator[dict]:
    port = free_port()
    process = start_postgres(scratch_dir / "pgdata", port, scratch_dir / "postgres.log")
    yield {"process": process, "port": port, "data_dir": scratch_dir / "pgdata",
           "log": scratch_dir / "postgres.log"}
    process.stop()


@pytest.fixture(scope="session")
def database_url(postgres_server: dict) -> str:
    url = postgres_url(postgres_server["port"])
    for service in SERVICES:
        apply_migrations(url, service.schema, service.migrations)
    os.environ["DATABASE_URL"] = url
    return url


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    # One server per test module: time is global to a time-skipping server, so a workflow left
    # with a pending task by one module would otherwise hold the clock for every later one.
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(temporal_test_server())
    )
    yield env
    await env.shutdown()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def dev_temporal(scratch_dir: Path) -> AsyncIterator[Client]:
    port = free_port()
    process = start_dev_server(port, None, None, scratch_dir / "temporal-dev.log")
    client = await connect_when_ready(f"127.0.0.1:{port}")
    yield client
    process.stop()
