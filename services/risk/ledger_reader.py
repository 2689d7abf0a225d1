"""Reads a case's ledger from the payments service's read API (balance and statement)."""

from __future__ import annotations

from datetime import date
from typing import Any

from cms_proto.payments.v1 import payments_pb2 as pb
from domain.risk_features import CaseLedger


async def read_ledger(payments: Any, case_id: str, as_of: date, timeout: float = 5.0) -> CaseLedger:
    """The case's statement up to `as_of`, in the shape the feature module reads.

    `payments` is a PaymentsService stub on an asyncio channel. Errors (an unknown case is
    NOT_FOUND) pass through to the caller as gRPC errors."""
    balance = await payments.GetBalance(pb.GetBalanceRequest(case_id=case_id, as_of=as_of.isoformat()), timeout=timeout)
    statement = await payments.GetStatement(pb.GetStatementRequest(case_id=case_id, to_date=as_of.isoformat()),
                                            timeout=timeout)
    return CaseLedger.from_statement(case_id, balance.service_type, statement.opening_balance_pence,
                                     ((line.date, line.description, line.due_pence, line.paid_pence)
                                      for line in statement.lines))
