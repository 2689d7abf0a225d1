"""The gate in front of every service: verifies the caller's token and applies the access table
(services/common/access.py) before the handler runs, so a refused call changes nothing.

Refusals, each with one line saying which:
- UNAUTHENTICATED: no token, an expired or badly signed one, or one with an unknown role;
- PERMISSION_DENIED: a token meant for another service, a role the RPC does not admit, a party
  acting on someone else's case, or a request naming a caller other than the token's subject.

Handlers read the verified caller with `current_caller()`. Health and reflection stay open.
"""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import grpc

from cms.auth import Caller, TokenRefused, TokenVerifier
from services.common.access import OPEN_SERVICES, RULES, Access

# Whether a party (second argument) is a party of a case (first): the owning service's own record.
PartyCheck = Callable[[str, str], Awaitable[bool]]

_CALLER: contextvars.ContextVar[Caller | None] = contextvars.ContextVar("cms_caller", default=None)


def current_caller() -> Caller | None:
    """The verified caller of the RPC being handled (None outside one)."""
    return _CALLER.get()


def bearer_token(metadata: Sequence[tuple[str, Any]] | None) -> str:
    for key, value in metadata or ():
        if key == "authorization":
            text = value.decode() if isinstance(value, bytes) else str(value)
            scheme, _, token = text.partition(" ")
            return token.strip() if scheme.lower() == "bearer" else ""
    return ""


class AuthInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, service: str, verifier: TokenVerifier, is_party: PartyCheck | None = None,
                 rules: Mapping[str, Mapping[str, Access]] = RULES):
        self._service = service
        self._verifier = verifier
        self._is_party = is_party
        self._rules = rules

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None or details.method.startswith(OPEN_SERVICES):
            return handler
        method = details.method
        token = bearer_token(details.invocation_metadata)
        rule = self._rules.get(method, {})
        name = method.rsplit("/", 1)[-1]
        gate = self

        if handler.unary_unary is None:  # every RPC of the platform is unary; anything else stays shut
            async def shut(request: Any, context: grpc.aio.ServicerContext) -> Any:
                await context.abort(grpc.StatusCode.PERMISSION_DENIED, f"{name} has no access rule")
                yield  # a stream handler is a generator

            return grpc.unary_stream_rpc_method_handler(shut)
        inner = handler.unary_unary

        async def guarded(request: Any, context: grpc.aio.ServicerContext) -> Any:
            try:
                caller = gate._verifier.verify(token, gate._service)
            except TokenRefused as refused:
                code = (grpc.StatusCode.UNAUTHENTICATED if refused.unauthenticated
                        else grpc.StatusCode.PERMISSION_DENIED)
                await context.abort(code, str(refused))
            access = rule.get(caller.role)
            if access is None:
                await context.abort(grpc.StatusCode.PERMISSION_DENIED, f"role {caller.role} may not call {name}")
                return None  # abort raises; this line is for the type checker
            problem = await gate._refusal(access, caller, request)
            if problem:
                await context.abort(grpc.StatusCode.PERMISSION_DENIED, problem)
            reset = _CALLER.set(caller)
            try:
                return await inner(request, context)
            finally:
                _CALLER.reset(reset)

        return grpc.unary_unary_rpc_method_handler(
            guarded, request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    async def _refusal(self, access: Access, caller: Caller, request: Any) -> str:
        """Why `caller` may not make this `request` under `access` ("" when it may). Fills the
        caller fields left empty with the subject."""
        for field, wanted in access.requires:
            if getattr(request, field) != wanted:
                return f"role {caller.role} may not set {field} to {getattr(request, field)!r}"
        for field in access.binds:
            value = getattr(request, field)
            if value and value != caller.subject:
                return f"{field} {value!r} is not the caller ({caller.subject})"
            if not value and field in access.fills:
                setattr(request, field, caller.subject)
        if access.own_case:
            case_id = getattr(request, "case_id", "")
            if not case_id or self._is_party is None or not await self._is_party(case_id, caller.subject):
                return f"{caller.subject} is not a party of case {case_id!r}"
        return ""
