"""The audit names the reader the token names, and `cmsctl audit` lists it for a caseworker."""

from __future__ import annotations

import asyncio
import json

import pytest
from typer.testing import CliRunner

from cms.cli.cmsctl import app
from cms_proto.case.v1 import case_pb2, case_pb2_grpc
from tests.helpers.auth import caller_channel
from tests.security.conftest import CASE

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_staff_reads_are_audited_under_the_tokens_subject_and_listed_by_cmsctl(services, monkeypatch) -> None:
    async with caller_channel(services.address["case_api"], role="caseworker", subject="cw-audit-7") as channel:
        cases = case_pb2_grpc.CaseServiceStub(channel)
        await cases.GetTimeline(case_pb2.GetTimelineRequest(case_id=CASE))
        listed = await cases.ListAudit(case_pb2.ListAuditRequest(case_id=CASE))
    assert [(e.staff_id, e.action) for e in listed.entries][:1] == [("cw-audit-7", "GetTimeline")]

    monkeypatch.setenv("CASE_API_PORT", services.address["case_api"].rsplit(":", 1)[1])
    shown = await asyncio.to_thread(CliRunner().invoke, app, ["--as", "cw-audit-8", "audit", CASE, "--json"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["entries"][0]["staff_id"] == "cw-audit-7"
    refused = await asyncio.to_thread(CliRunner().invoke, app, ["audit", CASE])
    assert refused.exit_code == 2 and "say who you are" in refused.output
