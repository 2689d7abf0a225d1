"""`cmsctl payments …`: money held in suspense, assigning it to a case, a case's balance and statement.

    cmsctl payments suspense [--as-of 2026-03-31] [--json]
    cmsctl payments assign BANK_REFERENCE CASE_ID --actor cw-17 [--on 2026-03-02]
    cmsctl payments balance CASE_ID [--as-of 2026-03-31] [--json]
    cmsctl payments statement CASE_ID [--from 2026-01-01] [--to 2026-03-31]

Talks to the payments service (PAYMENTS_PORT, see cms.config). Wire into cmsctl with
``payments.register(app)``. Bad input exits 2 with ``error: <field>: <message>``; a refused
request (unknown reference, already assigned, no Collect & Pay schedule, key reused for another
request) exits 3; an unreachable service exits 1.
"""

from __future__ import annotations

import json
from typing import Any

import typer

from cms.cli import rpc

payments_app = typer.Typer(help="Payments: suspense items, assigning them to cases, balances and statements.",
                           no_args_is_help=True, add_completion=False)


def _call(method: str, request: Any) -> Any:
    """One PaymentsService call; a failed call prints why and exits (cms.cli.rpc)."""
    from cms_proto.payments.v1 import payments_pb2_grpc

    return rpc.call("payments", payments_pb2_grpc.PaymentsServiceStub, method, request, timeout=30)


def _pounds(pence: int) -> str:
    from domain.money import format_pence

    return format_pence(pence)


def _print_json(message: Any) -> None:
    from google.protobuf.json_format import MessageToDict

    typer.echo(json.dumps(MessageToDict(message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True),
                          indent=2))


@payments_app.command("suspense")
def list_suspense(
    as_of: str = typer.Option("", "--as-of", help="ISO date; default: everything held now"),
    limit: int = typer.Option(100, min=1, max=1000),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Lists payments held in suspense (case not known) that are neither assigned nor returned."""
    from rich.console import Console
    from rich.table import Table

    from cms_proto.payments.v1 import payments_pb2 as pb

    reply = _call("ListSuspense", pb.ListSuspenseRequest(as_of=as_of, limit=limit))
    if as_json:
        _print_json(reply)
        return
    table = Table("bank reference", "case quoted", "amount", "received", title=f"In suspense: {_pounds(reply.total_pence)}")
    for item in reply.items:
        table.add_row(item.bank_reference, item.claimed_case_id or "-", _pounds(item.amount_pence), item.received_on)
    Console().print(table)


@payments_app.command("assign")
def assign(
    bank_reference: str = typer.Argument(..., help="The suspense item (its bank reference)."),
    case_id: str = typer.Argument(..., help="The case the money belongs to (on Collect & Pay)."),
    actor: str = typer.Option(..., "--actor", help="your staff id"),
    on: str = typer.Option("", "--on", help="ISO date of the assignment; default today"),
    idempotency_key: str = typer.Option("", "--idempotency-key",
                                        help="default assign/<reference>/<case>: running the command again is safe"),
) -> None:
    """Assigns a suspense payment to its case: allocated as a payment would be, once."""
    from cms_proto.payments.v1 import payments_pb2 as pb

    rpc.act_as(actor)
    reply = _call("AssignSuspensePayment", pb.AssignSuspensePaymentRequest(
        idempotency_key=idempotency_key or f"assign/{bank_reference}/{case_id}", bank_reference=bank_reference,
        case_id=case_id, assigned_on=on, assigned_by=actor))
    state = "already assigned by this request" if reply.duplicate else "assigned"
    credit = f"; {_pounds(reply.credit_pence)} held as credit" if reply.credit_pence else ""
    typer.echo(f"{bank_reference}: {_pounds(reply.amount_pence)} {state} to case {reply.case_id}{credit} "
               f"(transaction {reply.transaction_id})")


@payments_app.command("balance")
def balance(
    case_id: str,
    as_of: str = typer.Option("", "--as-of", help="ISO date; default today"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """A case's arrears, credit, paid to date, next payment, and what the receiving parent is due."""
    from cms_proto.payments.v1 import payments_pb2 as pb

    reply = _call("GetBalance", pb.GetBalanceRequest(case_id=case_id, as_of=as_of))
    if as_json:
        _print_json(reply)
        return
    rows = [("service type", reply.service_type), ("arrears", _pounds(reply.arrears_pence)),
            ("enforcement charges", _pounds(reply.enforcement_charges_pence)), ("credit", _pounds(reply.credit_pence)),
            ("paid to date", _pounds(reply.paid_to_date_pence)),
            ("next payment", f"{_pounds(reply.next_payment_pence)} on {reply.next_payment_due}"
             if reply.next_payment_due else "-"),
            ("payable to receiving parent", _pounds(reply.payable_to_receiving_parent_pence)),
            ("overpaid to receiving parent", _pounds(reply.overpaid_to_receiving_parent_pence))]
    typer.echo(f"case {reply.case_id}")
    for label, value in rows:
        typer.echo(f"  {label:<30}{value}")


@payments_app.command("statement")
def statement(
    case_id: str,
    from_date: str = typer.Option("", "--from", help="ISO date; default: from the start"),
    to_date: str = typer.Option("", "--to", help="ISO date; default today"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """The statement both parents can read: what fell due, what was paid, the running balance."""
    from cms_proto.payments.v1 import payments_pb2 as pb

    reply = _call("GetStatement", pb.GetStatementRequest(case_id=case_id, from_date=from_date, to_date=to_date))
    if as_json:
        _print_json(reply)
        return
    typer.echo(reply.text)


def register(app: typer.Typer) -> None:
    """Adds `payments …` to a Typer app (cmsctl)."""
    app.add_typer(payments_app, name="payments")
