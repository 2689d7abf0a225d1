"""A stand-in for the services behind the console: it answers from what a test gives it and
records what the console sent, so the pages' HTTP behaviour is tested without a stack. It applies
an idempotency key once, as the services do."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from cms_proto.case.v1 import case_pb2
from cms_proto.notifications.v1 import notifications_pb2
from cms_proto.payments.v1 import payments_pb2
from cms_proto.risk.v1 import risk_pb2
from services.common.errors import invalid_argument_status


def stamp(moment: datetime) -> Timestamp:
    value = Timestamp()
    value.FromDatetime(moment)
    return value


class FakeRpcError(grpc.aio.AioRpcError):
    """A refusal as grpc.aio raises it, with field violations in the trailing metadata."""

    def __init__(self, code: grpc.StatusCode, details: str, violations: list[tuple[str, str]] | None = None):
        trailing: tuple[tuple[str, Any], ...] = ()
        if violations:
            status = invalid_argument_status(violations)
            trailing = tuple(status.trailing_metadata)
        super().__init__(code, grpc.aio.Metadata(), grpc.aio.Metadata(*trailing), details)


NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def safeguarded_case(case_id: str = "C1", withheld: bool = True) -> case_pb2.Case:
    protected = "[withheld]" if withheld else None
    return case_pb2.Case(
        case_id=case_id, stage="Active", service_type=case_pb2.SERVICE_TYPE_COLLECT_AND_PAY, safeguarded=True,
        receiving_parent=case_pb2.Party(party_id="rp-1", full_name="Alex Receiver",
                                        address=protected or "1 Safe Street, Leeds", phone=protected or "07700900001"),
        paying_parent=case_pb2.Party(party_id="pp-1", full_name="Sam Payer", address=protected or "9 Other Road, York"),
        children=[case_pb2.Child(child_id="child-1", date_of_birth="2015-06-01", shared_care_nights=52)],
        liability=case_pb2.Liability(rate="basic", weekly_liability_pence=4321, effective_date="2026-01-05"),
        initial_effective_date="2026-01-05", application_date="2025-12-01", needs_caseworker=True,
        caseworker_reason="Manual review: check income", sla_due_at=stamp(NOW + timedelta(days=3)))


@dataclass
class FakeBackend:
    cases: list[case_pb2.CaseSummary] = field(default_factory=list)
    changes: list[case_pb2.ChangeItem] = field(default_factory=list)
    case: case_pb2.Case = field(default_factory=safeguarded_case)
    refuse: FakeRpcError | None = None          # the next action is refused with this
    sent: list[tuple[str, Any]] = field(default_factory=list)
    case_reads: list[tuple[str, str, bool]] = field(default_factory=list)   # (staff_id, reason, withheld)
    outcomes_by_key: dict[str, Any] = field(default_factory=dict)
    suspense_items: list[payments_pb2.SuspenseItem] = field(default_factory=list)
    letter_reads: list[tuple[str, str]] = field(default_factory=list)

    def _once(self, key: str, what: tuple[str, Any], reply: Any) -> Any:
        if self.refuse is not None:
            refusal, self.refuse = self.refuse, None
            raise refusal
        if key not in self.outcomes_by_key:
            self.sent.append(what)
            self.outcomes_by_key[key] = reply
        return self.outcomes_by_key[key]

    async def cases_needing_caseworker(self, token: str) -> list[case_pb2.CaseSummary]:
        return self.cases

    async def list_changes(self, token: str, case_id: str = "", waiting_for_review_only: bool = False,
                           due_before: datetime | None = None, include_cleared: bool = False) -> list[case_pb2.ChangeItem]:
        found = [c for c in self.changes if not case_id or c.case_id == case_id]
        if waiting_for_review_only:
            found = [c for c in found if c.needs_caseworker and c.status != "cleared"]
        return found

    async def get_case(self, token: str, case_id: str, staff_id: str, reason: str,
                       withhold_protected: bool) -> case_pb2.Case:
        self.case_reads.append((staff_id, reason, withhold_protected))
        if case_id != self.case.case_id:
            raise FakeRpcError(grpc.StatusCode.NOT_FOUND, f"no case {case_id}")
        return self.case if withhold_protected else safeguarded_case(case_id, withheld=False)

    async def timeline(self, token: str, case_id: str) -> list[case_pb2.TimelineEntry]:
        return [case_pb2.TimelineEntry(at=stamp(NOW), day="2026-01-05", kind="calculation",
                                       text="Basic rate: £43.21 a week from 5 January 2026")]

    async def balance(self, token: str, case_id: str) -> payments_pb2.Balance:
        return payments_pb2.Balance(case_id=case_id, arrears_pence=12345, paid_to_date_pence=50000)

    async def statement(self, token: str, case_id: str) -> payments_pb2.Statement:
        return payments_pb2.Statement(case_id=case_id, lines=[payments_pb2.StatementLine(
            date="2026-02-01", description="Maintenance due", due_pence=18700, balance_pence=18700)])

    async def letters(self, token: str, case_id: str) -> list[notifications_pb2.Notification]:
        return [notifications_pb2.Notification(notification_id="n-1", template="calculation_decision", status="sent",
                                               recipient_party_id="rp-1", channel=notifications_pb2.CHANNEL_LETTER,
                                               created_at="2026-01-06T09:00:00+00:00")]

    async def letter_pdf(self, token: str, notification_id: str, reason: str) -> notifications_pb2.LetterPdfResponse:
        self.letter_reads.append((notification_id, reason))
        if notification_id != "n-1":
            raise FakeRpcError(grpc.StatusCode.NOT_FOUND, f"no notification {notification_id}")
        return notifications_pb2.LetterPdfResponse(pdf=b"%PDF-1.7 the letter", subject="Your calculation", case_id="C1")

    async def risk(self, token: str, case_id: str) -> risk_pb2.CaseScore:
        raise FakeRpcError(grpc.StatusCode.UNAVAILABLE, "risk is down")

    async def suspense(self, token: str) -> list[payments_pb2.SuspenseItem]:
        return self.suspense_items

    async def signal_case(self, token: str, case_id: str, action: str, payload: dict[str, str],
                          idempotency_key: str) -> case_pb2.SignalCaseResponse:
        return self._once(f"{action}/{idempotency_key}", (action, payload),
                          case_pb2.SignalCaseResponse(accepted=True, outcome=f"{action} done"))

    async def review_change(self, token: str, case_id: str, change_no: int, outcome: str, reason: str,
                            corrected_details: dict[str, Any] | None, idempotency_key: str) -> case_pb2.ReviewChangeResponse:
        return self._once(f"review/{idempotency_key}", ("review", (change_no, outcome, reason, corrected_details)),
                          case_pb2.ReviewChangeResponse(outcome="applied", reason=reason))

    async def assign_suspense(self, token: str, bank_reference: str, case_id: str,
                              idempotency_key: str) -> payments_pb2.SuspenseAssignment:
        return self._once(f"assign/{idempotency_key}", ("assign", (bank_reference, case_id)),
                          payments_pb2.SuspenseAssignment(case_id=case_id, amount_pence=5000))
