"""`cmsctl`: caseworker and operator commands against the running service (CaseService gRPC).

    cmsctl case list [--stage Assessment] [--needs-caseworker] [--sla-before 2026-12-01T00:00:00Z]
    cmsctl case show CASE_ID --staff cw-17 --reason "phone call"
    cmsctl --as cw-17 audit CASE_ID
    cmsctl case note CASE_ID "Called the paying parent" --author cw-17
    cmsctl case hold CASE_ID --reason "awaiting court papers" --actor cw-17
    cmsctl case release CASE_ID --actor cw-17
    cmsctl case review CASE_ID --reason "disputed income" --actor cw-17
    cmsctl case close CASE_ID --reason receiving_parent_request --actor cw-17
    cmsctl case collect-and-pay CASE_ID --reason direct_pay_missed --actor cw-17 [--note "..."]
    cmsctl enforcement list|show|approve|plan|outcome|withdraw   (cms/cli/enforcement.py)

A failed command prints what went wrong (the fields at fault, one a line) and exits 2 for bad
input, 3 when the case refused the action as it stands, 1 when the service is unreachable (cms/cli/rpc.py).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import typer
from rich.console import Console
from rich.table import Column, Table

from cms.cli import rpc

app = typer.Typer(help="Caseworker commands: list and show cases, notes, holds, reviews, SLA.",
                  no_args_is_help=True, add_completion=False)
case_app = typer.Typer(help="Cases: list, show, note, hold, release, review, close.", no_args_is_help=True)
app.add_typer(case_app, name="case")

console = Console()


@app.callback()
def who_is_calling(
    acting_as: str = typer.Option("", "--as", envvar="CMS_STAFF_ID",
                                  help="your staff id, for commands that name nobody (the token's subject)"),
    role: str = typer.Option("caseworker", "--role", envvar="CMS_STAFF_ROLE",
                             help="caseworker, senior_caseworker or operations"),
) -> None:
    """Every call carries a token for the person the command acts as (see cms/cli/rpc.py)."""
    rpc.set_default_staff(acting_as, role)


def _call(method: str, request: Any) -> Any:
    """One CaseService call; a failed call prints why and exits (cms.cli.rpc)."""
    from cms_proto.case.v1 import case_pb2_grpc

    return rpc.call("case_api", case_pb2_grpc.CaseServiceStub, method, request, timeout=30)


def _case_pb2():
    from cms_proto.case.v1 import case_pb2

    return case_pb2


@case_app.command("list")
def list_cases(
    stage: str = typer.Option("", help="Application, Assessment, PaymentSchedule, Active, AnnualReview or Closed"),
    needs_caseworker: bool = typer.Option(False, "--needs-caseworker", help="only cases waiting for a caseworker"),
    sla_before: str = typer.Option("", help="only cases whose SLA falls due before this ISO instant"),
    limit: int = typer.Option(50, min=1, max=1000),
) -> None:
    """Lists cases through Temporal visibility (the same filters operators use in the UI)."""
    case_pb2 = _case_pb2()
    request = case_pb2.ListCasesRequest(stage=stage, needs_caseworker_only=needs_caseworker, page_size=limit)
    if sla_before:
        try:
            instant = datetime.fromisoformat(sla_before.replace("Z", "+00:00"))
        except ValueError:
            typer.echo(f"error: --sla-before: {sla_before!r} is not an ISO date-time", err=True)
            raise typer.Exit(2) from None
        request.sla_due_before.FromDatetime(instant if instant.tzinfo else instant.replace(tzinfo=UTC))
    reply = _call("ListCases", request)
    table = Table("stage", "service type", "caseworker", "SLA due")
    table.columns.insert(0, Column("case", no_wrap=True, min_width=16))
    for case in reply.cases:
        sla = case.sla_due_at.ToDatetime().isoformat(timespec="seconds") if case.HasField("sla_due_at") else ""
        table.add_row(case.case_id, case.stage, case.service_type, "yes" if case.needs_caseworker else "", sla)
    console.print(table)


@case_app.command("show")
def show_case(
    case_id: str,
    staff: str = typer.Option("", help="your staff id (staff reads of protected details are audited)"),
    reason: str = typer.Option("", help="why you are reading the case (required with --staff)"),
    party: str = typer.Option("", help="show the case as this party would see it"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Shows a case and its timeline."""
    from google.protobuf.json_format import MessageToDict

    from domain.money import format_pence

    if not (staff or party):
        # The service would refuse it too; say it in the command's own terms.
        typer.echo("error: say who is reading: --staff STAFF_ID --reason \"...\" (audited), "
                   "or --party PARTY_ID to see the case as that parent would", err=True)
        raise typer.Exit(2)
    if staff:
        rpc.act_as(staff)
    elif not rpc.acting_as_staff():
        rpc.act_as(party, "parent")  # as the parent: the service checks they are a party of the case
    case_pb2 = _case_pb2()
    case = _call("GetCase", case_pb2.GetCaseRequest(case_id=case_id, staff_id=staff, reason=reason,
                                                    viewer_party_id=party))
    timeline = _call("GetTimeline", case_pb2.GetTimelineRequest(case_id=case_id))
    if as_json:
        typer.echo(json.dumps({"case": MessageToDict(case, preserving_proto_field_name=True),
                               "timeline": MessageToDict(timeline, preserving_proto_field_name=True)}, indent=2))
        return
    liability = case.liability
    console.print(f"[bold]{case.case_id}[/]  stage [bold]{case.stage}[/]  "
                  f"{case_pb2.ServiceType.Name(case.service_type).removeprefix('SERVICE_TYPE_').lower()}"
                  + ("  [red]safeguarded[/]" if case.safeguarded else "")
                  + ("  [yellow]on hold[/]" if case.on_hold else "")
                  + (f"  [yellow]caseworker: {case.caseworker_reason}[/]" if case.needs_caseworker else ""))
    console.print(f"applied {case.application_date}  initial effective date {case.initial_effective_date or '-'}  "
                  f"next review {case.next_review_date or '-'}")
    if case.HasField("liability"):
        console.print(f"liability: {liability.rate} rate, {format_pence(liability.weekly_liability_pence)} a week "
                      f"from {liability.effective_date} (paying parent pays "
                      f"{format_pence(liability.paying_parent_pays_pence)})")
    for label, person in (("receiving parent", case.receiving_parent), ("paying parent", case.paying_parent)):
        console.print(f"{label}: {person.full_name} ({person.party_id}) {person.address}")
    table = Table("day", "kind", "what happened")
    for entry in timeline.entries:
        table.add_row(entry.day, entry.kind, entry.text)
    console.print(table)


