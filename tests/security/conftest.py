"""The four services in-process on free ports, with a case whose receiving parent is PARENT."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from dataclasses import replace
from types import SimpleNamespace

import psycopg
import pytest_asyncio

from cms.config import load_settings
from cms.infra.processes import free_port
from services import SERVICES
from services.common.server import serve_in_background

CASE, PARENT, STRANGER = "case-access-1", "party-rp-1", "party-stranger"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def services(database_url: str, dev_temporal) -> AsyncIterator[SimpleNamespace]:
    settings = load_settings()
    settings = replace(settings, database_url=database_url,
                       temporal_address=dev_temporal.service_client.config.target_host,
                       ports={name: free_port() for name in settings.ports})
    running = {}
    for service in SERVICES:
        module = importlib.import_module(f"services.{service.name}.service")
        register = module.make_register(dispatch=False) if service.name == "notifications" else module.register
        running[service.name] = await serve_in_background(service.name, register, settings)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO case_api.cases (case_id, idempotency_key, stage, service_type) "
                     "VALUES (%s, %s, 'Application', 'direct_pay') ON CONFLICT DO NOTHING", (CASE, "access-matrix"))
        conn.execute("INSERT INTO case_api.parties (case_id, party_id, role, full_name) VALUES (%s, %s, "
                     "'receiving_parent', 'R Parent') ON CONFLICT DO NOTHING", (CASE, PARENT))
        conn.execute("INSERT INTO notifications.parties (case_id, party_id, role) VALUES (%s, %s, "
                     "'receiving_parent') ON CONFLICT DO NOTHING", (CASE, PARENT))
    yield SimpleNamespace(address={name: r.address for name, r in running.items()}, url=database_url)
    for started in running.values():
        await started.stop()
