"""Callers for a throwaway local stack (the scenario harness, tests of behaviour): each call
carries a token for a caller the access table (services/common/access.py) admits to that RPC,
named as the request names its caller (its staff_id, actor, reviewer, ...), as the real caller's
token would be. Only for stacks whose signing key this process made itself; a real deployment's
callers get their tokens from the identity provider."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from cms.auth import ALL_AUDIENCES, issue_token
from services.common.access import RULES, Access

# The roles tried for an RPC, most capable first, so a call is admitted when any role may make it
# (a senior caseworker before a caseworker: it may remove a profile too).
PREFERENCE = ("service", "bank_feed", "senior_caseworker", "caseworker", "operations", "parent")
DEFAULT_SUBJECTS = {"service": "worker", "bank_feed": "local-bank", "senior_caseworker": "scw-local",
                    "caseworker": "cw-local", "operations": "ops-local", "parent": "party-local"}


def caller_for(method: str, request: Any) -> tuple[str, str]:
    """(subject, role) of a caller the access table admits to `method` with `request`."""
    rule = RULES.get(method, {})
    for role in PREFERENCE:
        access = rule.get(role)
        if access is not None and _admits(access, request):
            named = [getattr(request, field) for field in access.binds if getattr(request, field)]
            return (named[0] if named else DEFAULT_SUBJECTS[role]), role
    return DEFAULT_SUBJECTS["service"], "service"   # no rule: the service refuses it, as it should


def _admits(access: Access, request: Any) -> bool:
    if access.own_case:
        return False  # a parent's token needs a real party of the case: name it explicitly
    if any(getattr(request, field) != wanted for field, wanted in access.requires):
        return False
    named = {getattr(request, field) for field in access.binds if getattr(request, field)}
    return len(named) <= 1


class LocalCallerTokens(grpc.aio.UnaryUnaryClientInterceptor):
    """Signs each call's token with `signing_key`: for the caller `fixed` (subject, role), or else
    for the caller `caller_for` picks."""

    def __init__(self, signing_key: str, fixed: tuple[str, str] | None = None,
                 audiences: tuple[str, ...] = ALL_AUDIENCES):
        self._key = signing_key
        self._fixed = fixed
        self._audiences = audiences
        self._cache: dict[tuple[str, str], str] = {}

    async def intercept_unary_unary(self, continuation: Callable[..., Awaitable[Any]],
                                    details: grpc.aio.ClientCallDetails, request: Any) -> Any:
        method = details.method.decode() if isinstance(details.method, bytes) else details.method
        subject, role = self._fixed or caller_for(method, request)
        bearer = self._cache.get((subject, role))
        if bearer is None:
            bearer = self._cache[(subject, role)] = issue_token(self._key, subject, role, self._audiences)
        metadata = [*(details.metadata or ()), ("authorization", f"Bearer {bearer}")]
        return await continuation(grpc.aio.ClientCallDetails(details.method, details.timeout, metadata,
                                                             details.credentials, details.wait_for_ready), request)


def local_channel(address: str, signing_key: str, fixed: tuple[str, str] | None = None,
                  options: list[tuple[str, Any]] | None = None) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(address, options=options, interceptors=[LocalCallerTokens(signing_key, fixed)])
