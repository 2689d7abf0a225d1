"""One gRPC call from a command line, for every `cmsctl` command: the call, and what a failed
call prints and exits with, the same for each service.

Exit status: 2 for bad input (each field violation on its own line, `error: <field>: <text>`),
3 when the service refused the request as things stand (not found, failed precondition, already
exists), 1 when the service could not be reached or failed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import grpc
import typer

from cms.config import load_settings

EXIT_UNAVAILABLE, EXIT_BAD_INPUT, EXIT_REFUSED = 1, 2, 3
_REFUSALS = (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.ALREADY_EXISTS)
_LABELS = {"case_api": "the case API", "payments": "the payments service",
           "notifications": "the notifications service", "risk": "the risk service"}


def call(service: str, stub: Callable[[grpc.aio.Channel], Any], method: str, request: Any,
         timeout: float = 60) -> Any:
    """`method` of `service` (a name in cms.config ports) with `request`; exits on an error."""
    address = load_settings().address_of(service)

    async def go() -> Any:
        async with grpc.aio.insecure_channel(address) as channel:
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
    if code == grpc.StatusCode.UNAVAILABLE:
        typer.echo(f"error: {label} is not reachable at {address} (is `make run` running?)", err=True)
    else:
        typer.echo(f"error: {label} failed ({code.name}): {error.details()}", err=True)
    return typer.Exit(EXIT_UNAVAILABLE)
