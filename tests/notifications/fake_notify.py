"""A local stand-in for GOV.UK Notify's API (v2), on 127.0.0.1, for tests and the bench.

It speaks Notify's shapes: a JWT bearer token signed with the API key's secret (iss = service
id), `POST /v2/notifications/{email,sms,letter}` answering 201 with the notification, `GET
/v2/notifications/<id>` and `GET /v2/notifications?reference=`, and Notify's error body
`{"status_code": n, "errors": [{"error": ..., "message": ...}]}` for a bad token (403), a
validation error (400) and a rate limit (429). `mode` makes it answer with one of those errors.
It does not de-duplicate, like Notify: a reference sent twice is two notifications.
"""

from __future__ import annotations

import base64
import json
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import jwt

SERVICE_ID = "26785a09-ab16-4eb0-8407-a37497a57506"
SECRET = "3d844edf-8d35-48ac-975b-e847b4f122b0"
API_KEY = f"cms-test-{SERVICE_ID}-{SECRET}"
WRONG_KEY = f"cms-test-{SERVICE_ID}-{uuid.UUID(int=1)}"


@dataclass
class FakeNotifyState:
    mode: str = "ok"                       # ok | validation | rate-limit | down
    notifications: dict[str, dict[str, Any]] = field(default_factory=dict)
    sends: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    status_for_new: str = "created"

    def by_reference(self, reference: str) -> list[dict[str, Any]]:
        with self.lock:
            return [n for n in self.notifications.values() if n["reference"] == reference]


def _error(status: int, kind: str, message: str) -> tuple[int, dict[str, Any]]:
    return status, {"status_code": status, "errors": [{"error": kind, "message": message}]}


class _Handler(BaseHTTPRequestHandler):
    state: FakeNotifyState

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read results, not logs
        pass

    def _authorised(self) -> tuple[int, dict[str, Any]] | None:
        header = self.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ").strip()
        try:
            claims = jwt.decode(token, SECRET, algorithms=["HS256"], options={"require": ["iss", "iat"]})
        except jwt.PyJWTError as error:
            return _error(403, "AuthError", f"Invalid token: {type(error).__name__}")
        if claims.get("iss") != SERVICE_ID:
            return _error(403, "AuthError", "Invalid token: service not found")
        return None

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        refused = self._authorised()
        if refused:
            self._answer(*refused)
            return
        url = urlparse(self.path)
        if url.path == "/v2/notifications":
            reference = parse_qs(url.query).get("reference", [""])[0]
            found = self.state.by_reference(reference) if reference else list(self.state.notifications.values())
            self._answer(200, {"notifications": found, "links": {"current": self.path}})
            return
        notification_id = url.path.rsplit("/", 1)[-1]
        with self.state.lock:
            held = self.state.notifications.get(notification_id)
        if held is None:
            self._answer(*_error(404, "NoResultFound", "No result found"))
            return
        self._answer(200, held)

    def do_POST(self) -> None:
        refused = self._authorised()
        length = int(self.headers.get("Content-Length") or 0)
        request = json.loads(self.rfile.read(length) or b"{}")
        if refused:
            self._answer(*refused)
            return
        if self.state.mode == "rate-limit":
            self._answer(*_error(429, "RateLimitError", "Exceeded rate limit for key type LIVE of 3000 requests per 60 seconds"))
            return
        if self.state.mode == "down":
            self._answer(*_error(500, "Exception", "Internal server error"))
            return
        kind = self.path.rsplit("/", 1)[-1]
        problem = self._validation_problem(kind, request)
        if problem:
            self._answer(*_error(400, "ValidationError", problem))
            return
        notification_id = str(uuid.uuid4())
        held = {"id": notification_id, "reference": request.get("reference"), "type": kind,
                "status": self.state.status_for_new, "template": {"id": request.get("template_id", "")}}
        with self.state.lock:
            self.state.notifications[notification_id] = held
            self.state.sends.append({"kind": kind, **request})
        self._answer(201, {"id": notification_id, "reference": request.get("reference"),
                           "uri": f"/v2/notifications/{notification_id}", "content": {}, "postage": "second"})

    def _validation_problem(self, kind: str, request: dict[str, Any]) -> str:
        if self.state.mode == "validation":
            return "phone_number Not a UK mobile number" if kind == "sms" else "template_id is not a valid UUID"
        if kind == "letter":
            content = request.get("content", "")
            if not request.get("reference"):
                return "reference is a required property"
            if not base64.b64decode(content).startswith(b"%PDF"):
                return "Letter content is not a valid PDF"
        return ""


class FakeNotify:
    """`with FakeNotify() as notify:` serves on 127.0.0.1 (a free port) until the block ends."""

    def __init__(self) -> None:
        self.state = FakeNotifyState()
        handler = type("Handler", (_Handler,), {"state": self.state})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        port = self._server.server_address[1]
        return f"http://127.0.0.1:{port}"

    def __enter__(self) -> FakeNotify:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
