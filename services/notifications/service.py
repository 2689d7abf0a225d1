"""NotificationsService (cms.notifications.v1): servicer, registration, in-process dispatcher.

Every record that leaves this service for a party (letters, SMS, email, GetParty responses)
passes through `domain.safeguarding.redact_for_viewer`; every unredacted read of protected
fields (delivery, caseworker preview, GetParty) is written to `notifications.audit_log`.
Logs carry IDs and outcomes only.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import grpc
import structlog
from psycopg_pool import AsyncConnectionPool

from cms.config import Settings
from cms_proto.notifications.v1 import notifications_pb2 as pb
from cms_proto.notifications.v1 import notifications_pb2_grpc
from domain.notifications import ChannelError, ChildRecord, ContactPreferences, RenderError
from domain.notifications.render import postal_address_lines
from domain.safeguarding import AuditEntry, SafeguardingProfile, Viewer, audit_entry_for_read, redact_for_viewer
from services.common.errors import FieldViolations, abort, abort_invalid
from services.notifications import repository as repo
from services.notifications.compose import compose
from services.notifications.dispatcher import (
    Dispatcher,
    config_from_environment,
    provider_from_environment,
)
from services.notifications.letters import LetterError, address_window_problems, render_letter_pdf
from services.notifications.providers import NotificationProvider

log = structlog.get_logger("notifications")

CHANNEL_NAMES = {pb.CHANNEL_UNSPECIFIED: "", pb.CHANNEL_EMAIL: "email", pb.CHANNEL_SMS: "sms",
                 pb.CHANNEL_LETTER: "letter"}
CHANNEL_ENUMS = {name: value for value, name in CHANNEL_NAMES.items()}


def _iso(moment: datetime | None) -> str:
    return moment.astimezone(UTC).isoformat() if moment else ""


def notification_pb(row: repo.OutboxRow) -> pb.Notification:
    return pb.Notification(
        notification_id=row.notification_id, case_id=row.case_id, template=row.template,
        channel=CHANNEL_ENUMS[row.channel], status=row.status, attempts=row.attempts,
        recipient_party_id=row.recipient_party_id, idempotency_key=row.idempotency_key,
        failure_reason=row.failure_reason, deliver_after=_iso(row.deliver_after),
        created_at=_iso(row.created_at), updated_at=_iso(row.updated_at), language=row.language,
        language_note=row.language_note,
    )


def _require(violations: list[tuple[str, str]], request: Any, *names: str) -> None:
    for name in names:
        if not getattr(request, name):
            violations.append((name, "is required"))


def _channel_of(value: pb.Channel.ValueType, field: str, violations: list[tuple[str, str]]) -> str:
    if value not in CHANNEL_NAMES:
        violations.append((field, f"unknown channel {value}"))
        return ""
    return CHANNEL_NAMES[value]


def _json_object(text: str, field: str, violations: list[tuple[str, str]]) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        violations.append((field, f"is not valid JSON: {error.msg} at position {error.pos}"))
        return {}
    if not isinstance(value, dict):
        violations.append((field, "must be a JSON object"))
        return {}
    return value


def _preferences_of(message: pb.ContactPreferences, violations: list[tuple[str, str]]) -> ContactPreferences:
    channel = _channel_of(message.channel, "preferences.channel", violations)
    try:
        return ContactPreferences(
            channel=channel, no_phone=message.no_phone,
            safe_from=repo.parse_hhmm(message.safe_from, "safe_from"),
            safe_until=repo.parse_hhmm(message.safe_until, "safe_until"),
            language=message.language, accessible_format=message.accessible_format,
        )
    except (ValueError, ChannelError) as error:
        violations.append(("preferences", str(error)))
        return ContactPreferences()


def _preferences_pb(preferences: ContactPreferences) -> pb.ContactPreferences:
    return pb.ContactPreferences(
        channel=CHANNEL_ENUMS[preferences.channel], no_phone=preferences.no_phone,
        safe_from=preferences.safe_from.strftime("%H:%M") if preferences.safe_from else "",
        safe_until=preferences.safe_until.strftime("%H:%M") if preferences.safe_until else "",
        language=preferences.language, accessible_format=preferences.accessible_format,
    )


def _profile_pb(case_id: str, profile: SafeguardingProfile, set_by: str) -> pb.SafeguardingProfile:
    return pb.SafeguardingProfile(
        case_id=case_id, active=profile.active, protected_party_ids=list(profile.protected_party_ids),
        reason=profile.reason, safe_channel=CHANNEL_ENUMS[profile.safe_channel], no_phone=profile.no_phone,
        set_by=set_by,
    )


class NotificationsService(notifications_pb2_grpc.NotificationsServiceServicer):
    def __init__(self, pool: AsyncConnectionPool, settings: Settings, clock: Callable[[], datetime] | None = None):
        self._pool = pool
        self._settings = settings
        self._now = clock or (lambda: datetime.now(UTC))

    # --- sending ---------------------------------------------------------------------------

    def _validate_send(self, request: pb.SendRequest, for_preview: bool) -> tuple[str, dict[str, Any]]:
        violations: list[tuple[str, str]] = []
        _require(violations, request, "case_id", "recipient_party_id", "template")
        if for_preview:
            _require(violations, request, "requested_by", "reason")
        else:
            _require(violations, request, "idempotency_key")
        channel = _channel_of(request.channel, "channel", violations)
        variables = _json_object(request.variables_json, "variables_json", violations)
        if violations:
            raise FieldViolations(violations)
        return channel, variables

    async def _compose(self, conn, request: pb.SendRequest, channel: str, variables: dict[str, Any]):
        view = await repo.load_case_view(conn, request.case_id)
        if request.recipient_party_id not in view.parties:
            raise FieldViolations([("recipient_party_id",
                                    "is not a party of this case here; call SetParty with their details first")])
        try:
            return compose(request.idempotency_key, request.case_id, request.recipient_party_id,
                           request.template, channel, variables, view, self._now())
        except RenderError as error:
            raise FieldViolations([("variables_json" if "variable" in type(error).__name__.lower()
                                    else "template", str(error))]) from None
        except ChannelError as error:
            raise FieldViolations([("channel", str(error))]) from None

    async def Send(self, request: pb.SendRequest, context: grpc.aio.ServicerContext) -> pb.Notification:
        try:
            channel, variables = self._validate_send(request, for_preview=False)
            async with self._pool.connection() as conn, conn.transaction():
                existing = await repo.find_by_key(conn, request.idempotency_key)
                if existing is not None:
                    return notification_pb(existing)
                composed = await self._compose(conn, request, channel, variables)
                row, created = await repo.enqueue(conn, composed.prepared)
        except FieldViolations as error:
            await abort_invalid(context, error)
        if created:
            log.info("notification_queued", notification_id=row.notification_id, case_id=row.case_id,
                     template=row.template, channel=row.channel)
        return notification_pb(row)

    async def Preview(self, request: pb.SendRequest, context: grpc.aio.ServicerContext) -> pb.PreviewResponse:
        try:
            channel, variables = self._validate_send(request, for_preview=True)
            async with self._pool.connection() as conn, conn.transaction():
                composed = await self._compose(conn, request, channel, variables)
                rendered = composed.rendered
                if rendered.address_lines:
                    await repo.write_audit(conn, [AuditEntry(
                        request.case_id, request.recipient_party_id, f"staff:{request.requested_by}",
                        request.reason, ("address", "postcode"))])
        except FieldViolations as error:
            await abort_invalid(context, error)
        log.info("notification_previewed", case_id=request.case_id, template=request.template,
                 channel=rendered.channel)
        return pb.PreviewResponse(subject=rendered.subject, body=rendered.body,
                                  channel=CHANNEL_ENUMS[rendered.channel],
                                  address_lines=list(rendered.address_lines),
                                  deliver_after=_iso(composed.prepared.deliver_after))

    async def LetterPdf(self, request: pb.LetterPdfRequest, context: grpc.aio.ServicerContext) -> pb.LetterPdfResponse:
        violations: list[tuple[str, str]] = []
        _require(violations, request, "notification_id", "requested_by", "reason")
        if violations:
            await abort_invalid(context, FieldViolations(violations))
        async with self._pool.connection() as conn, conn.transaction():
            row = await repo.load_letter(conn, request.notification_id)
            if row is None:
                await abort(context, grpc.StatusCode.NOT_FOUND, f"no notification {request.notification_id}")
            if row["channel"] != "letter":
                await abort(context, grpc.StatusCode.FAILED_PRECONDITION, f"notification {request.notification_id} "
                            f"went by {row['channel']}, not as a letter")
            address = postal_address_lines(row["details"] or {})
            try:
                pdf = render_letter_pdf(address, row["subject"], row["body"], row["case_id"], row["created_at"].date(),
                                        large_print=row["accessible_format"] == "large_print",
                                        language=row["language"] or "en")
            except LetterError as error:
                await abort(context, grpc.StatusCode.FAILED_PRECONDITION, f"the letter cannot be printed: {error}")
            await repo.write_audit(conn, [AuditEntry(row["case_id"], row["recipient_party_id"],
                                                     f"staff:{request.requested_by}", request.reason,
                                                     ("address", "postcode"))])
        return pb.LetterPdfResponse(pdf=pdf, subject=row["subject"], case_id=row["case_id"])

    async def GetStatus(self, request: pb.GetStatusRequest, context: grpc.aio.ServicerContext) -> pb.Notification:
        if not request.notification_id:
            await abort_invalid(context, FieldViolations([("notification_id", "is required")]))
        async with self._pool.connection() as conn:
            row = await repo.get_notification(conn, request.notification_id)
        if row is None:
            await abort(context, grpc.StatusCode.NOT_FOUND, f"no notification {request.notification_id}")
        return notification_pb(row)

    async def ListForCase(self, request: pb.ListForCaseRequest, context: grpc.aio.ServicerContext) -> pb.ListForCaseResponse:
        if not request.case_id:
            await abort_invalid(context, FieldViolations([("case_id", "is required")]))
        async with self._pool.connection() as conn:
            rows = await repo.list_for_case(conn, request.case_id)
        return pb.ListForCaseResponse(notifications=[notification_pb(r) for r in rows])

    # --- parties and safeguarding ----------------------------------------------------------

    async def SetParty(self, request: pb.SetPartyRequest, context: grpc.aio.ServicerContext) -> pb.SetPartyResponse:
        violations: list[tuple[str, str]] = []
        _require(violations, request, "case_id", "party_id")
        if request.role not in ("", "receiving_parent", "paying_parent"):
            violations.append(("role", "must be receiving_parent or paying_parent"))
        details = _json_object(request.details_json, "details_json", violations)
        for key, value in details.items():
            if not isinstance(value, str):
                violations.append((f"details_json.{key}", "must be text"))
        if not violations:
            violations.extend((f"details_json.{name}", problem) for name, problem in address_window_problems(details))
        preferences = _preferences_of(request.preferences, violations)
        if violations:
            await abort_invalid(context, FieldViolations(violations))
        async with self._pool.connection() as conn, conn.transaction():
            await repo.upsert_party(conn, request.case_id, request.party_id, request.role, details, preferences)
        log.info("party_details_set", case_id=request.case_id, party_id=request.party_id)
        return pb.SetPartyResponse()

    async def SetChildren(self, request: pb.SetChildrenRequest,
                          context: grpc.aio.ServicerContext) -> pb.SetChildrenResponse:
        violations: list[tuple[str, str]] = []
        _require(violations, request, "case_id")
        for index, child in enumerate(request.children):
            if not child.child_id:
                violations.append((f"children[{index}].child_id", "is required"))
        if violations:
            await abort_invalid(context, FieldViolations(violations))
        children = [ChildRecord(c.child_id, c.name, c.date_of_birth) for c in request.children]
        async with self._pool.connection() as conn, conn.transaction():
            await repo.set_children(conn, request.case_id, children)
        log.info("case_children_set", case_id=request.case_id, children=len(children))
        return pb.SetChildrenResponse()

    async def GetParty(self, request: pb.GetPartyRequest, context: grpc.aio.ServicerContext) -> pb.Party:
        violations: list[tuple[str, str]] = []
        _require(violations, request, "case_id", "party_id")
        if bool(request.viewer_party_id) == bool(request.staff_id):
            violations.append(("viewer_party_id", "give exactly one of viewer_party_id or staff_id"))
        if request.staff_id and not request.reason:
            violations.append(("reason", "a caseworker must say why they read a party's details"))
        if violations:
            await abort_invalid(context, FieldViolations(violations))
        viewer = Viewer(party_id=request.viewer_party_id, staff_id=request.staff_id, reason=request.reason)
        async with self._pool.connection() as conn, conn.transaction():
            view = await repo.load_case_view(conn, request.case_id)
            if request.party_id not in view.parties:
                await abort(context, grpc.StatusCode.NOT_FOUND, f"no party {request.party_id} on case {request.case_id}")
            details = view.parties[request.party_id]
            entry = audit_entry_for_read(request.case_id, request.party_id, viewer,
                                         request.reason or "party viewing own details", details)
            if entry is not None:
                await repo.write_audit(conn, [entry])
        shown = redact_for_viewer(details, request.party_id, viewer, safeguarded=view.profile.active)
        return pb.Party(case_id=request.case_id, party_id=request.party_id, role=view.roles[request.party_id],
                        details_json=json.dumps(shown, sort_keys=True),
                        preferences=_preferences_pb(view.preferences[request.party_id]))

    async def SetSafeguardingProfile(self, request: pb.SetSafeguardingProfileRequest,
                                     context: grpc.aio.ServicerContext) -> pb.SafeguardingProfile:
        violations: list[tuple[str, str]] = []
        _require(violations, request, "case_id", "set_by")
        safe_channel = _channel_of(request.safe_channel, "safe_channel", violations)
        if violations:
            await abort_invalid(context, FieldViolations(violations))
        profile = SafeguardingProfile(active=request.active, protected_party_ids=tuple(request.protected_party_ids),
                                      reason=request.reason, safe_channel=safe_channel, no_phone=request.no_phone)
        async with self._pool.connection() as conn, conn.transaction():
            await repo.set_profile(conn, request.case_id, profile, request.set_by)
        log.info("safeguarding_profile_set", case_id=request.case_id, active=profile.active)
        return _profile_pb(request.case_id, profile, request.set_by)

    async def GetSafeguardingProfile(self, request: pb.GetSafeguardingProfileRequest,
                                     context: grpc.aio.ServicerContext) -> pb.SafeguardingProfile:
        if not request.case_id:
            await abort_invalid(context, FieldViolations([("case_id", "is required")]))
        async with self._pool.connection() as conn:
            profile, set_by = await repo.get_profile(conn, request.case_id)
        return _profile_pb(request.case_id, profile, set_by)


class _BackgroundDispatcher:
    """The dispatcher task started with the service; `aclose` is called by serve() on shutdown."""

    def __init__(self, dispatcher: Dispatcher):
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(dispatcher.run_forever(self._stop))

    async def aclose(self) -> None:
        self._stop.set()
        await self._task


def make_register(dispatch: bool = True, provider: NotificationProvider | None = None,
                  clock: Callable[[], datetime] | None = None):
    """A `register` for serve(). Tests pass dispatch=False to run the dispatcher themselves."""

    async def register(server: grpc.aio.Server, pool: AsyncConnectionPool, settings: Settings):
        notifications_pb2_grpc.add_NotificationsServiceServicer_to_server(
            NotificationsService(pool, settings, clock), server)
        if not dispatch:
            return None
        chosen = provider or provider_from_environment(settings.data_dir)
        return _BackgroundDispatcher(Dispatcher(pool, chosen, config_from_environment()))

    return register


register = make_register()
