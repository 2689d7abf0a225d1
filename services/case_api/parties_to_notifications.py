"""Registers a case's parties (and its safeguarding profile) with the notifications service.

Why here and not in the case workflow: the parties' names and addresses must never enter
Temporal (workflow input, history, activity payloads). CaseService already holds them in its
read model, so CreateApplication hands them to notifications directly, before it starts the
workflow: the workflow's first letter can only come after its addressee is known. Both calls
are upserts, so a repeated CreateApplication (same idempotency key) registers the same facts
again from the read model, harmlessly.
"""

from __future__ import annotations

import json

import grpc
from psycopg_pool import AsyncConnectionPool

from cms_proto.notifications.v1 import notifications_pb2 as pb
from cms_proto.notifications.v1 import notifications_pb2_grpc

# Party details notifications renders letters with (the read model's columns of case_api.parties).
DETAIL_FIELDS = ("full_name", "address", "phone", "email", "employer", "bank_sort_code")


class NotificationsUnavailable(Exception):
    """The notifications service did not answer; the caller retries with the same key."""


async def register_parties(pool: AsyncConnectionPool, address: str, case_id: str) -> None:
    async with pool.connection() as conn:
        safeguarded, protected = await (await conn.execute(
            "SELECT safeguarded, protected_party_ids FROM case_api.cases WHERE case_id = %s", (case_id,))).fetchone()
        parties = await (await conn.execute(
            "SELECT party_id, role, " + ", ".join(DETAIL_FIELDS) + " FROM case_api.parties WHERE case_id = %s "
            "ORDER BY role", (case_id,))).fetchall()
    try:
        async with grpc.aio.insecure_channel(address) as channel:
            stub = notifications_pb2_grpc.NotificationsServiceStub(channel)
            for party_id, role, *values in parties:
                details = {name: value for name, value in zip(DETAIL_FIELDS, values) if value}
                await stub.SetParty(pb.SetPartyRequest(case_id=case_id, party_id=party_id, role=role,
                                                       details_json=json.dumps(details)), timeout=20)
            if safeguarded:
                # Declared domestic abuse: letters only and no phone calls, until a caseworker
                # agrees a safe channel with the protected party.
                await stub.SetSafeguardingProfile(pb.SetSafeguardingProfileRequest(
                    case_id=case_id, active=True, protected_party_ids=list(protected or []),
                    reason="domestic abuse declared at application", safe_channel=pb.CHANNEL_LETTER,
                    no_phone=True, set_by="application"), timeout=20)
    except grpc.aio.AioRpcError as error:
        raise NotificationsUnavailable(f"notifications: {error.code().name}: {error.details()}") from None


async def flag_profile(address: str, case_id: str, reason: str, actor: str) -> None:
    """A caseworker's later safeguarding flag: both parties protected, letters only, no phone,
    until a safe channel is agreed with the protected party."""
    try:
        async with grpc.aio.insecure_channel(address) as channel:
            await notifications_pb2_grpc.NotificationsServiceStub(channel).SetSafeguardingProfile(
                pb.SetSafeguardingProfileRequest(case_id=case_id, active=True, protected_party_ids=[],
                                                 reason=reason, safe_channel=pb.CHANNEL_LETTER, no_phone=True,
                                                 set_by=actor), timeout=20)
    except grpc.aio.AioRpcError as error:
        raise NotificationsUnavailable(f"notifications: {error.code().name}: {error.details()}") from None
