"""A secured Temporal cluster: every client and worker connects through `cms.temporal.connect`,
which takes mutual TLS (TEMPORAL_TLS_CERT/KEY/CA) or an API key from the settings. A TLS proxy in
front of the dev server plays the cluster: with a client certificate from its CA a case goes
through it and back; without one, the connection is refused."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from pathlib import Path

import pytest
from psycopg_pool import AsyncConnectionPool
from temporalio.client import Client
from temporalio.worker import Worker

from cms.config import TASK_QUEUE_CASES, load_settings
from cms.errors import StartupError
from cms.temporal import connect, security_options
from cms.worker_catalog import case_activities
from tests.cases.case_helpers import ScriptedHmrc
from tests.helpers.tls import TestAuthority, tls_proxy
from workflows.case import CaseWorkflow
from workflows.case_messages import CaseInput, ChildFacts, NoteRequest

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_with_a_client_certificate_a_case_goes_through_and_without_one_it_is_refused(
        dev_temporal: Client, database_url: str, tmp_path: Path) -> None:
    authority = TestAuthority(tmp_path)
    server = authority.issue("localhost", server=True)
    caseworker_host = authority.issue("cms-worker", server=False)
    stranger = TestAuthority(tmp_path, "Another CA").issue("stranger", server=False)
    upstream = dev_temporal.service_client.config.target_host
    async with tls_proxy(upstream, server, authority.cert) as (address, accepted):
        secured = replace(load_settings(), temporal_address=address, temporal_tls_ca=authority.cert,
                          temporal_tls_cert=caseworker_host.cert, temporal_tls_key=caseworker_host.key,
                          temporal_tls_server_name="localhost")
        client = await asyncio.wait_for(connect(secured), 60)
        await _a_case_round_trip(client, database_url)

        for outsider in (replace(secured, temporal_tls_cert=None, temporal_tls_key=None),
                         replace(secured, temporal_tls_cert=stranger.cert, temporal_tls_key=stranger.key)):
            with pytest.raises(StartupError, match="cannot reach Temporal"):
                await asyncio.wait_for(connect(outsider), 60)
        # Refused at the handshake: every connection the proxy let through carried the worker's certificate.
        assert accepted and set(accepted) == {"cms-worker"}


async def _a_case_round_trip(client: Client, database_url: str) -> None:
    queue = f"{TASK_QUEUE_CASES}-tls-{uuid.uuid4().hex[:6]}"
    case_id = f"tls-{uuid.uuid4().hex[:8]}"
    async with AsyncConnectionPool(database_url, open=False, min_size=1, max_size=2) as pool, \
            Worker(client, task_queue=queue, workflows=[CaseWorkflow], activities=case_activities(pool, ScriptedHmrc())):
        handle = await client.start_workflow(
            CaseWorkflow.run, CaseInput(case_id=case_id, children=[ChildFacts("c-1", "2015-01-01")],
                                        publish_search_attributes=False),
            id=f"case-{case_id}", task_queue=queue)
        try:
            result = await handle.execute_update(CaseWorkflow.add_note, NoteRequest(text="over TLS", author="cw-1"))
            assert result.entries >= 1
            assert (await handle.query(CaseWorkflow.state)).case_id == case_id
        finally:
            await handle.terminate("round trip done")


def test_plain_grpc_unless_a_secured_cluster_is_configured(tmp_path: Path) -> None:
    settings = replace(load_settings(), temporal_tls_cert=None, temporal_tls_key=None, temporal_tls_ca=None,
                       temporal_api_key="")
    assert security_options(settings) == {}

    with_key = security_options(replace(settings, temporal_api_key="cloud-key"))
    assert with_key["api_key"] == "cloud-key" and with_key["tls"].client_cert is None  # API keys go over TLS only

    with pytest.raises(StartupError, match="TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY"):
        security_options(replace(settings, temporal_tls_cert=tmp_path / "cert.pem"))
    with pytest.raises(StartupError, match="TEMPORAL_TLS_CA=.*cannot be read"):
        security_options(replace(settings, temporal_tls_ca=tmp_path / "missing-ca.pem"))
