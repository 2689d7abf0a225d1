"""Turning bad input into INVALID_ARGUMENT with field violations (google.rpc.BadRequest)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NoReturn

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status


class FieldViolations(Exception):
    """Raised by validation code with (field, description) pairs; handlers turn it into a status."""

    def __init__(self, violations: Iterable[tuple[str, str]]):
        self.violations = list(violations)
        super().__init__("; ".join(f"{field}: {text}" for field, text in self.violations))


def invalid_argument_status(violations: list[tuple[str, str]]) -> grpc.Status:
    detail = any_pb2.Any()
    detail.Pack(
        error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=field, description=text)
                for field, text in violations
            ]
        )
    )
    message = "; ".join(f"{field}: {text}" for field, text in violations)
    return rpc_status.to_status(
        status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message=message, details=[detail])
    )


async def abort_invalid(context: grpc.aio.ServicerContext, error: FieldViolations) -> NoReturn:
    """Ends the call with INVALID_ARGUMENT and the field violations; never returns."""
    await context.abort_with_status(invalid_argument_status(error.violations))
    raise AssertionError("grpc.aio abort_with_status always raises")


async def abort(context: grpc.aio.ServicerContext, code: grpc.StatusCode, message: str) -> NoReturn:
    """Ends the call with `code`; never returns, so code after it may rely on what it checked."""
    await context.abort(code, message)
    raise AssertionError("grpc.aio abort always raises")


def field_violations_of(error: grpc.RpcError) -> list[tuple[str, str]]:
    """For clients and tests: the field violations carried by an INVALID_ARGUMENT error."""
    metadata = error.trailing_metadata() or ()
    raw = next((value for key, value in metadata if key == "grpc-status-details-bin"), None)
    if raw is None:
        return []
    status = status_pb2.Status.FromString(raw)
    found = []
    for detail in status.details:
        bad_request = error_details_pb2.BadRequest()
        if detail.Unpack(bad_request):
            found += [(v.field, v.description) for v in bad_request.field_violations]
    return found
