"""One gRPC call from a command line, for every `cmsctl` command: the call, and what a failed
call prints and exits with, the same for each service.

Exit status: 2 for bad input (each field violation on its own line, `error: <field>: <text>`),
3 when the service refused the request as things stand (not found, failed precondition, already
exists), 1 when the service could not be reached or failed, 4 when the caller's identity was refused
(no token, or a role that may not do this).

Who is calling: every call carries a token. `CMS_TOKEN` holds one from the identity provider;
without it, cmsctl asks the dev-only issuer (`CMS_DEV_ISSUER_KEY`, which `make run` enables) for a
token naming the person the command acts as: the staff id or party the command names
(`--staff`, `--actor`, `--party`), else `--as` / `CMS_STAFF_ID`.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Any

import grpc
import typer

from cms.auth import STAFF_ROLES, TokenRefused, dev_issuer_token
from cms.config import load_settings
from cms.grpc_client import channel_with_token

EXIT_UNAVAILABLE, EXIT_BAD_INPUT, EXIT_REFUSED, EXIT_NOT_ALLOWED = 1, 2, 3, 4
_REFUSALS = (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.ALREADY_EXISTS)
_LABELS = {"case_api": "the case API", "payments": "the payments service",
           "notifications": "the notifications service", "risk": "the risk service"}


class _Identity:
    """Who this command acts as: (subject, role); set by the command or the global `--as`."""

    default_staff = ""
    staff_role = "caseworker"
    acting_as: tuple[str, str] | None = None


def act_as(subject: str, role: str = "") -> None:
    """The command acts as `subject`: a staff id (the `--role` given, caseworker by default) or,
    with role "parent", a party id."""
    if subject:
        _Identity.acting_as = (subject, role or _Identity.staff_role)


def acting_as_staff() -> bool:
    return bool(_Identity.default_staff)


def set_default_staff(staff_id: str, role: str) -> None:
    if role not in STAFF_ROLES | {"operations"}:
        typer.echo(f"error: --role: {role!r} is not one of caseworker, senior_caseworker, operations", err=True)
        raise typer.Exit(EXIT_BAD_INPUT)
    _Identity.default_staff, _Identity.staff_role = staff_id, role
    _Identity.acting_as = None  # each command names its own person


def token() -> str:
    """The token for this command's calls; exits when nobody is named or no issuer is here."""
    if os.environ.get("CMS_TOKEN"):
        return os.environ["CMS_TOKEN"]
    subject, role = _Identity.acting_as or (_Identity.default_staff, _Identity.staff_role)
    if not subject:
        typer.echo("error: say who you are: --as STAFF_ID (or CMS_STAFF_ID), or a token in CMS_TOKEN", err=True)
        raise typer.Exit(EXIT_BAD_INPUT)
    try:
        return dev_issuer_token(load_settings().dev_issuer_key, subject, role)
    except TokenRefused as refused:
        typer.echo(f"error: {refused}", err=True)
        raise typer.Exit(EXIT_NOT_ALLOWED) from None


def call(service: str, stub: Callable[[grpc.aio.Channel], Any], method: str, request: Any,
         timeout: float = 60) -> Any:
    """`method` of `service` (a name in cms.config ports) with `request`; exits on an error."""
    address = load_settings().address_of(service)
    bearer = token()

    async def go() -> Any:
        async with channel_with_token(address, bearer) as channel:
            return await getattr(stub(channel), method)(request, timeout=timeout)

    try:
        return asyncio.run(go())
    except grpc.aio.AioRpcError as error:
        raise exit_for(error, _LABELS.get(service, service), address) from None


def exit_for(error: grpc.aio.AioRpcError, label: str, address: str) -> typer.Exit:
    from services.common.errors import field_violations_of

    code = error.code()
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        for field, text in field_violations_of(error) or [("", error.details())]:
            typer.echo(f"error: {field}: {text}" if field else f"error: {text}", err=True)
        return typer.Exit(EXIT_BAD_INPUT)
    if code in _REFUSALS:
        typer.echo(f"error: {error.details()}", err=True)
        return typer.Exit(EXIT_REFUSED)
    if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
        typer.echo(f"error: {label} refused you ({code.name}): {error.details()}", err=True)
        return typer.Exit(EXIT_NOT_ALLOWED)
    if code == grpc.StatusCode.UNAVAILABLE:
        typer.echo(f"error: {label} is not reachable at {address} (is `make run` running?)", err=True)
    else:
        typer.echo(f"error: {label} failed ({code.name}): {error.details()}", err=True)
    return typer.Exit(EXIT_UNAVAILABLE)
