"""RiskService (cms.risk.v1): scores Collect & Pay cases with the LightGBM model.

A high score puts the case on a caseworker's early-contact list; it never enforces anything.
Each score given is stored (schema `risk`) so the outcome of the contact can label the next
training set.

ScoreCase reads the case's ledger from the payments service (GetBalance, GetStatement) and
computes the features with the module training used (domain/risk_features.py); the model is
chosen by version from the models directory (services/risk/case_model.py).
"""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, date, datetime
from pathlib import Path

import grpc
from psycopg_pool import AsyncConnectionPool

from cms.config import Settings
from cms.grpc_client import channel_with_token
from cms_proto.payments.v1 import payments_pb2_grpc
from cms_proto.risk.v1 import risk_pb2, risk_pb2_grpc
from domain.risk import PaymentFeatures, band_of, starts_early_intervention, to_vector, validate
from domain.risk_features import features_as_of, is_eligible, vector
from services.common.errors import FieldViolations, abort, abort_invalid
from services.risk.case_model import ModelShelf, UnknownVersion
from services.risk.ledger_reader import read_ledger
from services.risk.model import RiskModel

MAX_BATCH = 10_000


def features_from_proto(message: risk_pb2.PaymentFeatures, prefix: str = "features") -> PaymentFeatures:
    features = PaymentFeatures(
        case_id=message.case_id,
        payments_due_last_12=message.payments_due_last_12,
        payments_missed_last_12=message.payments_missed_last_12,
        payments_part_last_12=message.payments_part_last_12,
        days_since_last_payment=message.days_since_last_payment,
        arrears_pence=message.arrears_pence,
        weekly_liability_pence=message.weekly_liability_pence,
        method=message.method or "direct_debit",
        frequency=message.frequency or "monthly",
        income_changes_last_12=message.income_changes_last_12,
        changes_reported_last_12=message.changes_reported_last_12,
        case_age_days=message.case_age_days,
        collect_and_pay=message.collect_and_pay,
    )
    problems = validate(features)
    if problems:
        raise FieldViolations((field.replace("features", prefix, 1), text) for field, text in problems)
    return features


def _today() -> date:
    return datetime.now(UTC).date()


