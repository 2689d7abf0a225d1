"""`cmsctl change report|review` and `cmsctl sla`: changes of circumstances through CaseService.

Wire into cmsctl with ``changes.register(app)``. Bad input exits 2 with ``error: <field>: <message>``
(the field violations CaseService returns); a failed precondition (closed case, change not
waiting for review) exits 3; an unreachable service exits 1.
"""

from __future__ import annotations

import json
from typing import Any

import typer

from cms.cli import rpc
from cms.cli.rpc import EXIT_BAD_INPUT


def _call(method: str, request: Any) -> Any:
    """One CaseService call; a failed call prints why and exits (cms.cli.rpc)."""
    from cms_proto.case.v1 import case_pb2_grpc

    return rpc.call("case_api", case_pb2_grpc.CaseServiceStub, method, request)


def _json_object(text: str | None, option: str) -> str:
    if not text:
        return ""
    try:
        value = json.loads(text)
    except ValueError as error:
        typer.echo(f"error: {option}: not valid JSON ({error})", err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    if not isinstance(value, dict):
        typer.echo(f"error: {option}: must be one JSON object", err=True)
        raise typer.Exit(EXIT_BAD_INPUT)
    return text


change_app = typer.Typer(help="Changes of circumstances: report one, answer a manual review.",
                         no_args_is_help=True, add_completion=False)


@change_app.command("report")
def report(
    case_id: str = typer.Argument(..., help="The case the change is for."),
    kind: str = typer.Option(..., "--kind", help="paying_parent_income, shared_care_nights, child_added, child_left, "
                             "child_left_education, child_continuing_education, relevant_other_children, "
                             "flat_rate_benefit_started, flat_rate_benefit_stopped, address, employment, "
                             "service_type, close_request, special_expenses_variation"),
    reported_date: str = typer.Option("", "--reported-date", help="A caseworker's earlier day the service was told (with "
                                      "--notification-reason); otherwise the case takes the day the report arrives."),
    effective_date: str = typer.Option(..., "--effective-date", help="ISO date it happened or will happen."),
    details: str | None = typer.Option(None, "--details", help='JSON object, e.g. \'{"weekly_income_pence": 61000}\''),
    reported_by: str = typer.Option("paying_parent", "--reported-by"),
    disputed: bool = typer.Option(False, "--disputed", help="The other parent disputes the evidence."),
    notification_reason: str = typer.Option("", "--notification-reason",
                                             help="Why a caseworker records an earlier --reported-date (goes to review)."),
    idempotency_key: str = typer.Option("", "--idempotency-key", help="Resubmitting with the same key returns the first result."),
) -> None:
    from cms_proto.case.v1 import case_pb2

    response = _call("ReportChange", case_pb2.ReportChangeRequest(
        case_id=case_id, kind=kind, reported_date=reported_date, effective_date=effective_date,
        details_json=_json_object(details, "--details"), reported_by=reported_by, evidence_disputed=disputed,
        notification_reason=notification_reason, idempotency_key=idempotency_key))
    state = "again (first result)" if response.already_existed else "received"
    queue = f"; caseworker queue {response.assigned_team}" if response.needs_caseworker else ""
    typer.echo(f"change {response.change_no} {state}: {response.workflow_id}; due by "
               f"{response.sla_due_at.ToDatetime().date().isoformat()}{queue}")


@change_app.command("review")
def review(
    case_id: str = typer.Argument(...),
    change_no: int = typer.Argument(..., help="The change number (the n of case-<id>/change-<n>)."),
    outcome: str = typer.Option(..., "--outcome", help="apply or reject"),
    reason: str = typer.Option(..., "--reason", help="Why, in words the parents can read."),
    reviewer: str = typer.Option(..., "--reviewer", help="Your caseworker id."),
    corrected_details: str | None = typer.Option(None, "--corrected-details", help="JSON object: details as verified."),
) -> None:
    from cms_proto.case.v1 import case_pb2

    rpc.act_as(reviewer)
    response = _call("ReviewChange", case_pb2.ReviewChangeRequest(
        case_id=case_id, change_no=change_no, outcome=outcome, reason=reason, reviewer=reviewer,
        corrected_details_json=_json_object(corrected_details, "--corrected-details")))
    typer.echo(f"change {change_no}: {response.outcome}: {response.reason}")


def sla(
    oldest: int = typer.Option(10, "--oldest", min=0, max=500, help="How many of the oldest open changes to list."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Open changes by age band, on-time clearance over the last 4 weeks, breaches, oldest items."""
    from google.protobuf.json_format import MessageToDict

    from cms_proto.case.v1 import case_pb2

    report = _call("GetSlaReport", case_pb2.GetSlaReportRequest(oldest=oldest))
    if as_json:
        typer.echo(json.dumps(MessageToDict(report, preserving_proto_field_name=True), indent=2))
        return
    _print_sla(report)


def _print_sla(report: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    bands = Table(title=f"Open changes by age (days): {report.open_total} open")
    for band in report.open_by_age:
        bands.add_column(band.band, justify="right")
    bands.add_row(*(str(band.open) for band in report.open_by_age))
    console.print(bands)
    share = (f"{report.on_time_share * 100:.1f}%" if report.cleared_last_4_weeks else "—")
    console.print(f"Cleared in the last 4 weeks: {report.cleared_last_4_weeks} "
                  f"({report.cleared_on_time_last_4_weeks} within 28 days, {share} on time)")
    console.print(f"Breaches: {report.breaches_open} open past 28 days, {report.breaches_last_4_weeks} cleared late "
                  "in the last 4 weeks")
    if report.oldest:
        table = Table(title="Oldest open changes")
        for column in ("case", "change", "kind", "age (days)", "team", "caseworker", "due", "breached"):
            table.add_column(column)
        for item in report.oldest:
            table.add_row(item.case_id, str(item.change_no), item.kind, str(item.age_days), item.assigned_team,
                          "yes" if item.needs_caseworker else "", item.sla_due_at.ToDatetime().isoformat(timespec="minutes"),
                          "yes" if item.breached else "")
        console.print(table)


def register(app: typer.Typer) -> None:
    """Adds `change report`, `change review` and `sla` to a Typer app (cmsctl)."""
    app.add_typer(change_app, name="change")
    app.command("sla")(sla)
