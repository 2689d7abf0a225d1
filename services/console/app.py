"""The console's web application (Starlette): routes, sign-in, CSRF, and turning the services'
answers into pages.

Every page but sign-in needs a session (a request without one is sent to sign in). Every POST
carries the session's CSRF token; a missing or wrong one is refused with 403 and nothing is sent.
Before any call the console checks the access table (services/common/access.py) for the person's
role, so an action the role may not take is a 403 page; the service checks again, and a refusal it
returns is shown the same way. Bad input re-renders the form with the GOV.UK error summary and
nothing is applied. Each action form carries an idempotency key made when the form was drawn, so
a double click (or a resubmitted page) is applied once and shows the first outcome.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote

import grpc
import jinja2
import structlog
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from cms.auth import TokenRefused, dev_issuer_token
from cms.log import configure_logging
from services.common.access import RULES
from services.common.errors import field_violations_of
from services.console import forms, views
from services.console.assets import GOVUK_URL, STYLESHEET, AssetsMissing, govuk_frontend_version, static_mounts
from services.console.backend import Backend, GrpcBackend
from services.console.config import HERE, ConsoleSettings, load_console_settings
from services.console.sessions import SESSION_COOKIE, SIGN_IN_COOKIE, Session, SessionStore, new_secret, same_secret

log = structlog.get_logger("console")

_CASE = "/cms.case.v1.CaseService/"
_PAYMENTS = "/cms.payments.v1.PaymentsService/"
_NOTIFICATIONS = "/cms.notifications.v1.NotificationsService/"
# Who may sign in: staff and operations. Parents have their own service; processes are not people.
CONSOLE_ROLES = (("caseworker", "Caseworker"), ("senior_caseworker", "Senior caseworker"), ("operations", "Operations"))
STAFF_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
STAFF_FIELD = forms.Field("staff_id", "Staff ID", missing="Enter your staff ID")
ROLE_FIELD = forms.Field("role", "Your role", "radios", missing="Select your role", options=CONSOLE_ROLES)
MAX_KEY = 200
# What the console tells the case API a plain case-page read is for (no protected field is shown).
CASE_PAGE_READ = "case page"


def may(role: str, rpc: str) -> bool:
    """The access table's answer for `role` calling `rpc` (the service checks again)."""
    return role in RULES.get(rpc, {})


# --- responses --------------------------------------------------------------------------------

class Pages:
    def __init__(self, settings: ConsoleSettings):
        environment = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                                         undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
        self.templates = Jinja2Templates(env=environment)
        self.settings = settings

    def render(self, request: Request, template: str, status_code: int = 200, session: Session | None = None,
               **context: Any) -> HTMLResponse:
        context.setdefault("errors", [])
        context.setdefault("nav", "")
        return self.templates.TemplateResponse(request, template, {
            "session": session, "csrf_token": session.csrf_token if session else "",
            "may_act": bool(session) and may(session.role, _CASE + "SignalCase") if session else False,
            **context}, status_code=status_code)

    def forbidden(self, request: Request, session: Session | None, what: str) -> HTMLResponse:
        return self.render(request, "forbidden.html", 403, session, what=what)

    def problem(self, request: Request, session: Session | None, status: int, title: str, text: str) -> HTMLResponse:
        return self.render(request, "problem.html", status, session, title=title, text=text)


def sign_in_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/sign-in?next={quote(target, safe='')}", status_code=303)


def safe_next(target: str) -> str:
    """Only a path on this console: never another site (an open redirect)."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


class ServiceRefused(Exception):
    """A service refused the person (PERMISSION_DENIED) or the session's token (UNAUTHENTICATED)."""


