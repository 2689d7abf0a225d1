"""Risk scoring: single-score latency through gRPC (p50/p99) and batch throughput, as ratios to
in-process LightGBM prediction measured in the same run."""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from bench.identity import BenchIdentity
from cms.config import load_settings
from cms.db.migrate import apply_migrations
from cms.grpc_client import channel_with_token
from cms.infra.postgres import postgres_url, start_postgres
from cms.infra.processes import free_port
from cms_proto.risk.v1 import risk_pb2, risk_pb2_grpc
from domain.risk import PaymentFeatures, to_vector
from services import SERVICES_BY_NAME
from services.common.server import serve_in_background
from services.risk.model import RiskModel
from services.risk.service import register


def _features(i: int) -> dict:
    return dict(case_id=f"bench-{i}", payments_due_last_12=12, payments_missed_last_12=i % 5,
                payments_part_last_12=i % 3, days_since_last_payment=i % 60, arrears_pence=(i % 7) * 5000,
                weekly_liability_pence=5000 + i % 900, method=("direct_debit", "standing_order")[i % 2],
                frequency="monthly", case_age_days=100 + i % 2000, collect_and_pay=True)


def _percentile(samples: list[float], q: float) -> float:
    return sorted(samples)[min(len(samples) - 1, int(q * len(samples)))]


async def _grpc_run(address: str, token: str, singles: int, batch_rows: int) -> tuple[list[float], float]:
    async with channel_with_token(address, token) as channel:
        stub = risk_pb2_grpc.RiskServiceStub(channel)
        latencies = []
        for i in range(singles):
            started = time.perf_counter()
            await stub.Score(risk_pb2.ScoreRequest(features=risk_pb2.PaymentFeatures(**_features(i))))
            latencies.append(time.perf_counter() - started)
        request = risk_pb2.ScoreBatchRequest(features=[risk_pb2.PaymentFeatures(**_features(i)) for i in range(batch_rows)])
        started = time.perf_counter()
        await stub.ScoreBatch(request, timeout=120)
        return latencies, batch_rows / (time.perf_counter() - started)


def run(quick: bool = False) -> list[dict]:
    singles, batch_rows = (200, 5_000) if quick else (2_000, 10_000)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        root.chmod(0o755)
        pg = start_postgres(root / "pg", free_port(), root / "pg.log")
        try:
            url = postgres_url(int(pg.argv[pg.argv.index("-p") + 1]))
            apply_migrations(url, "risk", SERVICES_BY_NAME["risk"].migrations)
            identity = BenchIdentity(root)
            settings = load_settings()
            settings = replace(settings, database_url=url, data_dir=root, ports={**settings.ports, "risk": free_port()})
            model = RiskModel.load_or_train(root / "models" / "risk-lgbm.txt")
            rows = [to_vector(PaymentFeatures(**_features(i))) for i in range(batch_rows)]
            in_process = []
            for row in rows[:singles]:
                started = time.perf_counter()
                model.probabilities_ppm([row])
                in_process.append(time.perf_counter() - started)
            started = time.perf_counter()
            model.probabilities_ppm(rows)
            in_process_batch = batch_rows / (time.perf_counter() - started)

            async def measure():
                service = await serve_in_background("risk", register, settings)
                try:
                    return await _grpc_run(service.address, identity.token_for("worker", "service"),
                                           singles, batch_rows)
                finally:
                    await service.stop()

            latencies, grpc_batch = asyncio.run(measure())
        finally:
            pg.stop()
    p50, p99 = _percentile(latencies, 0.5) * 1e6, _percentile(latencies, 0.99) * 1e6
    base50 = statistics.median(in_process) * 1e6
    return [
        {"benchmark": "single score via gRPC, p50", "value": p50, "unit": "µs", "baseline": base50,
         "ratio": base50 / p50, "target": "—"},
        {"benchmark": "single score via gRPC, p99", "value": p99, "unit": "µs",
         "baseline": _percentile(in_process, 0.99) * 1e6, "ratio": None, "target": "—"},
        {"benchmark": "batch scoring via gRPC", "value": grpc_batch, "unit": "rows/s", "baseline": in_process_batch,
         "ratio": grpc_batch / in_process_batch, "target": "—"},
    ]


if __name__ == "__main__":
    for row in run(quick=True):
        print(row)
