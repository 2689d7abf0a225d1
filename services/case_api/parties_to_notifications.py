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

from cms.grpc_client import channel_with_token, process_token
from cms_proto.notifications.v1 import notifications_pb2 as pb
from cms_proto.notifications.v1 import notifications_pb2_grpc
from services.case_api import repository as case_api
from services.common.errors import field_violations_of


class NotificationsUnavailable(Exception):
    """The notifications service did not answer; the caller retries with the same key."""


class PartyDetailsRefused(Exception):
    """Notifications cannot write to a party as given (an address that does not fit the envelope
    window): the caller corrects the details; retrying them unchanged would never succeed."""

    def __init__(self, party_role: str, violations: list[tuple[str, str]]):
        super().__init__(f"{party_role}: {violations}")
        self.violations = [(f"{party_role}.{field.removeprefix('details_json.')}", problem)
                           for field, problem in violations]


async def register_parties(pool: AsyncConnectionPool, address: str, case_id: str) -> None:
    async with case_api.read_snapshot(pool) as conn:
        safeguarded, protected = await case_api.load_safeguarding(conn, case_id)
        parties = await case_api.load_parties(conn, case_id)
        children = await case_api.load_children(conn, case_id)
    try:
        async with channel_with_token(address, process_token()) as channel:
            stub = notifications_pb2_grpc.NotificationsServiceStub(channel)
            for party_id, role, all_details in parties:
                # The party details notifications renders letters with: those given at application.
                details = {name: value for name, value in all_details.items() if value}
                try:
                    await stub.SetParty(pb.SetPartyRequest(case_id=case_id, party_id=party_id, role=role,
                                                           details_json=json.dumps(details)), timeout=20)
                except grpc.aio.AioRpcError as error:
                    if error.code() == grpc.StatusCode.INVALID_ARGUMENT:
                        raise PartyDetailsRefused(role, field_violations_of(error)) from None
                    raise
            # Letters name the children by date of birth rather than by the case's ids.
            await stub.SetChildren(pb.SetChildrenRequest(case_id=case_id, children=[
                pb.CaseChild(child_id=child_id, date_of_birth=str(born)) for child_id, born, *_ in children]),
                timeout=20)
            if safeguarded:
                # Declared domestic abuse: letters only and no phone calls, until a caseworker
                # agrees a safe channel with the protected party.
                await stub.SetSafeguardingProfile(pb.SetSafeguardingProfileRequest(
                    case_id=case_id, active=True, protected_party_ids=protected,
                    reason="domestic abuse declared at application", safe_channel=pb.CHANNEL_LETTER,
                    no_phone=True, set_by="application"), timeout=20)
    except grpc.aio.AioRpcError as error:
        raise NotificationsUnavailable(f"notifications: {error.code().name}: {error.details()}") from None


async def flag_profile(address: str, case_id: str, reason: str, actor: str) -> None:
    """A caseworker's later safeguarding flag: both parties protected, letters only, no phone,
    until a safe channel is agreed with the protected party."""
    try:
        async with channel_with_token(address, process_token()) as channel:
            await notifications_pb2_grpc.NotificationsServiceStub(channel).SetSafeguardingProfile(
                pb.SetSafeguardingProfileRequest(case_id=case_id, active=True, protected_party_ids=[],
                                                 reason=reason, safe_channel=pb.CHANNEL_LETTER, no_phone=True,
                                                 set_by=actor), timeout=20)
    except grpc.aio.AioRpcError as error:
        raise NotificationsUnavailable(f"notifications: {error.code().name}: {error.details()}") from None
