"""CaseService (cms.case.v1): starts, reads and drives case workflows.

- CreateApplication writes the people (names, addresses: personal data stays in PostgreSQL)
  and starts `CaseWorkflow` under `case-<case_id>`, where case_id is a keyed hash of the
  idempotency key (services/case_api/case_ids.py): a repeated request finds the same row and the
  same workflow, never a second case.
- GetCase and GetTimeline read the read model the workflow's activities keep current.
- ListCases filters through Temporal visibility on the search attributes.
- SignalCase sends a caseworker action as a validated workflow update and returns its outcome.
Bad input: INVALID_ARGUMENT with field violations; nothing is written.
"""

from __future__ import annotations

import json
from dataclasses import MISSING, fields
from datetime import UTC, date, datetime

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from psycopg_pool import AsyncConnectionPool
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from cms.config import TASK_QUEUE_CASES, Settings
from cms.search_attributes import (
    ASSIGNED_TEAM,
    CASE_STAGE,
    ENFORCEMENT_STEP,
    NEEDS_CASEWORKER,
    SERVICE_TYPE,
    SLA_DUE_AT,
)
from cms.temporal import connect
from cms_proto.case.v1 import case_pb2, case_pb2_grpc
from domain import lifecycle
from domain.date_window import parse_day_in_window
from domain.safeguarding import Viewer, protected_values, redact_for_viewer
from services.case_api import repository as case_api
from services.case_api.case_ids import case_id_for, case_id_secret
from services.case_api.changes import ChangeRpcs
from services.case_api.enforcement_metrics import start_enforcement_metrics
from services.case_api.parties_to_notifications import (
    NotificationsUnavailable,
    PartyDetailsRefused,
    flag_profile,
    register_parties,
)
from services.case_api.sla_metrics import start_sla_metrics
from services.case_api.stuck_workflows import start_stuck_workflow_metrics
from services.case_api.update_ids import update_id_for
from services.common.auth import current_caller
from services.common.errors import FieldViolations, abort_invalid
from workflows.case_messages import (
    Calendar,
    CaseInput,
    ChildFacts,
    CloseRequest,
    CollectAndPayRequest,
    HoldRequest,
    ManualReviewRequest,
    NoteRequest,
    ReleaseRequest,
    SafeguardingFlag,
    unknown_keys,
)

STAGES = ("Application", "Assessment", "PaymentSchedule", "Active", "AnnualReview", "Closed")
_SERVICE_TYPES = {
    case_pb2.SERVICE_TYPE_UNSPECIFIED: "direct_pay",
    case_pb2.SERVICE_TYPE_DIRECT_PAY: "direct_pay",
    case_pb2.SERVICE_TYPE_COLLECT_AND_PAY: "collect_and_pay",
}
_SERVICE_TYPE_ENUM = {"direct_pay": case_pb2.SERVICE_TYPE_DIRECT_PAY,
                      "collect_and_pay": case_pb2.SERVICE_TYPE_COLLECT_AND_PAY}
# Caseworker actions: update name -> (message type, the field the request's actor fills).
ACTIONS: dict[str, tuple[type, str]] = {
    "add_note": (NoteRequest, "author"),
    "request_manual_review": (ManualReviewRequest, "actor"),
    "complete_manual_review": (ReleaseRequest, "actor"),
    "put_on_hold": (HoldRequest, "actor"),
    "release_hold": (ReleaseRequest, "actor"),
    "close_case": (CloseRequest, "actor"),
    "flag_safeguarding": (SafeguardingFlag, "actor"),
    "switch_to_collect_and_pay": (CollectAndPayRequest, "actor"),
}


def workflow_id_for(case_id: str) -> str:
    return f"case-{case_id}"


# --- validation -----------------------------------------------------------------------------
def _iso_date(text: str, field: str, problems: list[tuple[str, str]]) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        problems.append((field, f"{text!r} is not an ISO date (YYYY-MM-DD)"))
        return None


def _day_in_window(text: str, field: str, problems: list[tuple[str, str]]) -> date | None:
    """A date of the case's life (not a birth date): inside the accepted window (domain.date_window)."""
    day, problem = parse_day_in_window(text)
    if problem:
        problems.append((field, problem))
        return None
    return day


