"""Posts a simulated case history to the payments service through its gRPC API, as the
collection workflow and the bank feed would: schedule, a charge each period, payments."""

from __future__ import annotations

from typing import Any

from cms_proto.payments.v1 import payments_pb2 as pb
from domain.risk_simulation import SimulatedCase


async def post_history(payments: Any, case: SimulatedCase) -> None:
    for number, op in enumerate(case.operations):
        if op.kind == "schedule":
            await payments.CreateSchedule(pb.CreateScheduleRequest(
                idempotency_key=f"{case.case_id}/schedule-{op.on}", case_id=case.case_id,
                service_type="collect_and_pay", frequency=pb.Frequency.Value(f"FREQUENCY_{case.frequency.name}"),
                method=pb.Method.Value(case.method), effective_date=op.on.isoformat(),
                weekly_liability_pence=op.weekly_pence, paying_parent_fee_pence=op.fee_pence,
                decision_ref=f"calc-{case.case_id}-{number}"), timeout=10)
        elif op.kind == "charge":
            await payments.ChargePeriod(pb.ChargePeriodRequest(case_id=case.case_id, period_index=op.period_index),
                                        timeout=10)
        else:
            await payments.RecordIncomingPayment(pb.RecordIncomingPaymentRequest(
                idempotency_key=f"{case.case_id}/payment-{number}", case_id=case.case_id,
                amount_pence=op.amount_pence, received_on=op.on.isoformat(), method=pb.Method.Value(case.method)),
                timeout=10)
