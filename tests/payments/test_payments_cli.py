"""`cmsctl payments …` against the payments service running in-process."""

from __future__ import annotations

import asyncio
import json
from datetime import date

import pytest
from typer.testing import CliRunner

from cms.cli.cmsctl import app
from cms_proto.payments.v1 import payments_pb2 as pb
from tests.payments.payments_helpers import deliver, new_schedule

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture
def cmsctl(payments_stub, monkeypatch):
    """Runs cmsctl in a thread (it runs its own event loop) against the test's payments service."""
    monkeypatch.setenv("GRPC_HOST", payments_stub.address.rsplit(":", 1)[0])
    monkeypatch.setenv("PAYMENTS_PORT", payments_stub.address.rsplit(":", 1)[1])
    monkeypatch.setenv("CMS_STAFF_ID", "cw-1")  # who runs the commands: their token names them

    async def run(*args: str):
        return await asyncio.to_thread(CliRunner().invoke, app, ["payments", *args])
    return run


async def test_list_and_assign_a_suspense_payment_then_read_the_balance(cmsctl, payments_stub, fake_bank, case_id) -> None:
    await new_schedule(payments_stub, case_id)
    await payments_stub.ChargePeriod(pb.ChargePeriodRequest(case_id=case_id, period_index=0))
    note = fake_bank.emit_payment("unknown-ref", 7000, date(2026, 1, 6))
    await deliver(payments_stub, note)
    listed = await cmsctl("suspense", "--json", "--limit", "1000")
    assert listed.exit_code == 0, listed.output
    assert {"bank_reference": note.bank_reference, "claimed_case_id": "unknown-ref", "amount_pence": "7000",
            "received_on": "2026-01-06"} in json.loads(listed.output)["items"]
    assigned = await cmsctl("assign", note.bank_reference, case_id, "--actor", "cw-17", "--on", "2026-01-07")
    assert assigned.exit_code == 0, assigned.output
    assert f"£70.00 assigned to case {case_id}; £10.00 held as credit" in assigned.output
    again = await cmsctl("assign", note.bank_reference, case_id, "--actor", "cw-17", "--on", "2026-01-07")
    assert again.exit_code == 0 and "already assigned by this request" in again.output
    elsewhere = await cmsctl("assign", note.bank_reference, f"{case_id}-x", "--actor", "cw-17", "--on", "2026-01-07")
    assert elsewhere.exit_code == 3 and "already assigned" in elsewhere.output
    balance = await cmsctl("balance", case_id, "--as-of", "2026-01-07", "--json")
    assert balance.exit_code == 0, balance.output
    found = json.loads(balance.output)
    assert (found["arrears_pence"], found["credit_pence"], found["paid_to_date_pence"]) == ("0", "1000", "7000")
    text = await cmsctl("balance", case_id, "--as-of", "2026-01-07")
    assert "credit                        £10.00" in text.output
    statement = await cmsctl("statement", case_id, "--to", "2026-01-07")
    assert statement.exit_code == 0 and "In credit: £10.00" in statement.output


async def test_bad_input_and_unknown_references_exit_with_clear_errors(cmsctl) -> None:
    bad = await cmsctl("balance", "some-case", "--as-of", "31/12/2026")
    assert bad.exit_code == 2 and "error: as_of:" in bad.output
    unknown = await cmsctl("assign", "IN-nothing", "some-case", "--actor", "cw-17")
    assert unknown.exit_code == 3 and "no payment with bank reference 'IN-nothing'" in unknown.output
    missing = await cmsctl("balance", "no-such-case")
    assert missing.exit_code == 3 and "has no schedule" in missing.output