def _check_party(party: case_pb2.Party, field: str, problems: list[tuple[str, str]]) -> None:
    if not party.party_id.strip():
        problems.append((f"{field}.party_id", "required"))
    elif len(party.party_id) > 64 or not party.party_id.replace("-", "").replace("_", "").isalnum():
        problems.append((f"{field}.party_id", "letters, digits, '-' or '_' only, at most 64"))
    if not party.full_name.strip():
        problems.append((f"{field}.full_name", "required"))


def validate_application(request: case_pb2.CreateApplicationRequest, today: date) -> date:
    """Returns the application date; raises FieldViolations naming every bad field."""
    problems: list[tuple[str, str]] = []
    if not request.idempotency_key.strip():
        problems.append(("idempotency_key", "required: repeat it to retry safely"))
    elif len(request.idempotency_key) > 200:
        problems.append(("idempotency_key", "at most 200 characters"))
    _check_party(request.receiving_parent, "receiving_parent", problems)
    _check_party(request.paying_parent, "paying_parent", problems)
    if request.receiving_parent.party_id and request.receiving_parent.party_id == request.paying_parent.party_id:
        problems.append(("paying_parent.party_id", "must differ from the receiving parent's"))
    applied = today
    if request.application_date:
        applied = _day_in_window(request.application_date, "application_date", problems) or today
    if not request.children:
        problems.append(("children", "at least one qualifying child is needed"))
    seen: set[str] = set()
    for i, child in enumerate(request.children):
        where = f"children[{i}]"
        if not child.child_id.strip():
            problems.append((f"{where}.child_id", "required"))
        elif child.child_id in seen:
            problems.append((f"{where}.child_id", "duplicate child id"))
        seen.add(child.child_id)
        born = _iso_date(child.date_of_birth, f"{where}.date_of_birth", problems)
        if born is not None:
            if born > applied:
                problems.append((f"{where}.date_of_birth", "is after the application date"))
            elif lifecycle.add_years(born, 20) <= applied:
                problems.append((f"{where}.date_of_birth", "a child aged 20 or over does not qualify"))
        if not 0 <= child.shared_care_nights <= 366:
            problems.append((f"{where}.shared_care_nights", "must be 0 to 366"))
    if request.relevant_other_children < 0:
        problems.append(("relevant_other_children", "must not be negative"))
    if request.payment_frequency and request.payment_frequency not in lifecycle.PAYMENT_FREQUENCIES:
        problems.append(("payment_frequency", f"one of {', '.join(lifecycle.PAYMENT_FREQUENCIES)}"))
    if request.payment_method and request.payment_method not in lifecycle.PAYMENT_METHODS:
        problems.append(("payment_method", f"one of {', '.join(lifecycle.PAYMENT_METHODS)}"))
    if request.requested_service_type not in _SERVICE_TYPES:
        problems.append(("requested_service_type", "unknown service type"))
    if problems:
        raise FieldViolations(problems)
    return applied


def parse_action_payload(action: str, payload_json: str, actor: str) -> object:
    """The typed message for a caseworker action, from the JSON a person typed."""
    if action not in ACTIONS:
        raise FieldViolations([("action", f"one of {', '.join(ACTIONS)}")])
    message_type, actor_field = ACTIONS[action]
    try:
        payload = json.loads(payload_json or "{}")
    except json.JSONDecodeError as error:
        raise FieldViolations([("payload_json", f"not JSON: {error.msg}")]) from None
    if not isinstance(payload, dict):
        raise FieldViolations([("payload_json", "must be one JSON object")])
    problems = [(f"payload_json.{key}", "unknown field") for key in unknown_keys(message_type, payload)]
    if actor and payload.get(actor_field, actor) != actor:
        # The actor is the caller the token names (services/common/access.py), never typed in.
        problems.append((f"payload_json.{actor_field}", "must be the caller"))
    elif actor:
        payload[actor_field] = actor
    for name in message_type.__annotations__:
        value = payload.get(name)
        if name not in payload and not _has_default(message_type, name):
            problems.append((f"payload_json.{name}", "required"))
        elif name in payload and not isinstance(value, str):
            problems.append((f"payload_json.{name}", "must be a string"))
    if problems:
        raise FieldViolations(problems)
    return message_type(**payload)


