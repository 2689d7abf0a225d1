"""ScoreCase over real gRPC: the risk service reads the case's ledger from the payments service,
scores it with the model version asked for, explains the score, and refuses bad requests clearly."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import grpc
import psycopg
import pytest
import pytest_asyncio

from cms.config import load_settings
from cms.errors import StartupError
from cms.infra.processes import free_port
from cms_proto.payments.v1 import payments_pb2 as pay
from cms_proto.risk.v1 import risk_pb2, risk_pb2_grpc
from domain.risk_features import REASON_TEXT, is_eligible
from domain.risk_simulation import simulate
from services.common.server import serve_in_background
from services.risk import artefact
from services.risk.case_model import ModelShelf
from services.risk.service import register
from tests.helpers.auth import caller_channel
from tests.risk.history_posting import post_history

on_session_loop = pytest.mark.asyncio(loop_scope="session")

ENDS_ON = date(2026, 6, 29)
TINY = artefact.TrainingConfig(cases=400, seed=5, ends_on=ENDS_ON, years=2.0, train_every_weeks=4,
                               trees=40, bootstrap_reps=10)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> tuple[Path, str]:
    directory = Path(tmp_path_factory.mktemp("risk-models"))
    version = artefact.write(artefact.train_and_evaluate(TINY, trained_on=date(2026, 7, 1)), directory)
    return directory, version


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def risk(models, payments_address: str, database_url: str, tmp_path_factory) -> AsyncIterator[str]:
    directory, _ = models
    settings = load_settings()
    settings = replace(settings, database_url=database_url, data_dir=Path(tmp_path_factory.mktemp("risk-data")),
                       ports={**settings.ports, "risk": free_port(), "payments": int(payments_address.rsplit(":", 1)[1])})
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RISK_MODELS_DIR", str(directory))
        patch.delenv("RISK_MODEL_VERSION", raising=False)
        service = await serve_in_background("risk", register, settings)
    yield service.address
    await service.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def stub(risk: str) -> AsyncIterator[risk_pb2_grpc.RiskServiceStub]:
    async with caller_channel(risk) as channel:
        yield risk_pb2_grpc.RiskServiceStub(channel)


async def _score(stub, case_id: str, as_of: date | str, version: str = "") -> risk_pb2.CaseScore:
    return await stub.ScoreCase(risk_pb2.ScoreCaseRequest(case_id=case_id, as_of=str(as_of), model_version=version),
                                timeout=10)


@on_session_loop
async def test_a_case_is_scored_from_its_ledger_with_reasons(stub, payments, models, database_url) -> None:
    cases = simulate(200, seed=21, ends_on=ENDS_ON, years=1.5)
    slipping = next(c for c in cases if c.causes and c.causes[0].kind == "income_drop"
                    and c.causes[0].warning_from < ENDS_ON - timedelta(days=60))
    steady = next(c for c in cases if c.payer_type == "reliable" and not c.causes)
    for case in (slipping, steady):
        await post_history(payments, case)
    as_of = slipping.causes[0].effect_from + timedelta(days=14)
    scored = await _score(stub, slipping.case_id, as_of)
    calm = await _score(stub, steady.case_id, as_of)
    assert scored.model_version == calm.model_version == models[1]
    assert scored.probability_ppm > calm.probability_ppm
    assert scored.eligible == is_eligible(slipping.ledger(), as_of)
    assert scored.reasons and all(r.text == REASON_TEXT[r.feature] and r.contribution_micro > 0 for r in scored.reasons)
    assert [r.contribution_micro for r in scored.reasons] == sorted((r.contribution_micro for r in scored.reasons),
                                                                    reverse=True)
    assert calm.eligible and not calm.start_early_intervention
    with psycopg.connect(database_url) as conn:
        stored = conn.execute("SELECT probability_ppm, model_version FROM risk.scores WHERE case_id = %s",
                              (slipping.case_id,)).fetchall()
    assert stored == [(scored.probability_ppm, models[1])]


@on_session_loop
async def test_model_info_gives_version_training_day_and_backtest(stub, models) -> None:
    info = await stub.GetModelInfo(risk_pb2.GetModelInfoRequest(), timeout=10)
    assert info.version == models[1] and info.served and info.trained_on == "2026-07-01"
    assert models[1] in info.versions
    by_name = {(m.model, m.name): m for m in info.metrics}
    for model in ("lightgbm", "logistic", "rule"):
        metric = by_name[(model, "precision_at_capacity")]
        assert metric.low <= metric.value <= metric.high
    assert "8 weeks" in info.label


async def _refusal(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    return error.value


@on_session_loop
async def test_bad_requests_are_refused_clearly(stub, payments) -> None:
    unknown = await _refusal(_score(stub, "no-such-case", "2026-06-01"))
    assert unknown.code() == grpc.StatusCode.NOT_FOUND and "no-such-case" in (unknown.details() or "")

    await payments.CreateSchedule(pay.CreateScheduleRequest(
        idempotency_key="risk-direct-pay/schedule", case_id="risk-direct-pay", service_type="direct_pay",
        frequency=pay.FREQUENCY_MONTHLY, method=pay.METHOD_STANDING_ORDER, effective_date="2026-01-05",
        weekly_liability_pence=4000), timeout=10)
    direct = await _refusal(_score(stub, "risk-direct-pay", "2026-06-01"))
    assert direct.code() == grpc.StatusCode.FAILED_PRECONDITION and "Collect & Pay" in (direct.details() or "")

    version = await _refusal(_score(stub, "risk-direct-pay", "2026-06-01", version="lgbm-19990101-nothing"))
    assert version.code() == grpc.StatusCode.NOT_FOUND and "lgbm-19990101-nothing" in (version.details() or "")

    future = await _refusal(_score(stub, "risk-direct-pay", date.today() + timedelta(days=2)))
    assert future.code() == grpc.StatusCode.INVALID_ARGUMENT and "future" in (future.details() or "")


def test_a_corrupt_or_missing_model_stops_the_start_with_one_line(models, tmp_path) -> None:
    good, version = models
    directory = tmp_path / "models"
    shutil.copytree(good / version, directory / version)
    corrupt = directory / "lgbm-20260702-corrupt"
    corrupt.mkdir()
    (corrupt / "model.txt").write_text("tree\nnot a model\n")
    (corrupt / "card.json").write_text((good / version / "card.json").read_text())
    for wanted in ("lgbm-20260702-corrupt", "lgbm-20260703-absent"):
        with pytest.raises(StartupError) as error:
            ModelShelf(directory, wanted)
        message = str(error.value)
        assert "\n" not in message and wanted in message and "cms risk train" in message
    # The good version still loads and serves.
    assert ModelShelf(directory, version).get().version == version


def test_the_served_version_is_chosen_by_version(models) -> None:
    directory, version = models
    shelf = ModelShelf(directory, version)
    assert shelf.default_version == version and shelf.get(version).version == version
