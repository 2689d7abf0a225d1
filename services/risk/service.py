"""RiskService (cms.risk.v1): scores Collect & Pay cases with the LightGBM model.

A high score puts the case on a caseworker's early-contact list; it never enforces anything.
Each score given is stored (schema `risk`) so the outcome of the contact can label the next
training set.
"""

from __future__ import annotations

import asyncio

import grpc
from psycopg_pool import AsyncConnectionPool

from cms.config import Settings
from cms_proto.risk.v1 import risk_pb2, risk_pb2_grpc
from domain.risk import PaymentFeatures, band_of, starts_early_intervention, to_vector, validate
from services.common.errors import FieldViolations, abort_invalid
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


class RiskService(risk_pb2_grpc.RiskServiceServicer):
    def __init__(self, pool: AsyncConnectionPool, model: RiskModel):
        self._pool = pool
        self._model = model

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


async def register(server: grpc.aio.Server, pool: AsyncConnectionPool, settings: Settings) -> None:
    model = await asyncio.to_thread(RiskModel.load_or_train, settings.data_dir / "models" / "risk-lgbm.txt")
    risk_pb2_grpc.add_RiskServiceServicer_to_server(RiskService(pool, model), server)