@dataclass
class Console:
    settings: ConsoleSettings
    backend: Backend
    sessions: SessionStore
    pages: Pages

    # --- sessions -------------------------------------------------------------------------
    def session_of(self, request: Request) -> Session | None:
        return self.sessions.get(request.cookies.get(SESSION_COOKIE))

    def secure(self, request: Request) -> bool:
        return self.settings.secure_cookies or request.url.scheme == "https"

    async def form_of(self, request: Request, session: Session) -> Mapping[str, str] | None:
        """The posted form, or None when its CSRF token is not the session's."""
        form = await request.form()
        data = {key: value for key, value in form.items() if isinstance(value, str)}
        return data if same_secret(data.get("csrf_token", ""), session.csrf_token) else None

    def csrf_refused(self, request: Request, session: Session | None) -> HTMLResponse:
        log.warning("console_csrf_refused", path=request.url.path)
        return self.pages.problem(request, session, 403, "This form cannot be sent",
                                  "The form was not sent from this console's page, or it has expired. "
                                  "Go back, reload the page and try again.")

    async def calling(self, request: Request, session: Session, call: Awaitable[Any]) -> Any:
        """Awaits a service call; a refusal of the person becomes ServiceRefused."""
        try:
            return await call
        except grpc.aio.AioRpcError as error:
            if error.code() in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED):
                if error.code() == grpc.StatusCode.UNAUTHENTICATED:
                    self.sessions.end(session.session_id)
                raise ServiceRefused(error.details() or error.code().name) from None
            raise

    def failure_page(self, request: Request, session: Session, error: Exception) -> Response:
        if isinstance(error, ServiceRefused):
            if self.session_of(request) is None:  # the token was refused: sign in again
                return sign_in_redirect(request)
            return self.pages.forbidden(request, session, str(error))
        if isinstance(error, grpc.aio.AioRpcError):
            code = error.code()
            if code == grpc.StatusCode.NOT_FOUND:
                return self.pages.problem(request, session, 404, "Page not found", error.details() or "")
            if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                return self.pages.problem(request, session, 503, "Sorry, the service is unavailable",
                                          "A service the console needs did not answer. Try again in a few minutes.")
            log.error("console_call_failed", code=code.name, details=error.details())
            return self.pages.problem(request, session, 500, "Sorry, there is a problem with the service",
                                      "The request failed. Try again later.")
        raise error

    # --- sign-in ------------------------------------------------------------------------
    async def sign_in(self, request: Request) -> Response:
        target = safe_next(request.query_params.get("next", "/"))
        if request.method == "GET":
            return self._sign_in_page(request, target, {}, [])
        form = await request.form()
        data = {key: value for key, value in form.items() if isinstance(value, str)}
        if not same_secret(data.get("csrf_token", ""), request.cookies.get(SIGN_IN_COOKIE, "")):
            return self.csrf_refused(request, None)
        if not self.settings.dev_sign_in:
            return self.pages.problem(request, None, 403, "Sign in through your identity provider",
                                      "This console has no dev sign-in.")
        staff_id, role = data.get("staff_id", "").strip(), data.get("role", "")
        errors = []
        if not staff_id:
            errors.append(("staff_id", "Enter your staff ID"))
        elif not STAFF_ID.match(staff_id):
            errors.append(("staff_id", "Staff ID must be letters, numbers, hyphens or underscores, up to 64"))
        if role not in {key for key, _ in CONSOLE_ROLES}:
            errors.append(("role", "Select your role"))
        if errors:
            return self._sign_in_page(request, target, data, errors, status_code=400)
        try:
            token = dev_issuer_token(self.settings.platform.dev_issuer_key, staff_id, role)
        except TokenRefused as refused:
            return self.pages.problem(request, None, 403, "You cannot sign in here", str(refused))
        session = self.sessions.create(staff_id, role, token)
        log.info("console_signed_in", staff_id=staff_id, role=role)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(SESSION_COOKIE, session.session_id, max_age=self.settings.session_seconds, httponly=True,
                            samesite="lax", secure=self.secure(request), path="/")
        response.delete_cookie(SIGN_IN_COOKIE, path="/sign-in")
        return response

    def _sign_in_page(self, request: Request, target: str, data: Mapping[str, str], errors: list[tuple[str, str]],
                      status_code: int = 200) -> Response:
        token = request.cookies.get(SIGN_IN_COOKIE) or new_secret()
        response = self.pages.render(request, "sign_in.html", status_code, None, target=target, data=data,
                                     errors=errors, staff_field=STAFF_FIELD, role_field=ROLE_FIELD, sign_in_token=token,
                                     dev_sign_in=self.settings.dev_sign_in)
        response.set_cookie(SIGN_IN_COOKIE, token, httponly=True, samesite="strict", secure=self.secure(request),
                            path="/sign-in")
        return response

    async def sign_out(self, request: Request) -> Response:
        session = self.session_of(request)
        if session is not None:
            data = await self.form_of(request, session)
            if data is None:
                return self.csrf_refused(request, session)
            self.sessions.end(session.session_id)
        response = RedirectResponse("/sign-in", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    # --- queues ---------------------------------------------------------------------------
    def temporal_link(self, session: Session) -> str:
        """The Temporal UI's address of a workflow, for the operations role only."""
        if session.role != "operations":
            return ""
        namespace = self.settings.platform.temporal_namespace
        return f"{self.settings.temporal_ui_url}/namespaces/{namespace}/workflows/{{workflow_id}}"

    async def queue_cases(self, request: Request, session: Session) -> Response:
        if not may(session.role, _CASE + "ListCases"):
            return self.pages.forbidden(request, session, "see the work queues")
        cases = await self.calling(request, session, self.backend.cases_needing_caseworker(session.token))
        teams = views.case_queue(cases, datetime.now(UTC), self.temporal_link(session))
        return self.pages.render(request, "queue_cases.html", session=session, nav="cases", teams=teams,
                                 may_open=may(session.role, _CASE + "GetCase"))

    async def queue_changes(self, request: Request, session: Session) -> Response:
        if not may(session.role, _CASE + "ListChanges"):
            return self.pages.forbidden(request, session, "see the work queues")
        changes = await self.calling(request, session, self.backend.list_changes(session.token, waiting_for_review_only=True))
        return self.pages.render(request, "queue_changes.html", session=session, nav="changes",
                                 rows=[views.change_row(change) for change in changes],
                                 may_open=may(session.role, _CASE + "GetCase"),
                                 may_review=may(session.role, _CASE + "ReviewChange"))

    async def queue_breaches(self, request: Request, session: Session) -> Response:
        if not may(session.role, _CASE + "ListChanges"):
            return self.pages.forbidden(request, session, "see the work queues")
        before = views.nearly_breached_before(datetime.now(UTC), self.settings.platform.seconds_per_day)
        changes = await self.calling(request, session, self.backend.list_changes(session.token, due_before=before))
        return self.pages.render(request, "queue_breaches.html", session=session, nav="breaches",
                                 rows=views.breach_rows(changes), may_open=may(session.role, _CASE + "GetCase"),
                                 nearly_days=views.NEARLY_BREACHED_DAYS)

    async def queue_suspense(self, request: Request, session: Session) -> Response:
        if not may(session.role, _PAYMENTS + "ListSuspense"):
            return self.pages.forbidden(request, session, "see suspense payments")
        items = await self.calling(request, session, self.backend.suspense(session.token))
        return self.pages.render(request, "queue_suspense.html", session=session, nav="suspense",
                                 rows=views.suspense_rows(items),
                                 may_assign=may(session.role, _PAYMENTS + "AssignSuspensePayment"))

    # --- the case page ----------------------------------------------------------------------
    async def case_page(self, request: Request, session: Session, reason: str = "", errors: list | None = None) -> Response:
        case_id = request.path_params["case_id"]
        if not may(session.role, _CASE + "GetCase"):
            link = self.temporal_link(session)
            return self.pages.render(request, "forbidden.html", 403, session, what="open a case's page",
                                     temporal_url=link.format(workflow_id=f"case-{case_id}") if link else "")
        show_protected = bool(reason)
        case = await self.calling(request, session, self.backend.get_case(
            session.token, case_id, session.staff_id, reason or CASE_PAGE_READ, withhold_protected=not show_protected))
        unavailable: list[str] = []
        token = session.token
        changes, timeline, balance, statement, letters, risk = await asyncio.gather(
            optional("changes", self.backend.list_changes(token, case_id=case_id, include_cleared=True), unavailable),
            optional("timeline", self.backend.timeline(token, case_id), unavailable),
            optional("balance", self.backend.balance(token, case_id), unavailable),
            optional("statement", self.backend.statement(token, case_id), unavailable),
            optional("letters", self.backend.letters(token, case_id), unavailable),
            optional("risk band", self.backend.risk(token, case_id), unavailable))
        view = views.case_view(case, datetime.now(UTC), changes or [], timeline or [], protected_shown=show_protected)
        roles = {case.receiving_parent.party_id: "Receiving parent", case.paying_parent.party_id: "Paying parent"}
        view = views.CaseView(**{
            **view.__dict__,
            "balance": views.balance_rows(balance) if balance is not None else (),
            "statement": views.statement_rows(statement) if statement is not None else (),
            "letters": views.letter_rows(letters or [], roles),
            "risk": views.risk_view(risk) if risk is not None else None,
            "unavailable": tuple(unavailable)})
        link = self.temporal_link(session)
        return self.pages.render(request, "case.html", 400 if errors else 200, session, case=view,
                                 errors=errors or [], data={}, temporal_url=link.format(workflow_id=f"case-{case_id}") if link else "",
                                 may_review=may(session.role, _CASE + "ReviewChange"),
                                 may_print=may(session.role, _NOTIFICATIONS + "LetterPdf"))

    async def case_protected(self, request: Request, session: Session) -> Response:
        """The unredacted view: only with a reason, which the case API records with the read."""
        data = await self.form_of(request, session)
        if data is None:
            return self.csrf_refused(request, session)
        reason = data.get("reason", "").strip()
        if not reason:
            return await self.case_page(request, session, errors=[("reason", "Enter why you need to see the protected details")])
        if len(reason) > forms.MAX_TEXT:
            return await self.case_page(request, session, errors=[("reason", f"The reason must be {forms.MAX_TEXT} characters or fewer")])
        return await self.case_page(request, session, reason=reason)

    # --- actions ------------------------------------------------------------------------------
    async def action(self, request: Request, session: Session) -> Response:
        case_id, slug = request.path_params["case_id"], request.path_params["action"]
        form = forms.ACTION_FORMS.get(slug)
        if form is None:
            return self.pages.problem(request, session, 404, "Page not found", "There is no such action.")
        if not may(session.role, _CASE + "SignalCase"):
            return self.pages.forbidden(request, session, form.title.lower())
        if request.method == "GET":
            return self._action_page(request, session, form, case_id, {"idempotency_key": new_key()}, [])
        data = await self.form_of(request, session)
        if data is None:
            return self.csrf_refused(request, session)
        key = data.get("idempotency_key", "")
        payload, errors = forms.validate(form, data)
        if not key or len(key) > MAX_KEY:
            return self.pages.problem(request, session, 400, "This form cannot be sent",
                                      "The form is missing its request key. Go back, reload the page and try again.")
        if errors:
            return self._action_page(request, session, form, case_id, data, errors)
        try:
            reply = await self.calling(request, session, self.backend.signal_case(session.token, case_id, form.action, payload, key))
        except grpc.aio.AioRpcError as error:
            refusal = refusal_errors(error, [field.anchor for field in form.fields])
            if refusal is None:
                raise
            return self._action_page(request, session, form, case_id, data, refusal)
        log.info("console_action", case_id=case_id, action=form.action, staff_id=session.staff_id)
        return self.pages.render(request, "outcome.html", session=session, case_id=case_id, title=form.title,
                                 outcome=views.words(reply.outcome) if reply.outcome else "Done")

    def _action_page(self, request: Request, session: Session, form: forms.ActionForm, case_id: str,
                     data: Mapping[str, str], errors: list[tuple[str, str]]) -> Response:
        return self.pages.render(request, "action.html", 400 if errors else 200, session, form=form, case_id=case_id,
                                 data=data, errors=errors)

    async def review(self, request: Request, session: Session) -> Response:
        case_id = request.path_params["case_id"]
        try:
            change_no = int(request.path_params["change_no"])
        except ValueError:
            return self.pages.problem(request, session, 404, "Page not found", "There is no such change.")
        if not may(session.role, _CASE + "ReviewChange"):
            return self.pages.forbidden(request, session, "review a change")
        changes = await self.calling(request, session, self.backend.list_changes(session.token, case_id=case_id, include_cleared=True))
        change = next((item for item in changes if item.change_no == change_no), None)
        if change is None:
            return self.pages.problem(request, session, 404, "Page not found", f"Case {case_id} has no change {change_no}.")
        row = views.change_row(change)
        corrections = forms.correction_fields(change.kind)
        if request.method == "GET":
            return self._review_page(request, session, row, change, corrections, {"idempotency_key": new_key()}, [])
        data = await self.form_of(request, session)
        if data is None:
            return self.csrf_refused(request, session)
        key = data.get("idempotency_key", "")
        if not key or len(key) > MAX_KEY:
            return self.pages.problem(request, session, 400, "This form cannot be sent",
                                      "The form is missing its request key. Go back, reload the page and try again.")
        outcome, reason, corrected, errors = forms.validate_review(change.kind, data)
        if errors:
            return self._review_page(request, session, row, change, corrections, data, errors)
        try:
            reply = await self.calling(request, session, self.backend.review_change(
                session.token, case_id, change_no, outcome, reason, corrected, key))
        except grpc.aio.AioRpcError as error:
            refusal = refusal_errors(error, ["outcome", "reason", *(field.anchor for field in corrections)])
            if refusal is None:
                raise
            return self._review_page(request, session, row, change, corrections, data, refusal)
        log.info("console_review", case_id=case_id, change_no=change_no, outcome=outcome, staff_id=session.staff_id)
        said = views.words(reply.outcome) + (f": {reply.reason}" if reply.reason else "")
        return self.pages.render(request, "outcome.html", session=session, case_id=case_id,
                                 title=f"Review of change {change_no}", outcome=said)

    def _review_page(self, request: Request, session: Session, row: views.ChangeRow, change: Any,
                     corrections: tuple[forms.Field, ...], data: Mapping[str, str], errors: list[tuple[str, str]]) -> Response:
        return self.pages.render(request, "review.html", 400 if errors else 200, session, case_id=change.case_id,
                                 change=row, corrections=corrections, outcomes=forms.OUTCOMES, data=data,
                                 errors=errors, waiting=change.status != "cleared" and change.needs_caseworker)

    async def letter(self, request: Request, session: Session) -> Response:
        """A letter's PDF, after a reason: it shows the recipient's address, so the read is audited."""
        case_id, notification_id = request.path_params["case_id"], request.path_params["notification_id"]
        if not may(session.role, _NOTIFICATIONS + "LetterPdf"):
            return self.pages.forbidden(request, session, "see a letter")
        if request.method == "GET":
            return self._letter_page(request, session, case_id, notification_id, [])
        data = await self.form_of(request, session)
        if data is None:
            return self.csrf_refused(request, session)
        reason = data.get("reason", "").strip()
        if not reason or len(reason) > forms.MAX_TEXT:
            return self._letter_page(request, session, case_id, notification_id, [(
                "reason", "Enter why you need to see the letter" if not reason
                else f"The reason must be {forms.MAX_TEXT} characters or fewer")])
        try:
            letter = await self.calling(request, session, self.backend.letter_pdf(session.token, notification_id, reason))
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.FAILED_PRECONDITION:
                raise
            return self._letter_page(request, session, case_id, notification_id, [("", _sentence(error.details() or ""))])
        if letter.case_id != case_id:
            return self.pages.problem(request, session, 404, "Page not found", f"Case {case_id} has no such letter.")
        return Response(letter.pdf, media_type="application/pdf",
                        headers={"Content-Disposition": f'inline; filename="letter-{notification_id}.pdf"'})

    def _letter_page(self, request: Request, session: Session, case_id: str, notification_id: str,
                     errors: list[tuple[str, str]]) -> Response:
        return self.pages.render(request, "letter.html", 400 if errors else 200, session, case_id=case_id,
                                 notification_id=notification_id, errors=errors, data={})

    async def assign_suspense(self, request: Request, session: Session) -> Response:
        reference = request.path_params["bank_reference"]
        if not may(session.role, _PAYMENTS + "AssignSuspensePayment"):
            return self.pages.forbidden(request, session, "assign a suspense payment")
        if request.method == "GET":
            return self._assign_page(request, session, reference, {"idempotency_key": new_key(),
                                                                   "case_id": request.query_params.get("case", "")}, [])
        data = await self.form_of(request, session)
        if data is None:
            return self.csrf_refused(request, session)
        key, case_id = data.get("idempotency_key", ""), data.get("case_id", "").strip()
        if not key or len(key) > MAX_KEY:
            return self.pages.problem(request, session, 400, "This form cannot be sent",
                                      "The form is missing its request key. Go back, reload the page and try again.")
        if not case_id:
            return self._assign_page(request, session, reference, data, [("case_id", "Enter the case the payment belongs to")])
        try:
            reply = await self.calling(request, session, self.backend.assign_suspense(session.token, reference, case_id, key))
        except grpc.aio.AioRpcError as error:
            refusal = refusal_errors(error, ["case_id"], default_field="case_id")
            if refusal is None:
                raise
            return self._assign_page(request, session, reference, data, refusal)
        said = f"{views.money(reply.amount_pence)} assigned to case {reply.case_id}"
        if reply.credit_pence:
            said += f"; {views.money(reply.credit_pence)} more than the case owed is held as credit"
        return self.pages.render(request, "outcome.html", session=session, case_id=reply.case_id,
                                 title="Suspense payment assigned", outcome=said)

    def _assign_page(self, request: Request, session: Session, reference: str, data: Mapping[str, str],
                     errors: list[tuple[str, str]]) -> Response:
        return self.pages.render(request, "assign.html", 400 if errors else 200, session, reference=reference,
                                 data=data, errors=errors, nav="suspense")


T = TypeVar("T")


async def optional(name: str, call: Awaitable[T], unavailable: list[str]) -> T | None:
    """A part of a page that may be missing: None when the service has nothing for it (NOT_FOUND,
    e.g. no payments yet), or when it failed, which is named in `unavailable` for the page to say."""
    try:
        return await call
    except grpc.aio.AioRpcError as error:
        if error.code() not in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION):
            log.warning("console_part_unavailable", part=name, code=error.code().name)
            unavailable.append(name)
        return None


