"""Caseworker requests made idempotent with Temporal update ids.

A caseworker's click can arrive twice (a double click, a browser or client retry after a
timeout). The request's idempotency key becomes the update's id, and the Temporal server applies
an update id once per workflow run, answering a repeat with the first outcome. The action is
part of the id, so one key reused for a different action is a different request.
"""

from __future__ import annotations

from services.common.errors import FieldViolations

MAX_KEY_LENGTH = 200


def update_id_for(action: str, idempotency_key: str) -> str | None:
    """The update id for a request's key; None without a key (every call is then its own request)."""
    if not idempotency_key:
        return None
    if len(idempotency_key) > MAX_KEY_LENGTH or not idempotency_key.strip():
        raise FieldViolations([("idempotency_key", f"at most {MAX_KEY_LENGTH} characters, not blank")])
    return f"{action}/{idempotency_key}"
