"""Shared test helpers for notifications and safeguarding tests: a running service, parties
with full contact details, PDF text extraction."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import grpc
from pypdf import PdfReader

from cms.config import load_settings
from cms.infra.processes import free_port
from cms_proto.notifications.v1 import notifications_pb2 as pb
from cms_proto.notifications.v1 import notifications_pb2_grpc
from services.common.server import serve_in_background
from services.notifications.service import make_register

RP_DETAILS = {
    "full_name": "Alex Receiver", "address": "14 Hidden Lane\nSafeton", "postcode": "SF1 4HL",
    "email": "alex.receiver@example.org", "phone": "07700900111", "employer": "Refuge Bakery Ltd",
    "bank_sort_code": "11-22-33", "bank_account_number": "12345678", "town": "Safeton",
}
PP_DETAILS = {
    "full_name": "Sam Payer", "address": "9 Open Road\nPayville", "postcode": "PV9 9OR",
    "email": "sam.payer@example.org", "phone": "07700900999", "employer": "Payville Motors",
    "bank_sort_code": "44-55-66", "bank_account_number": "87654321", "town": "Payville",
}

# Every template's variables, as a workflow would send them (money in pence, ISO dates).
VARIABLES: dict[str, dict[str, Any]] = {
    "application_received": {"received_on": "2026-03-02"},
    "notice_to_paying_parent": {"effective_date": "2026-04-01"},
    "calculation_decision": {"effective_date": "2026-04-01", "weekly_amount": 8412,
                             "explanation": ["Gross weekly income: £594.52", "Basic rate, 2 children: 16%",
                                             "Weekly amount: £84.12"]},
    "payment_schedule": {"effective_date": "2026-04-01", "next_payment_pence": 36452, "next_due_on": "2026-04-01",
                         "instalment_pence": 36453, "frequency_words": "every month",
                         "how_paid": "to the Child Maintenance Service by direct debit",
                         "payment_note": "If you cannot pay on a date, tell us before it."},
    "payment_received": {"amount": 36452, "received_on": "2026-04-28"},
    "payment_missed": {"amount": 36452, "due_on": "2026-05-28", "arrears": 36452},
    "change_outcome": {"change_kind": "income", "reported_on": "2026-06-01", "outcome": "no change",
                       "outcome_reason": "The new income is less than 25% different."},
    "annual_review": {"effective_date": "2027-04-01", "weekly_amount": 9010,
                      "explanation": ["Gross weekly income: £640.00", "Weekly amount: £90.10"]},
    "enforcement_step": {"arrears": 120000, "step": "deduction from earnings order",
                         "step_detail": "We will ask the employer to take payments from the wages."},
    "case_closed": {"closed_on": "2030-01-01", "reason": "the last child stopped qualifying"},
    "service_type_change": {"effective_date": "2026-07-01", "switch_reason": "Direct Pay payments were reported missed",
                            "paying_parent_pays_pence": 10094, "receiving_parent_receives_pence": 8075,
                            "explanation": ["Weekly amount: £84.12", "Collect & Pay fees: +20% / -4%"]},
}


def variables_for(template: str, case_id: str) -> dict:
    return {"case_reference": case_id, **VARIABLES[template]}


async def start_service(database_url: str, data_dir: Path, **register_options):
    settings = replace(load_settings(), database_url=database_url, data_dir=data_dir,
                       ports={**load_settings().ports, "notifications": free_port()})
    running = await serve_in_background("notifications", make_register(**register_options), settings)
    return running.address, running.stop_event, running.task


def stub_for(channel: grpc.aio.Channel) -> notifications_pb2_grpc.NotificationsServiceStub:
    return notifications_pb2_grpc.NotificationsServiceStub(channel)


async def set_up_case(stub, case_id: str, safeguarded: bool, rp_preferences: pb.ContactPreferences | None = None,
                      pp_preferences: pb.ContactPreferences | None = None) -> None:
    await stub.SetParty(pb.SetPartyRequest(case_id=case_id, party_id="rp", role="receiving_parent",
                                           details_json=json.dumps(RP_DETAILS), preferences=rp_preferences))
    await stub.SetParty(pb.SetPartyRequest(case_id=case_id, party_id="pp", role="paying_parent",
                                           details_json=json.dumps(PP_DETAILS), preferences=pp_preferences))
    if safeguarded:
        await stub.SetSafeguardingProfile(pb.SetSafeguardingProfileRequest(
            case_id=case_id, active=True, protected_party_ids=["rp"], reason="domestic abuse declared",
            safe_channel=pb.CHANNEL_LETTER, no_phone=True, set_by="application"))


def protected_of(details: dict) -> set[str]:
    """The protected values of a party, including each line of a multi-line address."""
    from domain.safeguarding import protected_values

    values = protected_values(details)
    return values | {line for value in values for line in value.split("\n") if line}


def pdf_text(data: bytes) -> str:
    """The text a reader of the PDF sees, every page (pypdf: it maps an embedded font's glyphs
    back to Unicode through the font's ToUnicode table, as a screen reader or copy-paste does)."""
    reader = PdfReader(io.BytesIO(data))
    return "\n".join(page.extract_text() for page in reader.pages)
