"""Tokens for the tests, from one signing key made for the test session.

Importing this module (tests/conftest.py does) publishes the key's JWKS to every service a test
starts (`CMS_AUTH_JWKS`), gives the worker and the case API their service token
(`CMS_SERVICE_TOKEN`) and makes the key the dev issuer for cmsctl (`CMS_DEV_ISSUER_KEY`).

- `token(subject, role)`: a token as the identity provider would issue it.
- `caller_channel(address)`: a channel for tests of behaviour, not of access: each call carries a
  token for a caller the access table (services/common/access.py) admits to that RPC, named as the
  request names its caller (its staff_id, actor, reviewer, ...), as the real caller's would be.
  The refusals themselves are tested with explicit tokens (tests/security/).
- `caller_channel(address, role=..., subject=...)`: every call as that one caller.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc

from cms.auth import ALL_AUDIENCES, ensure_dev_keys, issue_token
from services.common.access import RULES, Access

_FOLDER = Path(tempfile.mkdtemp(prefix="cms-test-auth-"))
SIGNING_KEY_FILE, JWKS_FILE = ensure_dev_keys(_FOLDER)
SIGNING_KEY = SIGNING_KEY_FILE.read_text()

# The roles tried for an RPC, most capable first, so a behaviour test's call is admitted when any
# role may make it (a senior caseworker before a caseworker: it may remove a profile too).
_PREFERENCE = ("service", "bank_feed", "senior_caseworker", "caseworker", "operations", "parent")
DEFAULT_SUBJECTS = {"service": "worker", "bank_feed": "test-bank", "senior_caseworker": "scw-test",
                    "caseworker": "cw-test", "operations": "ops-test", "parent": "party-test"}


def token(subject: str, role: str, audiences: tuple[str, ...] = ALL_AUDIENCES, lifetime_seconds: int = 3600,
          now: float | None = None) -> str:
    return issue_token(SIGNING_KEY, subject, role, audiences, lifetime_seconds, now)


def install_environment() -> None:
    os.environ["CMS_AUTH_JWKS"] = str(JWKS_FILE)
    os.environ["CMS_SERVICE_TOKEN"] = token("worker", "service", lifetime_seconds=86400)
    os.environ["CMS_DEV_ISSUER_KEY"] = str(SIGNING_KEY_FILE)


def caller_for(method: str, request: Any) -> tuple[str, str]:
    """(subject, role) of a caller the access table admits to `method` with `request`."""
    rule = RULES.get(method, {})
    for role in _PREFERENCE:
        access = rule.get(role)
        if access is not None and _admits(access, request):
            named = [getattr(request, field) for field in access.binds if getattr(request, field)]
            return (named[0] if named else DEFAULT_SUBJECTS[role]), role
    return DEFAULT_SUBJECTS["service"], "service"   # no rule: the service refuses it, as it should


def _admits(access: Access, request: Any) -> bool:
    if access.own_case:
        return False  # a parent's token needs a real party of the case: tests name it explicitly
    if any(getattr(request, field) != wanted for field, wanted in access.requires):
        return False
    named = {getattr(request, field) for field in access.binds if getattr(request, field)}
    return len(named) <= 1


class _Tokens(grpc.aio.UnaryUnaryClientInterceptor):
    def __init__(self, fixed: tuple[str, str] | None):
        self._fixed = fixed
        self._cache: dict[tuple[str, str], str] = {}

    async def intercept_unary_unary(self, continuation: Callable[..., Awaitable[Any]],
                                    details: grpc.aio.ClientCallDetails, request: Any) -> Any:
        method = details.method.decode() if isinstance(details.method, bytes) else details.method
        subject, role = self._fixed or caller_for(method, request)
        bearer = self._cache.get((subject, role))
        if bearer is None:
            bearer = self._cache[(subject, role)] = token(subject, role)
        metadata = [*(details.metadata or ()), ("authorization", f"Bearer {bearer}")]
        return await continuation(grpc.aio.ClientCallDetails(details.method, details.timeout, metadata,
                                                             details.credentials, details.wait_for_ready), request)


def caller_channel(address: str, role: str | None = None, subject: str | None = None) -> grpc.aio.Channel:
    fixed = (subject or DEFAULT_SUBJECTS[role], role) if role else None
    return grpc.aio.insecure_channel(address, interceptors=[_Tokens(fixed)])


install_environment()