class RiskService(risk_pb2_grpc.RiskServiceServicer):
    def __init__(self, pool: AsyncConnectionPool, model: RiskModel, shelf: ModelShelf | None = None,
                 payments: payments_pb2_grpc.PaymentsServiceStub | None = None):
        self._pool = pool
        self._model = model
        self._shelf = shelf
        self._payments = payments

    async def ScoreCase(self, request, context):
        violations = []
        case_id = request.case_id.strip()
        if not case_id:
            violations.append(("case_id", "is required"))
        as_of = _today()
        if request.as_of:
            try:
                as_of = date.fromisoformat(request.as_of)
            except ValueError:
                violations.append(("as_of", f"{request.as_of!r} is not an ISO date (YYYY-MM-DD)"))
        if as_of > _today():
            violations.append(("as_of", f"{as_of} is in the future: a score can only use what has happened"))
        if violations:
            await abort_invalid(context, FieldViolations(violations))
        if self._shelf is None or self._payments is None:
            await abort(context, grpc.StatusCode.FAILED_PRECONDITION, "case scoring is not configured")
        try:
            model = self._shelf.get(request.model_version)
        except UnknownVersion as error:
            await abort(context, grpc.StatusCode.NOT_FOUND, str(error))
        try:
            ledger = await read_ledger(self._payments, case_id, as_of)
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                await abort(context, grpc.StatusCode.NOT_FOUND, f"case {case_id} has no payment schedule")
            await abort(context, grpc.StatusCode.UNAVAILABLE, f"payments could not be read: {error.code().name}")
        if ledger.service_type != "collect_and_pay":
            await abort(context, grpc.StatusCode.FAILED_PRECONDITION,
                        f"case {case_id} is on {ledger.service_type.replace('_', ' ')}: only Collect & Pay "
                        "cases are scored")
        try:
            row = vector(features_as_of(ledger, as_of))
        except ValueError as error:
            await abort(context, grpc.StatusCode.FAILED_PRECONDITION, str(error))
        eligible = is_eligible(ledger, as_of)
        probability, reasons = await asyncio.to_thread(model.score, row)
        ppm = int(round(probability * 1_000_000))
        reply = risk_pb2.CaseScore(
            case_id=case_id, as_of=as_of.isoformat(), probability_ppm=ppm, band=band_of(ppm), eligible=eligible,
            start_early_intervention=eligible and starts_early_intervention(ppm, collect_and_pay=True),
            model_version=model.version,
            reasons=[risk_pb2.Reason(feature=r.feature, text=r.text, contribution_micro=int(round(r.contribution * 1e6)))
                     for r in reasons])
        async with self._pool.connection() as conn:
            await conn.execute("INSERT INTO scores (case_id, model_version, probability_ppm, band) VALUES (%s, %s, %s, %s)",
                               (case_id, model.version, ppm, reply.band))
        return reply

    async def GetModelInfo(self, request, context):
        if self._shelf is None:
            await abort(context, grpc.StatusCode.FAILED_PRECONDITION, "case scoring is not configured")
        try:
            model = self._shelf.get(request.model_version)
        except UnknownVersion as error:
            await abort(context, grpc.StatusCode.NOT_FOUND, str(error))
        backtest = model.card.get("backtest", {})
        metrics = []
        for name, values in backtest.get("metrics", {}).items():
            for metric, value in values.items():
                low, high = backtest.get("intervals", {}).get(name, {}).get(metric, (value, value))
                metrics.append(risk_pb2.Metric(model=name, name=metric, value=value, low=low, high=high))
        return risk_pb2.ModelInfo(version=model.version, trained_on=model.card.get("trained_on", ""), metrics=metrics,
                                  versions=self._shelf.versions(), served=model.version == self._shelf.default_version,
                                  label=model.card.get("label", ""), eligibility=model.card.get("eligibility", ""))

    async def Score(self, request, context):
        try:
            features = features_from_proto(request.features)
        except FieldViolations as error:
            await abort_invalid(context, error)
        return (await self._score([features]))[0]

    async def ScoreBatch(self, request, context):
        if len(request.features) > MAX_BATCH:
            await abort_invalid(context, FieldViolations([("features", f"at most {MAX_BATCH} cases a call")]))
        try:
            batch = [features_from_proto(f, f"features[{i}]") for i, f in enumerate(request.features)]
        except FieldViolations as error:
            await abort_invalid(context, error)
        return risk_pb2.ScoreBatchResponse(scores=await self._score(batch))

    async def _score(self, batch: list[PaymentFeatures]) -> list[risk_pb2.ScoreResponse]:
        if not batch:
            return []
        rows = [to_vector(f) for f in batch]
        # LightGBM releases the GIL; run it off the event loop so health checks stay responsive.
        ppm, reasons = await asyncio.to_thread(lambda: (self._model.probabilities_ppm(rows), self._model.reasons(rows)))
        responses = [
            risk_pb2.ScoreResponse(
                case_id=f.case_id, probability_ppm=p, band=band_of(p),
                start_early_intervention=starts_early_intervention(p, f.collect_and_pay),
                model_version=self._model.version, reasons=r,
            )
            for f, p, r in zip(batch, ppm, reasons)
        ]
        async with self._pool.connection() as conn:
            async with conn.cursor() as cursor:
                await cursor.executemany(
                    "INSERT INTO scores (case_id, model_version, probability_ppm, band) VALUES (%s, %s, %s, %s)",
                    [(r.case_id, r.model_version, r.probability_ppm, r.band) for r in responses],
                )
        return responses


class _Resources:
    """What the service holds open beyond its pool: the channel to payments."""

    def __init__(self, channel: grpc.aio.Channel):
        self._channel = channel

    async def aclose(self) -> None:
        await self._channel.close()


def models_dir(settings: Settings) -> Path:
    return Path(os.environ.get("RISK_MODELS_DIR") or settings.data_dir / "models" / "risk")


async def register(server: grpc.aio.Server, pool: AsyncConnectionPool, settings: Settings) -> _Resources:
    model = await asyncio.to_thread(RiskModel.load_or_train, settings.data_dir / "models" / "risk-lgbm.txt")
    # A bad RISK_MODEL_VERSION or model file ends the start here, with one line (StartupError).
    shelf = await asyncio.to_thread(ModelShelf, models_dir(settings), os.environ.get("RISK_MODEL_VERSION") or None)
    channel = channel_with_token(settings.address_of("payments"), settings.service_token)
    risk_pb2_grpc.add_RiskServiceServicer_to_server(
        RiskService(pool, model, shelf, payments_pb2_grpc.PaymentsServiceStub(channel)), server)
    return _Resources(channel)
