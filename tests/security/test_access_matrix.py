"""Every RPC of every service, called by every role and by nobody: the access table decides.

The RPCs are read from the services' own descriptors, so an RPC added without a rule in
services/common/access.py fails here. A refused call must change nothing: the tables a call could
write are counted before and after the refusals.
"""

from __future__ import annotations

import importlib
import time
from typing import Any

import grpc
import jwt
import psycopg
import pytest
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor

from cms.auth import ALGORITHM, ROLES
from services import SERVICES
from services.common.access import RULES
from tests.helpers import auth
from tests.security.conftest import CASE, PARENT, STRANGER

pytestmark = pytest.mark.asyncio(loop_scope="session")

PROTO_MODULES = {"case_api": "cms_proto.case.v1.case_pb2", "payments": "cms_proto.payments.v1.payments_pb2",
                 "notifications": "cms_proto.notifications.v1.notifications_pb2", "risk": "cms_proto.risk.v1.risk_pb2"}

# Every table a call of any service could write: a refused call leaves each count as it was.
WATCHED_TABLES = ("case_api.cases", "case_api.parties", "case_api.audit", "case_api.change_records",
                  "payments.transactions", "payments.postings", "payments.schedules", "payments.bank_movements",
                  "payments.disbursement_outbox", "notifications.parties", "notifications.safeguarding_profiles",
                  "notifications.outbox", "notifications.audit_log", "risk.scores")


def all_methods() -> list[tuple[str, str, MethodDescriptor]]:
    """(service name, RPC path, descriptor) for every RPC the services declare."""
    found = []
    for service in SERVICES:
        descriptor = importlib.import_module(PROTO_MODULES[service.name]).DESCRIPTOR
        for method in descriptor.services_by_name[service.full_name.rsplit(".", 1)[-1]].methods:
            found.append((service.name, f"/{service.full_name}/{method.name}", method))
    return found


def test_every_rpc_has_an_access_rule_and_every_rule_an_rpc() -> None:
    declared = {path for _, path, _ in all_methods()}
    assert declared - set(RULES) == set(), "RPCs with no access rule: everyone is refused them"
    assert set(RULES) - declared == set(), "rules for RPCs no service declares"
    for path, roles in RULES.items():
        assert set(roles) <= ROLES, f"{path}: unknown roles {set(roles) - ROLES}"


def counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return {table: _count(conn, table) for table in WATCHED_TABLES}


def _count(conn: psycopg.Connection, table: str) -> int:
    row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert row is not None
    return row[0]


async def call(address: str, method: MethodDescriptor, path: str, request, token: str | None):
    response_type = message_factory.GetMessageClass(method.output_type)
    metadata = [("authorization", f"Bearer {token}")] if token is not None else None
    async with grpc.aio.insecure_channel(address) as channel:
        rpc = channel.unary_unary(path, request_serializer=lambda m: m.SerializeToString(),
                                  response_deserializer=response_type.FromString)
        try:
            await rpc(request, metadata=metadata, timeout=10)
        except grpc.aio.AioRpcError as error:
            return error.code(), error.details()
    return grpc.StatusCode.OK, ""


def request_for(method: MethodDescriptor, path: str, role: str) -> Any:
    """The request a caller in `role` would send: about the seeded case, naming nobody, asking
    only what the role may ask."""
    request: Any = message_factory.GetMessageClass(method.input_type)()
    if "case_id" in method.input_type.fields_by_name:
        request.case_id = CASE
    access = RULES[path].get(role)
    for field, wanted in access.requires if access else ():
        setattr(request, field, wanted)
    return request


def forged_tokens() -> dict[str, tuple[str | None, grpc.StatusCode, str]]:
    valid = auth.token("cw-1", "caseworker")
    header, payload, signature = valid.split(".")
    tampered = f"{header}.{payload}.{signature[:-4]}{'AAAA' if not signature.endswith('AAAA') else 'BBBB'}"
    other_key = jwt.encode({"sub": "cw-1", "role": "caseworker", "exp": time.time() + 60,
                            "aud": ["cms:case_api"]}, _other_key(), algorithm=ALGORITHM)
    unknown_role = jwt.encode({"sub": "x", "role": "superuser", "exp": time.time() + 60,
                               "aud": [f"cms:{name}" for name in PROTO_MODULES]}, auth.SIGNING_KEY,
                              algorithm=ALGORITHM, headers={"kid": jwt.get_unverified_header(valid)["kid"]})
    return {
        "missing": (None, grpc.StatusCode.UNAUTHENTICATED, "missing token"),
        "expired": (auth.token("cw-1", "caseworker", now=time.time() - 7200), grpc.StatusCode.UNAUTHENTICATED,
                    "expired token"),
        "tampered": (tampered, grpc.StatusCode.UNAUTHENTICATED, "badly signed token"),
        "other key": (other_key, grpc.StatusCode.UNAUTHENTICATED, "badly signed token"),
        "unknown role": (unknown_role, grpc.StatusCode.UNAUTHENTICATED, "unknown role"),
        "wrong audience": (auth.token("cw-1", "caseworker", audiences=("elsewhere",)),
                           grpc.StatusCode.PERMISSION_DENIED, "not meant for"),
    }


def _other_key() -> str:
    from cms.auth import new_private_key_pem

    return new_private_key_pem()


