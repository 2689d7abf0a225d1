"""HTTP `/encode` and `/decode` for the Temporal UI, per the Temporal codec server protocol: a POST
of `{"payloads": [...]}` (Payloads in protobuf JSON, data base64), answered in the same form.

Only the configured UI origin gets CORS headers, so no other web page can have a browser call it;
every call must carry one of the configured tokens: as a bearer token (the CLI, or a UI with
sign-in that passes its access token), or as the session cookie that signing in at /login with
the token sets (the UI's "Include cross-origin credentials" sends it); every decode is audited with who asked, for which namespace (and workflow,
when the request says), and when, never with the values. A body that cannot be read is refused
with 400 and nothing of it is logged: it may be a payload in clear.
"""

from __future__ import annotations

import binascii
import hmac
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import hdrs, web
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads
from temporalio.converter import PayloadCodec

from cms.payload_codec import PayloadKeyError

_ALLOWED_HEADERS = "Authorization, Content-Type, X-Namespace"
_MAX_BODY_BYTES = 8 * 1024 * 1024
SESSION_COOKIE = "cms_codec_session"
_SESSION_SECONDS = 8 * 3600
_LOGIN_FORM = """<!doctype html><title>Codec server sign-in</title>
<form method="post" action="/login"><p>{message}</p>
<label>Codec server token <input type="password" name="token" autofocus></label>
<button type="submit">Sign in</button></form>"""
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class BearerToken:
    """A token the server accepts, and the label the audit log records for whoever presents it."""

    label: str
    secret: str


def parse_tokens(setting: str) -> list[BearerToken]:
    """CMS_CODEC_SERVER_TOKEN: `secret`, or `label=secret,label=secret` (one per team or person,
    so the audit log says who). Empty secrets are dropped: an empty token never authenticates."""
    tokens = []
    for entry in filter(None, (part.strip() for part in setting.split(","))):
        label, separator, secret = entry.partition("=")
        if not separator:
            label, secret = "shared-token", entry
        if secret:
            tokens.append(BearerToken(label.strip() or "shared-token", secret))
    return tokens


class BadBody(ValueError):
    """The request body is not Payloads JSON. The message never quotes the body."""


def read_payloads(raw: bytes) -> Payloads:
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadBody("the body is not JSON") from None
    if not isinstance(document, dict) or not isinstance(document.get("payloads"), list):
        raise BadBody('the body must be an object with a "payloads" list')
    try:
        return json_format.ParseDict(document, Payloads())
    except (json_format.ParseError, binascii.Error, ValueError, TypeError):
        raise BadBody("the payloads are not Temporal Payloads in protobuf JSON") from None


def build_app(codec: PayloadCodec, tokens: list[BearerToken], ui_origin: str, audit: Any) -> web.Application:
    """`audit`: a structlog logger; it gets one `payloads_decoded` line a decode, and refusals."""
    if not tokens:
        raise ValueError("the codec server needs at least one bearer token (CMS_CODEC_SERVER_TOKEN)")

    def with_cors(request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
        if request.headers.get(hdrs.ORIGIN) == ui_origin:
            response.headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = ui_origin
            response.headers[hdrs.ACCESS_CONTROL_ALLOW_METHODS] = "POST"
            response.headers[hdrs.ACCESS_CONTROL_ALLOW_HEADERS] = _ALLOWED_HEADERS
            response.headers[hdrs.ACCESS_CONTROL_ALLOW_CREDENTIALS] = "true"
            response.headers[hdrs.VARY] = "Origin"
        return response

    sessions: dict[str, tuple[BearerToken, float]] = {}  # cookie value -> who, until; lost on restart

    def token_for(presented: str) -> BearerToken | None:
        # Every token is compared, in constant time, so timing tells nothing of which matched.
        matches = [t for t in tokens if hmac.compare_digest(t.secret.encode(), presented.strip().encode())]
        return matches[0] if matches else None

    def caller(request: web.Request) -> BearerToken | None:
        scheme, _, presented = request.headers.get(hdrs.AUTHORIZATION, "").partition(" ")
        if scheme.lower() == "bearer" and presented:
            return token_for(presented)
        who, until = sessions.get(request.cookies.get(SESSION_COOKIE, ""), (None, 0.0))
        return who if time.monotonic() < until else None

    async def login_form(request: web.Request) -> web.StreamResponse:
        return web.Response(text=_LOGIN_FORM.format(message="Sign in to see decoded payloads in the Temporal UI."),
                            content_type="text/html")

    async def login(request: web.Request) -> web.StreamResponse:
        presented = str((await request.post()).get("token", ""))
        who = token_for(presented) if presented else None
        if who is None:
            audit.warning("codec_sign_in_refused", remote=request.remote)
            return web.Response(text=_LOGIN_FORM.format(message="That token is not valid."),
                                content_type="text/html", status=401)
        session = secrets.token_urlsafe(32)
        sessions[session] = (who, time.monotonic() + _SESSION_SECONDS)
        audit.info("codec_signed_in", who=who.label)
        response = web.Response(status=303, headers={hdrs.LOCATION: ui_origin})
        # Strict: sent only when the page asking is on the same site (the UI on localhost).
        response.set_cookie(SESSION_COOKIE, session, max_age=_SESSION_SECONDS, httponly=True, samesite="Strict")
        return response

    def endpoint(direction: str) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            namespace = request.headers.get("X-Namespace", "")
            who = caller(request)
            if who is None:
                audit.warning("codec_call_refused", reason="no valid bearer token", direction=direction,
                              namespace=namespace, remote=request.remote)
                return with_cors(request, web.json_response({"error": "a valid bearer token is required"}, status=401))
            try:
                payloads = read_payloads(await request.read())
                coded = await (codec.decode if direction == "decode" else codec.encode)(payloads.payloads)
            except BadBody as error:
                audit.warning("codec_call_refused", reason=str(error), direction=direction, who=who.label,
                              namespace=namespace)
                return with_cors(request, web.json_response({"error": str(error)}, status=400))
            except PayloadKeyError as error:  # names the key id only, never the payload
                audit.warning("codec_call_refused", reason=str(error), direction=direction, who=who.label,
                              namespace=namespace)
                return with_cors(request, web.json_response({"error": str(error)}, status=422))
            if direction == "decode":
                audit.info("payloads_decoded", who=who.label, namespace=namespace,
                           workflow_id=request.headers.get("X-Workflow-Id") or request.query.get("workflowId"),
                           referer=request.headers.get(hdrs.REFERER), payload_count=len(coded))
            body = json_format.MessageToDict(Payloads(payloads=coded))
            return with_cors(request, web.json_response(body))
        return handle

    async def preflight(request: web.Request) -> web.StreamResponse:
        # Browsers send no credentials on a preflight: it only learns whether the origin may ask.
        return with_cors(request, web.Response(status=204))

    app = web.Application(client_max_size=_MAX_BODY_BYTES)
    # The protocol: only the last part of the path decides, so the server can sit under a prefix
    # (such as /{namespace}/encode).
    for direction in ("encode", "decode"):
        app.router.add_route("POST", f"/{direction}", endpoint(direction))
        app.router.add_route("POST", f"/{{prefix:.*}}/{direction}", endpoint(direction))
    app.router.add_route("OPTIONS", "/{tail:.*}", preflight)
    app.router.add_get("/login", login_form)
    app.router.add_post("/login", login)
    return app
