"""Signed-in caseworkers: a server-side session per sign-in, named by an unguessable id in an
HttpOnly, SameSite=Lax cookie (Secure under TLS). The token the services verify stays on the
server; the browser holds only the session id. Each session has its own CSRF token, which every
form carries and every POST must return.

Sessions live in this process's memory: a console restart signs everyone out, and more than one
console instance needs sticky sessions (or a shared store) in front of them.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

SESSION_COOKIE = "cms_console_session"
# Before sign-in there is no session: the sign-in form's CSRF token is a double-submit cookie.
SIGN_IN_COOKIE = "cms_console_sign_in"


@dataclass(frozen=True)
class Session:
    session_id: str
    staff_id: str
    role: str
    token: str
    csrf_token: str
    expires_at: float


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def same_secret(given: str, expected: str) -> bool:
    """Constant-time comparison, so a wrong CSRF token's timing says nothing about the right one."""
    return bool(given) and bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


class SessionStore:
    def __init__(self, lifetime_seconds: float, clock: Callable[[], float] = time.time):
        self._sessions: dict[str, Session] = {}
        self._lifetime = lifetime_seconds
        self._clock = clock

    def create(self, staff_id: str, role: str, token: str) -> Session:
        self._forget_expired()
        session = Session(new_secret(), staff_id, role, token, new_secret(), self._clock() + self._lifetime)
        self._sessions[session.session_id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        session = self._sessions.get(session_id or "")
        if session is None:
            return None
        if session.expires_at <= self._clock():
            del self._sessions[session.session_id]
            return None
        return session

    def end(self, session_id: str | None) -> None:
        self._sessions.pop(session_id or "", None)

    def _forget_expired(self) -> None:
        now = self._clock()
        for session_id in [key for key, session in self._sessions.items() if session.expires_at <= now]:
            del self._sessions[session_id]
