"""A parent reads a safeguarded case through every RPC a parent may call, and finds nothing of the
protected parent: random values planted under random keys in the protected parent's records and
in the staff's free text of the timeline never come back."""

from __future__ import annotations

import json
import uuid

import grpc
import psycopg
import pytest
from google.protobuf.json_format import MessageToJson
from hypothesis import given, settings
from hypothesis import strategies as st

from cms_proto.case.v1 import case_pb2, case_pb2_grpc
from cms_proto.notifications.v1 import notifications_pb2, notifications_pb2_grpc
from services.common.access import RULES
from tests.helpers.auth import caller_channel

pytestmark = pytest.mark.asyncio(loop_scope="session")

PAYER = "party-payer"
# Planted values carry a marker no response would hold by chance.
planted = st.from_regex(r"QQ[A-Za-z0-9]{6,14}", fullmatch=True)
any_key = st.from_regex(r"[a-z][a-z0-9_]{0,19}", fullmatch=True)
COLUMNS = ("full_name", "address", "phone", "email", "employer", "bank_sort_code")


def test_the_walk_covers_every_rpc_a_parent_may_call() -> None:
    parent_rpcs = {path.rsplit("/", 1)[-1] for path, roles in RULES.items() if "parent" in roles}
    # ReportChange answers with the change's number and deadline only: nothing about a party.
    assert parent_rpcs == {"GetCase", "GetTimeline", "GetParty", "ReportChange"}


def _plant(url: str, case_id: str, receiving: str, columns: dict[str, str], details: dict[str, str],
           notes: list[str]) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO case_api.cases (case_id, idempotency_key, stage, service_type, safeguarded, "
                     "protected_party_ids) VALUES (%s, %s, 'Active', 'collect_and_pay', true, %s)",
                     (case_id, case_id, [PAYER]))
        conn.execute("INSERT INTO case_api.parties (case_id, party_id, role, full_name) "
                     "VALUES (%s, %s, 'receiving_parent', 'R Parent')", (case_id, receiving))
        conn.execute("INSERT INTO case_api.parties (case_id, party_id, role, " + ", ".join(COLUMNS) + ") "
                     "VALUES (%s, %s, 'paying_parent', " + ", ".join(["%s"] * len(COLUMNS)) + ")",
                     (case_id, PAYER, *(columns[c] for c in COLUMNS)))
        for seq, note in enumerate(notes, start=1):
            conn.execute("INSERT INTO case_api.timeline (case_id, seq, at, day, kind, text) "
                         "VALUES (%s, %s, now(), current_date, 'note', %s)", (case_id, seq, note))
        conn.execute("INSERT INTO notifications.parties (case_id, party_id, role, details) VALUES "
                     "(%s, %s, 'receiving_parent', '{}'), (%s, %s, 'paying_parent', %s)",
                     (case_id, receiving, case_id, PAYER, json.dumps(details)))
        conn.execute("INSERT INTO notifications.safeguarding_profiles (case_id, active, protected_party_ids, reason, "
                     "set_by) VALUES (%s, true, %s, %s, 'application')", (case_id, [PAYER], notes[0]))


@settings(max_examples=15)
@given(columns=st.fixed_dictionaries({c: planted for c in COLUMNS}),
       details=st.dictionaries(any_key, planted, min_size=1, max_size=8),
       notes=st.lists(planted, min_size=1, max_size=4))
async def test_a_parent_sees_none_of_the_protected_parents_values(services, columns, details, notes) -> None:
    case_id, receiving = f"case-{uuid.uuid4().hex[:12]}", f"party-{uuid.uuid4().hex[:8]}"
    _plant(services.url, case_id, receiving, columns, details, notes)
    secrets = set(columns.values()) | set(details.values()) | set(notes)
    seen = []
    async with caller_channel(services.address["case_api"], role="parent", subject=receiving) as channel:
        cases = case_pb2_grpc.CaseServiceStub(channel)
        seen.append(await cases.GetCase(case_pb2.GetCaseRequest(case_id=case_id, viewer_party_id=receiving)))
        seen.append(await cases.GetTimeline(case_pb2.GetTimelineRequest(case_id=case_id)))
    async with caller_channel(services.address["notifications"], role="parent", subject=receiving) as channel:
        parties = notifications_pb2_grpc.NotificationsServiceStub(channel)
        seen.append(await parties.GetParty(notifications_pb2.GetPartyRequest(
            case_id=case_id, party_id=PAYER, viewer_party_id=receiving)))
        with pytest.raises(grpc.aio.AioRpcError) as refused:  # the profile, and its reason, are staff's
            await parties.GetSafeguardingProfile(notifications_pb2.GetSafeguardingProfileRequest(case_id=case_id))
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    text = "\n".join(MessageToJson(message) + str(message) for message in seen)
    assert [value for value in secrets if value in text] == []
    assert not seen[0].safeguarded, "the other parent learns someone is protected from them"
    assert seen[1].entries and all(entry.text == "" for entry in seen[1].entries)