def _has_default(message_type: type, name: str) -> bool:
    return any(f.name == name and (f.default is not MISSING or f.default_factory is not MISSING)
               for f in fields(message_type))


def _timestamp(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(value.astimezone(UTC))
    return stamp


# --- the service ----------------------------------------------------------------------------
class CaseService(ChangeRpcs, case_pb2_grpc.CaseServiceServicer):  # ReportChange, ReviewChange, GetSlaReport
    def __init__(self, pool: AsyncConnectionPool, settings: Settings, client: Client | None = None,
                 task_queue: str = TASK_QUEUE_CASES, publish_search_attributes: bool = True,
                 notifications_address: str | None = None, business_metrics: bool = False):
        self._pool = pool
        self._case_id_secret = case_id_secret(settings)  # StartupError, naming the setting, when missing
        # SLA gauges for Prometheus, refreshed from change_records in this event loop while
        # metrics are served (CMS_METRICS) or when `business_metrics` forces them (tests).
        self.sla_metrics = start_sla_metrics(pool, force=business_metrics)
        # Set: parties are registered with the notifications service before the workflow starts.
        self._notifications = notifications_address
        self._settings = settings
        self._client = client
        self._task_queue = task_queue
        self._publish = publish_search_attributes
        # Workflows whose task keeps failing, from Temporal's visibility (services/case_api/stuck_workflows.py).
        self.stuck_metrics = start_stuck_workflow_metrics(self._temporal, force=business_metrics)
        # Enforcements per step, approvals waiting, charges and arrears collected (enforcement_metrics.py).
        self.enforcement_metrics = start_enforcement_metrics(self._temporal, force=business_metrics)

    async def aclose(self) -> None:
        """serve() calls this on a graceful stop, before the pool closes."""
        for refresher in (self.sla_metrics, self.stuck_metrics, self.enforcement_metrics):
            if refresher is not None:
                await refresher.aclose()

    async def _temporal(self) -> Client:
        # Connected on first use: the service starts (and reports health) before Temporal is up.
        if self._client is None:
            self._client = await connect(self._settings)
        return self._client

    # CreateApplication --------------------------------------------------------------------
    async def CreateApplication(self, request, context):
        try:
            applied = validate_application(request, datetime.now(UTC).date())
        except FieldViolations as error:
            await abort_invalid(context, error)
            return
        case_id, created = await self._record_application(case_id_for(request.idempotency_key, self._case_id_secret),
                                                          request)
        if self._notifications:
            try:
                await register_parties(self._pool, self._notifications, case_id)
            except NotificationsUnavailable as error:
                await context.abort(grpc.StatusCode.UNAVAILABLE, f"{error}; retry with the same idempotency_key")
                return
            except PartyDetailsRefused as error:
                await abort_invalid(context, FieldViolations(error.violations))
                return
        await self._start_workflow(case_id, request, applied)
        return case_pb2.CreateApplicationResponse(case_id=case_id, workflow_id=workflow_id_for(case_id),
                                                  already_existed=not created)

    async def _record_application(self, case_id: str, request) -> tuple[str, bool]:
        service_type = lifecycle.choose_service_type(_SERVICE_TYPES[request.requested_service_type],
                                                     request.domestic_abuse)
        # The applicant (usually the receiving parent) answered the domestic abuse question.
        applicant = request.requested_by if request.requested_by == request.paying_parent.party_id \
            else request.receiving_parent.party_id
        protected = [applicant] if request.domestic_abuse else []
        parties = [(party.party_id, role, {name: getattr(party, name) for name in case_api.PARTY_DETAIL_FIELDS})
                   for role, party in (("receiving_parent", request.receiving_parent),
                                       ("paying_parent", request.paying_parent))]
        children = [(child.child_id, child.date_of_birth, child.shared_care_nights, child.in_full_time_education)
                    for child in request.children]
        async with self._pool.connection() as conn, conn.transaction():
            return await case_api.record_application(conn, case_id, request.idempotency_key, service_type,
                                                     request.domestic_abuse, protected, parties, children)

    async def _start_workflow(self, case_id: str, request, applied: date) -> None:
        client = await self._temporal()
        case_input = CaseInput(
            case_id=case_id, application_date=applied.isoformat(),
            receiving_parent_id=request.receiving_parent.party_id, paying_parent_id=request.paying_parent.party_id,
            children=[ChildFacts(c.child_id, c.date_of_birth, c.in_full_time_education, c.shared_care_nights)
                      for c in request.children],
            relevant_other_children=request.relevant_other_children,
            requested_service_type=_SERVICE_TYPES[request.requested_service_type],
            domestic_abuse=request.domestic_abuse, payment_frequency=request.payment_frequency or "monthly",
            payment_method=request.payment_method or "direct_debit",
            calendar=Calendar(self._settings.seconds_per_day), publish_search_attributes=self._publish,
        )
        try:
            # USE_EXISTING: a concurrent duplicate joins the running case; REJECT_DUPLICATE: a
            # closed case is never started again under the same key.
            await client.start_workflow(
                "CaseWorkflow", case_input, id=workflow_id_for(case_id), task_queue=self._task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )
        except WorkflowAlreadyStartedError:
            pass

    # GetCase --------------------------------------------------------------------------------
    async def GetCase(self, request, context):
        if not request.case_id:
            await abort_invalid(context, FieldViolations([("case_id", "required")]))
            return
        if bool(request.viewer_party_id) == bool(request.staff_id):
            await abort_invalid(context, FieldViolations([("viewer_party_id", "give a viewer_party_id or a staff_id")]))
            return
        if request.staff_id and not request.reason.strip():
            await abort_invalid(context, FieldViolations([("reason", "staff reads need a reason")]))
            return
        async with case_api.read_snapshot(self._pool) as conn:
            row = await case_api.load_case(conn, request.case_id)
            if row is None:
                await context.abort(grpc.StatusCode.NOT_FOUND, f"no case {request.case_id}")
                return
            parties = await case_api.load_parties(conn, request.case_id)
            children = await case_api.load_children(conn, request.case_id)
            _, protected_parties = await case_api.load_safeguarding(conn, request.case_id)
        party_records = {role: {"party_id": party_id, **details} for party_id, role, details in parties}
        viewer = Viewer(party_id=request.viewer_party_id, staff_id=request.staff_id, reason=request.reason)
        if not viewer.is_staff and viewer.party_id not in {r["party_id"] for r in party_records.values()}:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, "the viewer is not a party to this case")
            return
        safeguarded = bool(row.get("safeguarded"))
        shown = {role: redact_for_viewer(record, record["party_id"], viewer, safeguarded)
                 for role, record in party_records.items()}
        if viewer.is_staff and request.withhold_protected:
            # As for a record that belongs to nobody in particular: the protected fields withheld.
            shown = {role: redact_for_viewer(record, "", Viewer()) for role, record in party_records.items()}
        elif viewer.is_staff:
            await self._audit_staff_read(request.case_id, viewer, party_records)
        case = self._case_message(row, shown, children)
        if not viewer.is_staff:
            case.caseworker_reason = ""  # staff-only free text
            # The marker tells the other parent someone is protected from them: only the
            # protected party (both, when the profile names nobody) sees it.
            if protected_parties and viewer.party_id not in protected_parties:
                case.safeguarded = False
        return case

    async def _audit_staff_read(self, case_id: str, viewer: Viewer, records: dict[str, dict]) -> None:
        protected = sorted({key for record in records.values() for key in record
                            if key != "full_name" and protected_values({key: record[key]})})
        if not protected:
            return
        async with self._pool.connection() as conn:
            await case_api.record_staff_read(conn, case_id, viewer.staff_id, viewer.reason, "GetCase", protected)

    @staticmethod
    def _case_message(row: dict, parties: dict[str, dict], children) -> case_pb2.Case:
        def party(role: str) -> case_pb2.Party | None:
            record = parties.get(role)
            return case_pb2.Party(**record) if record else None

        liability = None
        if row["rate"]:
            liability = case_pb2.Liability(
                rate=row["rate"], weekly_liability_pence=row["weekly_liability_pence"] or 0,
                effective_date=str(row["liability_effective_date"] or ""),
                paying_parent_pays_pence=row["paying_parent_pays_pence"] or 0,
                receiving_parent_receives_pence=row["receiving_parent_receives_pence"] or 0,
            )
        return case_pb2.Case(
            case_id=row["case_id"], stage=row["stage"],
            service_type=_SERVICE_TYPE_ENUM.get(row["service_type"], case_pb2.SERVICE_TYPE_UNSPECIFIED),
            safeguarded=row["safeguarded"], receiving_parent=party("receiving_parent"),
            paying_parent=party("paying_parent"),
            children=[case_pb2.Child(child_id=c, date_of_birth=dob.isoformat(), shared_care_nights=n,
                                     in_full_time_education=edu) for c, dob, n, edu in children],
            liability=liability,
            initial_effective_date=str(row["initial_effective_date"] or ""),
            next_review_date=str(row["next_review_date"] or ""),
            needs_caseworker=row["needs_caseworker"], on_hold=row["on_hold"],
            updated_at=_timestamp(row["updated_at"]), caseworker_reason=row["caseworker_reason"] or "",
            application_date=str(row["application_date"] or ""), sla_due_at=_timestamp(row["sla_due_at"]),
            closure_reason=row["closure_reason"] or "", closed_on=str(row["closed_on"] or ""),
            reviews_done=row["reviews_done"] or 0,
        )

    # ListCases ------------------------------------------------------------------------------
    async def ListCases(self, request, context):
        problems = []
        if request.stage and request.stage not in STAGES:
            problems.append(("stage", f"one of {', '.join(STAGES)}"))
        if not 0 <= request.page_size <= 1000:
            problems.append(("page_size", "0 to 1000"))
        if problems:
            await abort_invalid(context, FieldViolations(problems))
            return
        types = ("'CaseWorkflow', 'ChangeWorkflow', 'EnforcementWorkflow'" if request.with_changes_and_enforcement
                 else "'CaseWorkflow'")
        clauses = [f"WorkflowType IN ({types})",
                   "ExecutionStatus = 'Completed'" if request.stage == "Closed" else "ExecutionStatus = 'Running'"]
        if request.stage:
            clauses.append(f"CaseStage = '{request.stage}'")
        if request.needs_caseworker_only:
            clauses.append("NeedsCaseworker = true")
        if request.HasField("sla_due_before"):
            before = request.sla_due_before.ToDatetime(tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            clauses.append(f"SlaDueAt < '{before}'")
        client = await self._temporal()
        pages = client.list_workflows(" AND ".join(clauses), page_size=request.page_size or 100,
                                      next_page_token=request.next_page_token or None)
        await pages.fetch_next_page()
        summaries = []
        for execution in pages.current_page or ():
            attributes = execution.typed_search_attributes
            case_part, _, child = execution.id.removeprefix("case-").partition("/")
            summaries.append(case_pb2.CaseSummary(
                case_id=case_part, stage=attributes.get(CASE_STAGE) or "",
                service_type=attributes.get(SERVICE_TYPE) or "",
                needs_caseworker=bool(attributes.get(NEEDS_CASEWORKER)),
                sla_due_at=_timestamp(attributes.get(SLA_DUE_AT)),
                assigned_team=attributes.get(ASSIGNED_TEAM) or "",
                workflow_id=execution.id, workflow_type=execution.workflow_type,
                change_no=int(child.removeprefix("change-")) if child.startswith("change-") else 0,
                enforcement_step=attributes.get(ENFORCEMENT_STEP) or "",
            ))
        await self._add_caseworker_reasons(summaries)
        return case_pb2.ListCasesResponse(cases=summaries, next_page_token=pages.next_page_token or b"")

    async def _add_caseworker_reasons(self, summaries: list[case_pb2.CaseSummary]) -> None:
        """Staff see why each case waits for them, in the words the case recorded (free text for
        staff, so never for other callers); one query for the page."""
        caller = current_caller()
        waiting = [summary for summary in summaries if summary.needs_caseworker]
        if not waiting or (caller is not None and not caller.is_staff):
            return
        cases = [summary for summary in waiting if summary.workflow_type == "CaseWorkflow"]
        changes = [summary for summary in waiting if summary.change_no]
        async with case_api.read_snapshot(self._pool) as conn:
            reasons = await case_api.case_reasons(conn, [summary.case_id for summary in cases]) if cases else {}
            reviews = await case_api.change_reviews(conn, [(summary.case_id, summary.change_no) for summary in changes]) \
                if changes else {}
        for summary in cases:
            summary.caseworker_reason = reasons.get(summary.case_id, "")
        for summary in changes:
            summary.change_kind, summary.review_reason = reviews.get((summary.case_id, summary.change_no), ("", ""))

    # GetTimeline ----------------------------------------------------------------------------
    async def GetTimeline(self, request, context):
        """The case's timeline for the caller the token names. Its text is free text written for
        staff (notes, hold and review reasons), so a parent gets what happened and when, never the
        words; a staff read is audited like a staff GetCase."""
        if not request.case_id:
            await abort_invalid(context, FieldViolations([("case_id", "required")]))
            return
        caller = current_caller()
        async with self._pool.connection() as conn:
            rows = await case_api.load_timeline(conn, request.case_id)
            if not rows and not await case_api.case_exists(conn, request.case_id):
                await context.abort(grpc.StatusCode.NOT_FOUND, f"no case {request.case_id}")
                return
            if caller is not None and caller.is_staff:
                await case_api.record_staff_read(conn, request.case_id, caller.subject, "timeline read",
                                                 "GetTimeline", ["timeline"])
        staff_text = caller is None or caller.role != "parent"
        return case_pb2.GetTimelineResponse(entries=[
            case_pb2.TimelineEntry(at=_timestamp(at), day=str(day or ""), kind=kind, text=text if staff_text else "")
            for at, day, kind, text in rows
        ])

    # ListAudit ------------------------------------------------------------------------------
    async def ListAudit(self, request, context):
        if not request.case_id:
            await abort_invalid(context, FieldViolations([("case_id", "required")]))
            return
        limit = min(request.limit or 100, 1000)
        async with self._pool.connection() as conn:
            rows = await case_api.load_audit(conn, request.case_id, limit)
        return case_pb2.AuditList(entries=[
            case_pb2.AuditRecord(at=_timestamp(at), staff_id=staff_id, action=action, reason=reason, fields=fields)
            for at, staff_id, action, reason, fields in rows
        ])

    # SignalCase -----------------------------------------------------------------------------
    async def SignalCase(self, request, context):
        problems = [] if request.case_id else [("case_id", "required")]
        try:
            message = parse_action_payload(request.action, request.payload_json, request.actor)
        except FieldViolations as error:
            problems += error.violations
        try:
            update_id = update_id_for(request.action, request.idempotency_key)
        except FieldViolations as error:
            problems += error.violations
        if problems:
            await abort_invalid(context, FieldViolations(problems))
            return
        handle = (await self._temporal()).get_workflow_handle(workflow_id_for(request.case_id))
        try:
            result = await handle.execute_update(request.action, message, id=update_id, result_type=dict)
        except WorkflowUpdateFailedError as error:
            # The workflow's validator refused it (e.g. "the case is not on hold"): nothing changed.
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(error.cause))
            return
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                await context.abort(grpc.StatusCode.NOT_FOUND, f"no running case {request.case_id}")
                return
            raise
        if isinstance(message, SafeguardingFlag) and self._notifications:
            try:
                await flag_profile(self._notifications, request.case_id, message.reason, message.actor)
            except NotificationsUnavailable as error:
                # The case is flagged; repeating the call is refused by the workflow, so tell the
                # caseworker plainly what is still to do.
                await context.abort(grpc.StatusCode.UNAVAILABLE, f"case flagged, but {error}; set the "
                                    "profile with NotificationsService/SetSafeguardingProfile")
                return
        outcome = result.get("outcome") or json.dumps(result, sort_keys=True)
        return case_pb2.SignalCaseResponse(accepted=True, outcome=outcome)


async def register(server: grpc.aio.Server, pool: AsyncConnectionPool, settings: Settings,
                   business_metrics: bool = False) -> CaseService:
    # CMS_CASE_NOTICES_VIA_NOTIFICATIONS=1 (make run): letters go through the notifications
    # service, which must know the parties first.
    notifications = settings.address_of("notifications") if settings.case_notices_via_notifications else None
    service = CaseService(pool, settings, notifications_address=notifications, business_metrics=business_metrics)
    case_pb2_grpc.add_CaseServiceServicer_to_server(service, server)
    return service
