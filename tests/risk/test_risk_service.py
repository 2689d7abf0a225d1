"""RiskService over real gRPC: scores, bands, reasons, validation, and the scores it records."""

from dataclasses import replace
from pathlib import Path
from typing import Any

import grpc
import psycopg
import pytest

from cms.config import load_settings
from cms.infra.processes import free_port
from cms_proto.risk.v1 import risk_pb2, risk_pb2_grpc
from services.common.errors import field_violations_of
from services.common.server import serve_in_background
from services.risk.service import register
from tests.helpers.auth import caller_channel

pytestmark = pytest.mark.asyncio(loop_scope="session")

RELIABLE: dict[str, Any] = dict(payments_due_last_12=12, days_since_last_payment=5, weekly_liability_pence=5000,
                method="deduction_from_earnings", frequency="monthly", case_age_days=900, collect_and_pay=True)
FAILING: dict[str, Any] = dict(payments_due_last_12=12, payments_missed_last_12=8, payments_part_last_12=2,
               days_since_last_payment=90, arrears_pence=40000, weekly_liability_pence=5000,
               method="standing_order", frequency="monthly", income_changes_last_12=2,
               changes_reported_last_12=3, case_age_days=200, collect_and_pay=True)


@pytest.fixture(scope="module")
async def risk_address(database_url: str, tmp_path_factory):
    settings = load_settings()
    settings = replace(settings, database_url=database_url, data_dir=Path(tmp_path_factory.mktemp("risk")),
                       ports={**settings.ports, "risk": free_port()})
    service = await serve_in_background("risk", register, settings)
    yield service.address
    await service.stop()


async def _score(address: str, **fields) -> risk_pb2.ScoreResponse:
    async with caller_channel(address) as channel:
        return await risk_pb2_grpc.RiskServiceStub(channel).Score(
            risk_pb2.ScoreRequest(features=risk_pb2.PaymentFeatures(**fields)), timeout=10)


async def test_failing_history_scores_high_and_reliable_one_low(risk_address: str, database_url: str) -> None:
    reliable = await _score(risk_address, case_id="risk-a", **RELIABLE)
    failing = await _score(risk_address, case_id="risk-b", **FAILING)
    assert failing.probability_ppm > reliable.probability_ppm
    assert failing.band == "high" and failing.start_early_intervention
    assert reliable.band == "low" and not reliable.start_early_intervention
    assert failing.reasons and failing.model_version.startswith("lgbm-")
    with psycopg.connect(database_url) as conn:
        stored = conn.execute("SELECT probability_ppm FROM risk.scores WHERE case_id = 'risk-b'").fetchall()
    assert stored == [(failing.probability_ppm,)]


async def test_direct_pay_case_never_starts_intervention(risk_address: str) -> None:
    reply = await _score(risk_address, case_id="risk-c", **{**FAILING, "collect_and_pay": False})
    assert not reply.start_early_intervention


async def test_batch_scores_in_order(risk_address: str) -> None:
    async with caller_channel(risk_address) as channel:
        reply = await risk_pb2_grpc.RiskServiceStub(channel).ScoreBatch(risk_pb2.ScoreBatchRequest(features=[
            risk_pb2.PaymentFeatures(case_id=f"risk-batch-{i}", **(FAILING if i % 2 else RELIABLE)) for i in range(6)
        ]), timeout=10)
    assert [s.case_id for s in reply.scores] == [f"risk-batch-{i}" for i in range(6)]
    assert all(reply.scores[i].probability_ppm > reply.scores[i - 1].probability_ppm for i in (1, 3, 5))


async def test_bad_features_are_invalid_argument_with_fields(risk_address: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await _score(risk_address, case_id="", payments_due_last_12=2, payments_missed_last_12=3, method="cash")
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    fields = {field for field, _ in field_violations_of(error.value)}
    assert fields == {"features.case_id", "features.method", "features.payments_missed_last_12"}
