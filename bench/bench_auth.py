"""What proving who is calling costs: GetCase latency (p50/p99) through the token check (ES256
signature, audience, role, and a parent's party-of-the-case lookup) against the same service
without it, in the same run, calls interleaved so both see the same machine. Target: under 10%
added at p50."""

from __future__ import annotations

import asyncio
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import grpc
from psycopg_pool import AsyncConnectionPool

from bench.identity import BenchIdentity
from cms.auth import TokenVerifier
from cms.config import load_settings
from cms.db.migrate import apply_migrations
from cms.grpc_client import channel_with_token
from cms.infra.postgres import postgres_url, start_postgres
from cms.infra.processes import free_port
from cms_proto.case.v1 import case_pb2, case_pb2_grpc
from services import SERVICES_BY_NAME
from services.case_api.service import CaseService
from services.common.auth import AuthInterceptor
from services.common.server import party_check

CASE, PARENT = "case-bench-auth", "party-bench-rp"


def _percentile(samples: list[float], q: float) -> float:
    return sorted(samples)[min(len(samples) - 1, int(q * len(samples)))]


def _seed(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO case_api.cases (case_id, idempotency_key, stage, service_type) "
                     "VALUES (%s, 'bench-auth', 'Active', 'direct_pay')", (CASE,))
        for party, role in ((PARENT, "receiving_parent"), ("party-bench-pp", "paying_parent")):
            conn.execute("INSERT INTO case_api.parties (case_id, party_id, role, full_name, address) "
                         "VALUES (%s, %s, %s, 'A Parent', '1 High Street')", (CASE, party, role))


async def _measure(url: str, identity: BenchIdentity, calls: int) -> tuple[list[float], list[float]]:
    settings = replace(load_settings(), database_url=url)
    pool = AsyncConnectionPool(url, min_size=2, max_size=10, open=False,
                               kwargs={"options": "-c search_path=case_api,public"})
    await pool.open(wait=True)
    gate = AuthInterceptor("case_api", TokenVerifier(str(identity.jwks_file)), party_check(pool, "case_api.parties"))
    servers, addresses = [], []
    for interceptors in ([], [gate]):
        server = grpc.aio.server(interceptors=interceptors)
        case_pb2_grpc.add_CaseServiceServicer_to_server(CaseService(pool, settings), server)
        addresses.append(f"127.0.0.1:{server.add_insecure_port('127.0.0.1:0')}")
        await server.start()
        servers.append(server)
    request = case_pb2.GetCaseRequest(case_id=CASE, viewer_party_id=PARENT)
    token = identity.token_for(PARENT, "parent")
    try:
        async with channel_with_token(addresses[0], token) as bare, channel_with_token(addresses[1], token) as gated:
            stubs = (case_pb2_grpc.CaseServiceStub(bare), case_pb2_grpc.CaseServiceStub(gated))
            samples: tuple[list[float], list[float]] = ([], [])
            for i in range(calls + 50):
                for which in ((0, 1) if i % 2 else (1, 0)):
                    started = time.perf_counter()
                    await stubs[which].GetCase(request, timeout=10)
                    if i >= 50:  # the first calls warm connections and caches
                        samples[which].append(time.perf_counter() - started)
            return samples
    finally:
        for server in servers:
            await server.stop(None)
        await pool.close()


def run(quick: bool = False) -> list[dict]:
    calls = 300 if quick else 2_000
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        root.chmod(0o755)
        pg = start_postgres(root / "pg", free_port(), root / "pg.log")
        try:
            url = postgres_url(int(pg.argv[pg.argv.index("-p") + 1]))
            apply_migrations(url, "case_api", SERVICES_BY_NAME["case_api"].migrations)
            _seed(url)
            identity = BenchIdentity(root)
            without, with_auth = asyncio.run(_measure(url, identity, calls))
        finally:
            pg.stop()
    rows = []
    for label, q, target in (("p50", 0.5, "< 1.10"), ("p99", 0.99, "—")):
        value, baseline = _percentile(with_auth, q) * 1e6, _percentile(without, q) * 1e6
        rows.append({"benchmark": f"GetCase by a parent with token check, {label}", "value": value, "unit": "µs",
                     "baseline": baseline, "ratio": value / baseline, "target": target})
    return rows


if __name__ == "__main__":
    for row in run(quick=True):
        print(row)