def new_key() -> str:
    return secrets.token_urlsafe(18)


_FORM_REFUSALS = (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION,
                  grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.NOT_FOUND)


def refusal_errors(error: grpc.aio.AioRpcError, known: list[str], default_field: str = "") -> list[tuple[str, str]] | None:
    """The form's error messages for a service's refusal of its input, or None for any other
    failure. A field violation about a field on the form links to it; anything else is said in the
    summary without a link (field "")."""
    if error.code() not in _FORM_REFUSALS:
        return None
    violations = field_violations_of(error) if error.code() == grpc.StatusCode.INVALID_ARGUMENT else []
    if not violations:
        text = error.details() or error.code().name
        return [(default_field if error.code() == grpc.StatusCode.NOT_FOUND else "", _sentence(text))]
    messages = []
    for field, text in violations:
        name = forms.field_for_service(field)
        anchor = next((item for item in known if item in (name, f"{name}-day")), "")
        messages.append((anchor, _sentence(text) if anchor else _sentence(f"{field}: {text}" if field else text)))
    return messages


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] if text else text


# --- the application -----------------------------------------------------------------------------

Handler = Callable[[Console, Request, Session], Awaitable[Response]]


def signed_in(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """The route needs a session (else sign-in, then back here); service refusals become pages."""

    async def endpoint(request: Request) -> Response:
        console: Console = request.app.state.console
        session = console.session_of(request)
        if session is None:
            return sign_in_redirect(request)
        try:
            return await handler(console, request, session)
        except (ServiceRefused, grpc.aio.AioRpcError) as error:
            return console.failure_page(request, session, error)

    return endpoint


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


async def sign_in(request: Request) -> Response:
    return await request.app.state.console.sign_in(request)


async def sign_out(request: Request) -> Response:
    return await request.app.state.console.sign_out(request)


async def home(console: Console, request: Request, session: Session) -> Response:
    return RedirectResponse("/queues/cases", status_code=303)


class SecurityHeaders(BaseHTTPMiddleware):
    """No page is cached, framed or allowed to run script: the console works without JavaScript."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy",
                                    "default-src 'self'; script-src 'none'; object-src 'none'; frame-ancestors 'none'; "
                                    "form-action 'self'; base-uri 'none'")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        if not request.url.path.startswith("/assets/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response


def create_app(settings: ConsoleSettings, backend: Backend, sessions: SessionStore | None = None) -> Starlette:
    console = Console(settings, backend, sessions or SessionStore(settings.session_seconds), Pages(settings))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        close = getattr(backend, "close", None)
        if close is not None:
            await close()

    routes: list[Route | Mount] = [
        Route("/healthz", healthz),
        Route("/sign-in", sign_in, methods=["GET", "POST"]),
        Route("/sign-out", sign_out, methods=["POST"]),
        Route("/", signed_in(home)),
        Route("/queues/cases", signed_in(Console.queue_cases)),
        Route("/queues/changes", signed_in(Console.queue_changes)),
        Route("/queues/breaches", signed_in(Console.queue_breaches)),
        Route("/queues/suspense", signed_in(Console.queue_suspense)),
        Route("/suspense/{bank_reference}/assign", signed_in(Console.assign_suspense), methods=["GET", "POST"]),
        Route("/cases/{case_id}", signed_in(Console.case_page)),
        Route("/cases/{case_id}/protected", signed_in(Console.case_protected), methods=["POST"]),
        Route("/cases/{case_id}/changes/{change_no}/review", signed_in(Console.review), methods=["GET", "POST"]),
        Route("/cases/{case_id}/letters/{notification_id}", signed_in(Console.letter), methods=["GET", "POST"]),
        Route("/cases/{case_id}/{action}", signed_in(Console.action), methods=["GET", "POST"]),
    ]
    try:
        routes += [Mount(url, StaticFiles(directory=folder)) for url, folder in static_mounts(settings.node_modules)]
        stylesheet = f"{GOVUK_URL}/{STYLESHEET}?v={govuk_frontend_version(settings.node_modules)}"
    except AssetsMissing as missing:
        # The pages still work, unstyled: the Design System's markup reads in order without its CSS.
        log.warning("console_assets_missing", problem=str(missing))
        stylesheet = ""
    console.pages.templates.env.globals["stylesheet"] = stylesheet
    app = Starlette(routes=routes, middleware=[Middleware(SecurityHeaders)], lifespan=lifespan)
    app.state.console = console
    return app


def main() -> None:
    import uvicorn

    configure_logging("console")
    settings = load_console_settings()
    app = create_app(settings, GrpcBackend(settings.platform))
    log.info("console_listening", url=f"http://{settings.host}:{settings.port}/")
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning", proxy_headers=False)
