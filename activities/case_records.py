"""Activities that keep the case read model (schema `case_api`) current. Idempotent upserts."""

from __future__ import annotations

from dataclasses import dataclass

from temporalio import activity

from activities.context import db_pool


@dataclass
class CaseStageRecord:
    case_id: str
    stage: str


@activity.defn
async def record_stage(record: CaseStageRecord) -> None:
    async with db_pool().connection() as conn:
        await conn.execute(
            "INSERT INTO case_api.cases (case_id, stage, service_type) VALUES (%s, %s, 'direct_pay') "
            "ON CONFLICT (case_id) DO UPDATE SET stage = EXCLUDED.stage, updated_at = now()",
            (record.case_id, record.stage),
        )
