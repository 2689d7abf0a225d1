"""Helpers shared by the payments tests (a unique module name: test folders have no packages)."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
from psycopg_pool import AsyncConnectionPool

from cms.db.migrate import apply_migrations
from services import SERVICES_BY_NAME


@asynccontextmanager
async def payments_pool(database_url: str, max_size: int = 4) -> AsyncIterator[AsyncConnectionPool]:
    """A pool on `database_url` with the payments schema first on the search path, as the service has."""
    pool = AsyncConnectionPool(database_url, min_size=1, max_size=max_size, open=False,
                               kwargs={"options": "-c search_path=payments,public"})
    await pool.open(wait=True)
    try:
        yield pool
    finally:
        await pool.close()


def fresh_database(database_url: str, name: str) -> str:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = database_url.rsplit("/", 1)[0] + f"/{name}"
    info = SERVICES_BY_NAME["payments"]
    apply_migrations(url, info.schema, info.migrations)
    return url


async def deliver(stub, notification):
    """Feeds one bank notification to the service, as the bank-feed reader does."""
    from cms_proto.payments.v1 import payments_pb2 as pb

    if notification.kind == "return":
        return await stub.RecordBankReturn(pb.RecordBankReturnRequest(
            idempotency_key=notification.bank_reference, original_bank_reference=notification.original_reference,
            returned_on=notification.on.isoformat()))
    return await stub.RecordIncomingPayment(pb.RecordIncomingPaymentRequest(
        idempotency_key=notification.bank_reference, case_id=notification.case_reference,
        amount_pence=notification.amount_pence, received_on=notification.on.isoformat(),
        method=pb.Method.Value(notification.method)))


async def new_schedule(stub, case_id, *, weekly=5000, fee=1000, effective="2026-01-05", frequency=None,
                       service_type="collect_and_pay", key=None):
    from cms_proto.payments.v1 import payments_pb2 as pb

    return await stub.CreateSchedule(pb.CreateScheduleRequest(
        idempotency_key=key or f"{case_id}/schedule-{effective}", case_id=case_id, service_type=service_type,
        frequency=frequency or pb.FREQUENCY_WEEKLY, method=pb.METHOD_DIRECT_DEBIT, effective_date=effective,
        weekly_liability_pence=weekly, paying_parent_fee_pence=fee, decision_ref=f"calc-{case_id}"))