@pytest.mark.parametrize("service_name,path,method", all_methods(), ids=lambda v: v if isinstance(v, str) else "")
async def test_rpc_by_every_role_and_by_nobody(services, service_name: str, path: str, method) -> None:
    address = services.address[service_name]
    rule = RULES[path]
    before = counts(services.url)
    for label, (token, code, says) in forged_tokens().items():
        got, details = await call(address, method, path, request_for(method, path, "caseworker"), token)
        assert (got, says in details) == (code, True), f"{label}: {got} {details}"
    for role in sorted(ROLES - set(rule)):
        got, details = await call(address, method, path, request_for(method, path, role),
                                  auth.token(auth.DEFAULT_SUBJECTS[role], role))
        assert got == grpc.StatusCode.PERMISSION_DENIED, f"{role} was let through: {got} {details}"
        assert f"role {role} may not call" in details
    if "parent" in rule:  # a parent on a case that is not theirs
        got, details = await call(address, method, path, request_for(method, path, "parent"),
                                  auth.token(STRANGER, "parent"))
        assert got == grpc.StatusCode.PERMISSION_DENIED, f"stranger: {got} {details}"
    assert counts(services.url) == before, "a refused call changed something"
    for role in sorted(rule):
        subject = PARENT if role == "parent" else auth.DEFAULT_SUBJECTS[role]
        request = request_for(method, path, role)
        if role == "parent" and "viewer_party_id" in method.input_type.fields_by_name:
            request.viewer_party_id = PARENT
        got, details = await call(address, method, path, request, auth.token(subject, role))
        assert got not in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED) \
            or "may not" not in details and "is not the caller" not in details and "not a party" not in details, \
            f"{role} was refused: {got} {details}"


def _method(path: str) -> MethodDescriptor:
    return next(method for _, p, method in all_methods() if p == path)


async def _as(services, service_name: str, path: str, token: str, **fields):
    method = _method(path)
    request = message_factory.GetMessageClass(method.input_type)(**fields)
    return await call(services.address[service_name], method, path, request, token)


async def test_a_parent_reads_only_as_themselves_and_only_their_own_case(services) -> None:
    get_case = "/cms.case.v1.CaseService/GetCase"
    mine = auth.token(PARENT, "parent")
    assert await _as(services, "case_api", get_case, mine, case_id=CASE, viewer_party_id=PARENT) \
        == (grpc.StatusCode.OK, "")
    code, details = await _as(services, "case_api", get_case, mine, case_id=CASE, viewer_party_id=STRANGER)
    assert code == grpc.StatusCode.PERMISSION_DENIED and "is not the caller" in details
    code, details = await _as(services, "case_api", get_case, auth.token(STRANGER, "parent"),
                              case_id=CASE, viewer_party_id=STRANGER)
    assert code == grpc.StatusCode.PERMISSION_DENIED and "not a party of case" in details
    code, details = await _as(services, "case_api", get_case, mine, case_id=CASE, staff_id="cw-1", reason="x")
    assert code == grpc.StatusCode.PERMISSION_DENIED


async def test_staff_act_only_under_their_own_name(services) -> None:
    before = counts(services.url)
    code, details = await _as(services, "payments", "/cms.payments.v1.PaymentsService/AssignSuspensePayment",
                              auth.token("cw-1", "caseworker"), idempotency_key="k", bank_reference="b",
                              case_id=CASE, assigned_by="cw-2")
    assert code == grpc.StatusCode.PERMISSION_DENIED and "assigned_by 'cw-2' is not the caller (cw-1)" in details
    code, _ = await _as(services, "case_api", "/cms.case.v1.CaseService/GetCase",
                        auth.token("cw-1", "caseworker"), case_id=CASE, staff_id="cw-2", reason="x")
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert counts(services.url) == before


async def test_only_a_senior_caseworker_removes_a_safeguarding_profile(services) -> None:
    set_profile = "/cms.notifications.v1.NotificationsService/SetSafeguardingProfile"
    get_profile = "/cms.notifications.v1.NotificationsService/GetSafeguardingProfile"
    assert (await _as(services, "notifications", set_profile, auth.token("cw-1", "caseworker"),
                      case_id=CASE, active=True, reason="declared"))[0] == grpc.StatusCode.OK
    for role in ("caseworker", "service"):
        code, details = await _as(services, "notifications", set_profile, auth.token("x-1", role),
                                  case_id=CASE, active=False, reason="no longer needed")
        assert code == grpc.StatusCode.PERMISSION_DENIED and "may not set active" in details
    method = _method(get_profile)
    response_type = message_factory.GetMessageClass(method.output_type)
    async with auth.caller_channel(services.address["notifications"], role="caseworker") as channel:
        read = channel.unary_unary(get_profile, request_serializer=lambda m: m.SerializeToString(),
                                   response_deserializer=response_type.FromString)
        request = message_factory.GetMessageClass(method.input_type)(case_id=CASE)
        assert (await read(request, timeout=10)).active
        assert (await _as(services, "notifications", set_profile, auth.token("scw-1", "senior_caseworker"),
                          case_id=CASE, active=False, reason="risk assessed"))[0] == grpc.StatusCode.OK
        profile = await read(request, timeout=10)
    assert not profile.active and profile.set_by == "scw-1"


async def test_a_forged_payment_leaves_nothing_in_the_ledger_or_the_disbursement_outbox(services) -> None:
    before = counts(services.url)
    for role in sorted(ROLES - {"bank_feed"}):
        code, _ = await _as(services, "payments", "/cms.payments.v1.PaymentsService/RecordIncomingPayment",
                            auth.token("someone", role), idempotency_key=f"forged-{role}", case_id=CASE,
                            amount_pence=50_000, received_on="2026-03-02")
        assert code == grpc.StatusCode.PERMISSION_DENIED
    after = counts(services.url)
    assert [after[t] for t in ("payments.transactions", "payments.postings", "payments.disbursement_outbox")] \
        == [before[t] for t in ("payments.transactions", "payments.postings", "payments.disbursement_outbox")]
