"""How the worker's activities call the platform's gRPC services (payments, notifications).

`Channels` keeps one channel per address for the life of the worker: a channel carries every
concurrent call, so opening one per call would pay a connection handshake each time and leave
sockets to close. `ServiceClient` makes every call with the same deadline and turns a failed
call into a Temporal ApplicationError the same way for every service: a refusal that sending the
same request again cannot change (`NON_RETRYABLE_CODES`) fails the activity for good, so the
workflow sees it at once and a caseworker can act; anything else (the service down, restarting
or slow) is retried by Temporal with backoff. Every activity request carries an idempotency key,
so a retry after a lost reply changes nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Generic, TypeVar

import grpc
from temporalio.exceptions import ApplicationError

from cms.config import load_settings

# The one table of refusals: the request itself is wrong or contradicts what the service holds.
NON_RETRYABLE_CODES: frozenset[grpc.StatusCode] = frozenset({
    grpc.StatusCode.INVALID_ARGUMENT,      # malformed: e.g. a date that is not a date, a missing variable
    grpc.StatusCode.FAILED_PRECONDITION,   # contradicts the case's state: e.g. charging a stopped schedule
    grpc.StatusCode.ALREADY_EXISTS,        # an idempotency key already used for a different request
    grpc.StatusCode.NOT_FOUND,             # names a case, period or party the service does not have
    grpc.StatusCode.UNAUTHENTICATED,       # no valid token: sending it again proves nothing more
    grpc.StatusCode.PERMISSION_DENIED,     # the token's role or subject may not do this
})

# The deadline of one call: well inside the shortest activity timeout that makes one (30 s),
# so a hung call fails as a retryable DEADLINE_EXCEEDED rather than timing the activity out.
CALL_TIMEOUT_SECONDS = 20.0

StubT = TypeVar("StubT")


def application_error(service: str, error: grpc.aio.AioRpcError,
                      error_types: Mapping[grpc.StatusCode, str] | None = None) -> ApplicationError:
    """The ApplicationError for a failed call to `service`: its type is the status code's name
    unless the service names that refusal itself (`error_types`, e.g. notifications'
    INVALID_ARGUMENT is an "InvalidNotification")."""
    code = error.code()
    return ApplicationError(f"{service}: {code.name}: {error.details()}",
                            type=(error_types or {}).get(code, code.name),
                            non_retryable=code in NON_RETRYABLE_CODES)


# An address may name several instances of a service ("ipv4:127.0.0.1:50052,127.0.0.1:50062", or
# "dns:///cms-payments:50052" for a Kubernetes headless Service): calls are spread across those
# that are up, and a stopped one is skipped, rather than all going to the first that answered.
BALANCED = [("grpc.lb_policy_name", "round_robin")]


class BearerToken(grpc.aio.UnaryUnaryClientInterceptor):
    """Sends `token` as `authorization: Bearer <token>` with every call of a channel: every
    service refuses a call without one (services/common/auth.py)."""

    def __init__(self, token: str):
        self._metadata = ("authorization", f"Bearer {token}")

    async def intercept_unary_unary(self, continuation: Callable[..., Awaitable[Any]],
                                    client_call_details: grpc.aio.ClientCallDetails, request: Any) -> Any:
        metadata = list(client_call_details.metadata or ()) + [self._metadata]
        details = grpc.aio.ClientCallDetails(client_call_details.method, client_call_details.timeout, metadata,
                                             client_call_details.credentials, client_call_details.wait_for_ready)
        return await continuation(details, request)


def channel_with_token(address: str, token: str, options: list[tuple[str, Any]] | None = None) -> grpc.aio.Channel:
    """A plaintext channel (services talk on loopback, see docs/design.md, Security) whose calls
    carry `token`; without a token, calls go out bare and the service refuses them."""
    interceptors = [BearerToken(token)] if token else None
    return grpc.aio.insecure_channel(address, options=options, interceptors=interceptors)


def process_token() -> str:
    """The token this process presents to the other services (`CMS_SERVICE_TOKEN`, or the file
    `CMS_SERVICE_TOKEN_FILE` names)."""
    return load_settings().service_token


class Channels:
    """One channel per address, opened on first use (inside the worker's event loop, which a
    grpc.aio channel belongs to) and closed together when the worker stops. Every call carries
    this process's token (`CMS_SERVICE_TOKEN` unless given)."""

    def __init__(self, token: str | None = None) -> None:
        self._by_address: dict[str, grpc.aio.Channel] = {}
        self._token = process_token() if token is None else token

    def to(self, address: str) -> grpc.aio.Channel:
        channel = self._by_address.get(address)
        if channel is None:
            channel = self._by_address[address] = channel_with_token(address, self._token, options=BALANCED)
        return channel

    async def close(self) -> None:
        channels, self._by_address = list(self._by_address.values()), {}
        for channel in channels:
            await channel.close()


class ServiceClient(Generic[StubT]):
    """One service at one address, e.g. `ServiceClient("payments", address, PaymentsServiceStub,
    channels)`; activities call `await client.call(client.stub.ChargePeriod, request)`."""

    def __init__(self, service: str, address: str, stub_type: Callable[[grpc.aio.Channel], StubT],
                 channels: Channels, error_types: Mapping[grpc.StatusCode, str] | None = None):
        self.service = service
        self.address = address
        self._stub_type = stub_type
        self._channels = channels
        self._error_types = dict(error_types or {})
        self._stub: StubT | None = None

    @property
    def stub(self) -> StubT:
        if self._stub is None:
            self._stub = self._stub_type(self._channels.to(self.address))
        return self._stub

    async def call(self, method: Callable[..., Any], request: Any,
                   timeout_seconds: float = CALL_TIMEOUT_SECONDS) -> Any:
        """Calls `method` (an RPC of `self.stub`); a failure is an ApplicationError, non-retryable
        exactly when its status code is in NON_RETRYABLE_CODES. A longer deadline is for an RPC
        whose activity allows for it (the ledger-wide reconciliation)."""
        try:
            return await method(request, timeout=timeout_seconds)
        except grpc.aio.AioRpcError as error:
            raise application_error(self.service, error, self._error_types) from None
