"""Case ids from the client's idempotency key, keyed with a server secret.

The same key must always name the same case, so a retried CreateApplication finds the case it
made. But a client may use anything as its key, a National Insurance number among them, and a
case id is shown everywhere (the Temporal UI, letters, logs): a plain hash of the key could be
reversed by hashing every possible NI number. An HMAC under a secret only the case API holds
cannot be: without the secret, the id says nothing about the key.

The secret comes from CMS_CASE_ID_SECRET, else the file CMS_CASE_ID_SECRET_FILE (default
.data/case-id-secret, which `make run` creates once, owner-only). It must never change while
cases exist: a changed secret would give a retried request a new id (the read model still finds
the case by its key, but demo tooling that derives ids would not).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path

from cms.config import Settings
from cms.errors import StartupError
from cms.payload_codec import write_owner_only

_ID_HEX_DIGITS = 15
_MIN_SECRET_CHARACTERS = 32


def case_id_for(idempotency_key: str, secret: bytes) -> str:
    """Deterministic for one secret, and free of personal data: "c" and 15 hex digits."""
    digest = hmac.new(secret, idempotency_key.encode(), hashlib.sha256).hexdigest()
    return "c" + digest[:_ID_HEX_DIGITS]


def case_id_secret(settings: Settings) -> bytes:
    """The configured secret; a StartupError naming the setting when it is missing or too short."""
    if settings.case_id_secret:
        return _checked(settings.case_id_secret, "CMS_CASE_ID_SECRET")
    path = settings.case_id_secret_file
    if path is None or not path.is_file():
        raise StartupError(f"the case id secret file CMS_CASE_ID_SECRET_FILE={path} does not exist; "
                           "`make run` creates a development one, or set CMS_CASE_ID_SECRET(_FILE)")
    return _checked(path.read_text().strip(), f"CMS_CASE_ID_SECRET_FILE={path}")


def _checked(secret: str, setting: str) -> bytes:
    if len(secret) < _MIN_SECRET_CHARACTERS:
        raise StartupError(f"{setting}: the case id secret must be at least {_MIN_SECRET_CHARACTERS} characters")
    return secret.encode()


def write_dev_case_id_secret(path: Path) -> bool:
    """Creates a fresh secret, owner-only, unless one is there (its ids name existing cases)."""
    if path.exists():
        return False
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_owner_only(path, secrets.token_urlsafe(32))
    return True
