"""`cmsctl enforcement …`: enforcement of a case's arrears, step by step.

    cmsctl enforcement list [--step liability_order] [--needs-caseworker]
    cmsctl enforcement show CASE_ID [--n 1] [--json]
    cmsctl enforcement approve CASE_ID STEP --staff cw-17 --role caseworker --reason "..."
    cmsctl enforcement plan CASE_ID --amount-pence 10000 --periods 6 [--period-days 30] --staff cw-17 --reason "..."
    cmsctl enforcement outcome CASE_ID STEP OUTCOME --staff cw-17 --reason "..."
    cmsctl enforcement withdraw CASE_ID --staff cw-17 --reason "..."

Talks to the case's EnforcementWorkflow through Temporal (TEMPORAL_ADDRESS, the service's payload
keys): the workflow's update validators decide what is allowed, so a refused request changes
nothing and prints why (exit 2); an unknown case or enforcement exits 3; an unreachable Temporal
exits 1. Wire into cmsctl with ``enforcement.register(app)``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from cms.cli.rpc import EXIT_BAD_INPUT, EXIT_REFUSED, EXIT_UNAVAILABLE

enforcement_app = typer.Typer(help="Enforcement: list, show, approve a step, agree a plan, record an outcome, "
                              "withdraw.", no_args_is_help=True, add_completion=False)
console = Console()


def list_query(step: str = "", needs_caseworker: bool = False) -> str:
    """The visibility query for running enforcements (search attributes hold no personal data)."""
    clauses = ["WorkflowType = 'EnforcementWorkflow'", "ExecutionStatus = 'Running'"]
    if step:
        if not step.replace("_", "").isalnum():
            raise ValueError(f"--step: {step!r} is not a step name")
        clauses.append(f"EnforcementStep = '{step}'")
    if needs_caseworker:
        clauses.append("NeedsCaseworker = true")
    return " AND ".join(clauses)


async def _with_client(action: Callable[[Any], Awaitable[Any]]) -> Any:
    from cms.config import load_settings
    from cms.errors import StartupError
    from cms.temporal import connect

    try:
        client = await connect(load_settings())
    except StartupError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(EXIT_UNAVAILABLE) from None
    return await action(client)


def _run(action: Callable[[Any], Awaitable[Any]]) -> Any:
    """Runs one request against the enforcement workflow; refusals print why and exit."""
    from temporalio.client import WorkflowUpdateFailedError
    from temporalio.exceptions import ApplicationError
    from temporalio.service import RPCError, RPCStatusCode

    try:
        return asyncio.run(_with_client(action))
    except WorkflowUpdateFailedError as error:
        cause = error.cause
        message = cause.message if isinstance(cause, ApplicationError) else str(cause)
        typer.echo(f"error: {message}", err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            typer.echo("error: no such enforcement (check the case id and --n)", err=True)
            raise typer.Exit(EXIT_REFUSED) from None
        typer.echo(f"error: Temporal: {error.message}", err=True)
        raise typer.Exit(EXIT_UNAVAILABLE) from None


def _handle(client: Any, case_id: str, n: int) -> Any:
    from workflows.enforcement_messages import enforcement_workflow_id

    return client.get_workflow_handle(enforcement_workflow_id(case_id, n))


async def show_status(client: Any, case_id: str, n: int) -> Any:
    from workflows.enforcement import EnforcementWorkflow

    return await _handle(client, case_id, n).query(EnforcementWorkflow.status)


async def send_update(client: Any, case_id: str, n: int, update: str, request: Any) -> Any:
    from workflows.enforcement import EnforcementWorkflow

    method = getattr(EnforcementWorkflow, update)
    return await _handle(client, case_id, n).execute_update(method, request)


def print_status(status: Any) -> None:
    from domain.money import format_pence

    table = Table("step", "started", "ended", "charge", "outcome", "detail")
    for step in status.steps:
        table.add_row(step.step, step.started_on, step.ended_on, format_pence(step.charge_pence) if step.charge_pence
                      else "", step.outcome or "open", step.detail)
    console.print(table)
    console.print(f"arrears {format_pence(status.arrears_pence)} (collected {format_pence(status.collected_pence)}); "
                  f"charges posted {format_pence(status.charges_posted_pence)}")
    if status.pending_approval:
        given = ", ".join(f"{a.staff_id} ({a.role})" for a in status.approvals if a.step == status.pending_approval)
        console.print(f"waiting for approval: {status.pending_approval}" + (f"; approved by {given}" if given else ""))
    if status.needs_caseworker:
        console.print(f"needs a caseworker: {status.caseworker_reason}")
    if status.closed:
        console.print(f"closed: {status.ended_because}")


_N = typer.Option(1, "--n", min=1, help="which enforcement of the case (1 for the first)")
_STAFF = typer.Option(..., "--staff", help="your staff id")
_REASON = typer.Option(..., "--reason", help="why (kept with the case)")


@enforcement_app.command("list")
def list_enforcements(step: str = typer.Option("", help="only enforcements at this step"),
                      needs_caseworker: bool = typer.Option(False, "--needs-caseworker"),
                      limit: int = typer.Option(50, min=1, max=1000)) -> None:
    """Running enforcements, from Temporal visibility."""
    try:
        query = list_query(step, needs_caseworker)
    except ValueError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None

    async def listed(client: Any) -> list[Any]:
        return [execution async for execution in client.list_workflows(query, limit=limit)]

    table = Table("enforcement", "step", "arrears", "caseworker")
    for execution in _run(listed):
        attributes = execution.search_attributes
        table.add_row(execution.id, ",".join(attributes.get("EnforcementStep", [])),
                      str(attributes.get("ArrearsPence", [""])[0]),
                      "yes" if attributes.get("NeedsCaseworker", [False])[0] else "")
    console.print(table)


@enforcement_app.command("show")
def show(case_id: str, n: int = _N, as_json: bool = typer.Option(False, "--json")) -> None:
    """The steps taken, charges, arrears and what is waiting."""
    status = _run(lambda client: show_status(client, case_id, n))
    if as_json:
        typer.echo(json.dumps({**asdict(status), "collected_pence": status.collected_pence}, indent=1))
    else:
        print_status(status)


@enforcement_app.command("approve")
def approve(case_id: str, step: str, n: int = _N, staff: str = _STAFF,
            role: str = typer.Option("caseworker", help="caseworker or senior_caseworker"),
            reason: str = _REASON) -> None:
    """Approves the step waiting for approval (a court sanction needs a second, senior caseworker)."""
    from workflows.enforcement_messages import ApprovalRequest

    print_status(_run(lambda client: send_update(client, case_id, n, "approve",
                                                 ApprovalRequest(step, staff, role, reason))))


@enforcement_app.command("plan")
def plan(case_id: str, n: int = _N, amount_pence: int = typer.Option(..., "--amount-pence", min=1),
         periods: int = typer.Option(..., min=1), period_days: int = typer.Option(30, "--period-days", min=1),
         staff: str = _STAFF, reason: str = _REASON) -> None:
    """Agrees a repayment plan: it pauses enforcement; kept, it closes it; broken, it resumes."""
    from workflows.enforcement_messages import PlanRequest

    print_status(_run(lambda client: send_update(client, case_id, n, "agree_plan",
                                                 PlanRequest(amount_pence, periods, period_days, staff, reason))))


@enforcement_app.command("outcome")
def outcome(case_id: str, step: str, result: str, n: int = _N, staff: str = _STAFF, reason: str = _REASON) -> None:
    """Records how the open step ended: granted or not_made (liability order), ineffective, broken (plan)."""
    from workflows.enforcement_messages import OutcomeRequest

    print_status(_run(lambda client: send_update(client, case_id, n, "record_outcome",
                                                 OutcomeRequest(step, result, staff, reason))))


@enforcement_app.command("withdraw")
def withdraw(case_id: str, n: int = _N, staff: str = _STAFF, reason: str = _REASON) -> None:
    """Stops enforcement (the arrears stay owed)."""
    from workflows.enforcement_messages import WithdrawRequest

    print_status(_run(lambda client: send_update(client, case_id, n, "withdraw", WithdrawRequest(staff, reason))))


def register(app: typer.Typer) -> None:
    """Adds `enforcement …` to a Typer app (cmsctl)."""
    app.add_typer(enforcement_app, name="enforcement")
