"""The one way activities call a gRPC service (cms/grpc_client.py): a refusal a retry cannot
change fails the activity for good, anything else is retried; one channel per address."""

from __future__ import annotations

import grpc
import pytest
from temporalio.exceptions import ApplicationError

from cms.grpc_client import NON_RETRYABLE_CODES, Channels, ServiceClient, application_error
from cms.worker_catalog import notifications_client, payments_client

in_loop = pytest.mark.asyncio(loop_scope="session")

# A request the service refuses as it stands, and a caller it does not admit (no valid token, or a
# role that may not do this): sending the same again cannot succeed.
REFUSALS = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.ALREADY_EXISTS,
            grpc.StatusCode.NOT_FOUND, grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED}


def _failed(code: grpc.StatusCode, details: str = "it went wrong") -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details=details)


@pytest.mark.parametrize("code", [code for code in grpc.StatusCode if code != grpc.StatusCode.OK],
                         ids=lambda code: code.name)
def test_only_a_refusal_is_final(code: grpc.StatusCode) -> None:
    error = application_error("payments", _failed(code, "no schedule for case c-1"))
    assert error.non_retryable == (code in REFUSALS)
    assert error.type == code.name
    assert error.message == f"payments: {code.name}: no schedule for case c-1"


def test_the_table_is_the_refusals_and_a_service_down_is_retried() -> None:
    assert NON_RETRYABLE_CODES == REFUSALS
    assert grpc.StatusCode.UNAVAILABLE not in NON_RETRYABLE_CODES
    assert grpc.StatusCode.DEADLINE_EXCEEDED not in NON_RETRYABLE_CODES


@in_loop
async def test_a_call_that_fails_raises_the_mapped_error_and_a_service_may_name_its_refusals() -> None:
    channels = Channels()
    notifications = notifications_client("127.0.0.1:1", channels)
    seen: list[float] = []

    async def refuses(request: object, timeout: float) -> None:
        seen.append(timeout)
        raise _failed(grpc.StatusCode.INVALID_ARGUMENT, "template payment_received needs variable 'amount'")

    async def unavailable(request: object, timeout: float) -> None:
        raise _failed(grpc.StatusCode.UNAVAILABLE, "connection refused")

    with pytest.raises(ApplicationError) as refused:
        await notifications.call(refuses, object())
    assert (refused.value.type, refused.value.non_retryable) == ("InvalidNotification", True)
    assert "needs variable 'amount'" in refused.value.message
    with pytest.raises(ApplicationError) as down:
        await notifications.call(unavailable, object())
    assert (down.value.type, down.value.non_retryable) == ("UNAVAILABLE", False)
    await notifications.call(lambda request, timeout: _answer(seen, timeout), object(), timeout_seconds=300.0)
    assert seen[0] < 30 and seen[-1] == 300.0   # the common deadline, or the longer one asked for
    await channels.close()


async def _answer(seen: list[float], timeout: float) -> str:
    seen.append(timeout)
    return "ok"


@in_loop
async def test_clients_of_one_address_share_one_channel_until_closed() -> None:
    channels = Channels()
    first = payments_client("127.0.0.1:1", channels)
    second = ServiceClient("payments", "127.0.0.1:1", lambda channel: channel, channels)
    other = ServiceClient("notifications", "127.0.0.1:2", lambda channel: channel, channels)
    assert first.stub is first.stub
    assert second.stub is channels.to("127.0.0.1:1")
    assert other.stub is not second.stub
    await channels.close()
    assert channels.to("127.0.0.1:1") is not second.stub   # a new one after close
    await channels.close()