@app.command("audit")
def audit(
    case_id: str,
    limit: int = typer.Option(100, min=1, max=1000),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Who read the case's protected details or timeline: when, what and why (newest first)."""
    from google.protobuf.json_format import MessageToDict

    reply = _call("ListAudit", _case_pb2().ListAuditRequest(case_id=case_id, limit=limit))
    if as_json:
        typer.echo(json.dumps(MessageToDict(reply, preserving_proto_field_name=True), indent=2))
        return
    table = Table("when", "staff", "action", "fields", "reason")
    for entry in reply.entries:
        table.add_row(entry.at.ToDatetime().isoformat(timespec="seconds"), entry.staff_id, entry.action,
                      ", ".join(entry.fields), entry.reason)
    console.print(table)


def _action(case_id: str, action: str, actor: str, payload: dict[str, str]) -> None:
    rpc.act_as(actor)
    case_pb2 = _case_pb2()
    reply = _call("SignalCase", case_pb2.SignalCaseRequest(case_id=case_id, action=action, actor=actor,
                                                           payload_json=json.dumps(payload)))
    typer.echo(f"{case_id}: {reply.outcome}")


def _actor_option(help_text: str = "your staff id") -> Any:   # typer.Option's placeholder is typed Any
    return typer.Option(..., "--actor", "--author", help=help_text)


@case_app.command("note")
def add_note(case_id: str, text: str, author: str = _actor_option()) -> None:
    """Adds a note to the case timeline."""
    _action(case_id, "add_note", author, {"text": text})


@case_app.command("hold")
def put_on_hold(case_id: str, reason: str = typer.Option(..., help="why the case waits"),
                actor: str = _actor_option()) -> None:
    """Puts the case on hold: it takes no further step until released (timers keep running)."""
    _action(case_id, "put_on_hold", actor, {"reason": reason})


@case_app.command("safeguard")
def flag_safeguarding(case_id: str, reason: str = typer.Option(..., help="why (kept with staff, never shown to the parents)"),
                      actor: str = _actor_option()) -> None:
    """Sets the safeguarding profile: the other party never sees protected details; letters only, no phone."""
    _action(case_id, "flag_safeguarding", actor, {"reason": reason})


@case_app.command("collect-and-pay")
def switch_to_collect_and_pay(
        case_id: str,
        reason: str = typer.Option(..., help="direct_pay_missed, receiving_parent_request or safeguarding"),
        actor: str = _actor_option(), note: str = typer.Option("", help="optional note (kept with staff)")) -> None:
    """Moves a Direct Pay case to Collect & Pay from its next collection period (fees apply)."""
    _action(case_id, "switch_to_collect_and_pay", actor, {"reason": reason, "note": note})


@case_app.command("release")
def release_hold(case_id: str, actor: str = _actor_option(), note: str = typer.Option("", help="optional note")) -> None:
    """Releases a hold."""
    _action(case_id, "release_hold", actor, {"note": note})


@case_app.command("review")
def request_review(case_id: str, reason: str = typer.Option(...), actor: str = _actor_option()) -> None:
    """Asks for a caseworker's manual review (sets NeedsCaseworker)."""
    _action(case_id, "request_manual_review", actor, {"reason": reason})


@case_app.command("close")
def close_case(case_id: str,
               reason: str = typer.Option(..., help="receiving_parent_request, paying_parent_died, receiving_parent_died, "
                                                    "child_died, party_left_uk or parents_living_together"),
               actor: str = _actor_option(), note: str = typer.Option("", help="optional note")) -> None:
    """Closes the case (arrears stay collectable) and prints the outcome."""
    _action(case_id, "close_case", actor, {"reason": reason, "note": note})


if __name__ == "__main__":
    app()


def _attach_changes() -> None:
    # Changes of circumstances and the SLA view live in their own module.
    from cms.cli import changes

    changes.register(app)


_attach_changes()


def _attach_payments() -> None:
    # Suspense items, assigning them to cases, balances and statements (the payments service).
    from cms.cli import payments

    payments.register(app)


_attach_payments()


def _attach_enforcement() -> None:
    # Enforcement of arrears: steps, approvals, plans (the case's EnforcementWorkflow).
    from cms.cli import enforcement

    enforcement.register(app)


_attach_enforcement()
