"""Tokens for the tests, from one signing key made for the test session.

`install_environment()` (tests/conftest.py calls it) publishes the key's JWKS to every service a test
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
from pathlib import Path
from typing import Any

import grpc

from cms.auth import ALL_AUDIENCES, ensure_dev_keys, issue_token
from cms.local_callers import DEFAULT_SUBJECTS, local_channel

_FOLDER = Path(tempfile.mkdtemp(prefix="cms-test-auth-"))
SIGNING_KEY_FILE, JWKS_FILE = ensure_dev_keys(_FOLDER)
SIGNING_KEY = SIGNING_KEY_FILE.read_text()


def token(subject: str, role: str, audiences: tuple[str, ...] = ALL_AUDIENCES, lifetime_seconds: int = 3600,
          now: float | None = None) -> str:
    return issue_token(SIGNING_KEY, subject, role, audiences, lifetime_seconds, now)


def install_environment() -> None:
    os.environ["CMS_AUTH_JWKS"] = str(JWKS_FILE)
    os.environ["CMS_SERVICE_TOKEN"] = token("worker", "service", lifetime_seconds=86400)
    os.environ["CMS_DEV_ISSUER_KEY"] = str(SIGNING_KEY_FILE)


def caller_channel(address: str, role: str | None = None, subject: str | None = None,
                   options: list[tuple[str, Any]] | None = None) -> grpc.aio.Channel:
    fixed = (subject or DEFAULT_SUBJECTS[role], role) if role else None
    return local_channel(address, SIGNING_KEY, fixed, options)

