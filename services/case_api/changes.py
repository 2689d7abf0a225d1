"""CaseService RPCs for changes of circumstances: ReportChange, ReviewChange, GetSlaReport.

A mixin for the CaseService servicer (``class CaseService(ChangeRpcs, CaseServiceServicer)``);
the servicer provides ``self._pool`` (PostgreSQL, search_path case_api) and
``async self._temporal()`` (its Temporal client). Reporting goes through the case workflow's `report_change`
update, whose validator refuses bad input before anything is recorded; its typed errors map to
INVALID_ARGUMENT (with the field) and FAILED_PRECONDITION (closed case, change not waiting).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from cms_proto.case.v1 import case_pb2
from services.case_api import repository as case_api
from services.case_api.update_ids import update_id_for
from services.common.errors import FieldViolations, abort_invalid
from workflows.change import ChangeWorkflow, ReportedChange, ReviewDecision, change_workflow_id
from workflows.change_messages import ChangeReceipt

MAX_OLDEST = 500
MAX_LISTED = 1000


def _json_object(text: str, field: str) -> dict[str, Any] | None:
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError as error:
        raise FieldViolations([(field, f"is not valid JSON ({error})")]) from None
    if not isinstance(value, dict):
        raise FieldViolations([(field, "must be one JSON object")])
    return value


def _timestamp(iso_instant: str | datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(datetime.fromisoformat(iso_instant) if isinstance(iso_instant, str) else iso_instant)
    return stamp


class ChangeRpcs:
    """The change RPCs of CaseService, which provides the pool and its lazily connected client."""

    _pool: Any

    async def _temporal(self) -> Client:
        raise NotImplementedError("CaseService connects to Temporal")

    async def _temporal_client(self) -> Client:
        return await self._temporal()

    async def ReportChange(self, request: case_pb2.ReportChangeRequest,
                           context: grpc.aio.ServicerContext) -> case_pb2.ReportChangeResponse:
        try:
            if not request.case_id.strip():
                raise FieldViolations([("case_id", "is required")])
            change = ReportedChange(
                kind=request.kind, reported_date=request.reported_date, effective_date=request.effective_date,
                reported_by=request.reported_by or "paying_parent",
                details=_json_object(request.details_json, "details_json") or {},
                evidence_disputed=request.evidence_disputed, idempotency_key=request.idempotency_key,
                notification_reason=request.notification_reason,
            )
        except FieldViolations as error:
            await abort_invalid(context, error)
        client = await self._temporal_client()
        handle = client.get_workflow_handle(f"case-{request.case_id}")
        # By name: the case workflow gains this update from workflows.case_changes.CaseChanges.
        receipt = await _updating(context, handle.execute_update("report_change", change, result_type=ChangeReceipt))
        return case_pb2.ReportChangeResponse(
            case_id=request.case_id, change_no=receipt.change_no, workflow_id=receipt.workflow_id,
            already_existed=receipt.already_existed, needs_caseworker=receipt.needs_caseworker,
            assigned_team=receipt.assigned_team, sla_due_at=_timestamp(receipt.sla_due_at),
        )

    async def ReviewChange(self, request: case_pb2.ReviewChangeRequest,
                           context: grpc.aio.ServicerContext) -> case_pb2.ReviewChangeResponse:
        try:
            if not request.case_id.strip() or request.change_no < 1:
                raise FieldViolations([("change_no" if request.case_id.strip() else "case_id",
                                        "is required (case id and a change number from 1)")])
            decision = ReviewDecision(outcome=request.outcome, reason=request.reason, reviewer=request.reviewer,
                                      corrected_details=_json_object(request.corrected_details_json,
                                                                     "corrected_details_json"))
            update_id = update_id_for("review_decision", request.idempotency_key)
        except FieldViolations as error:
            await abort_invalid(context, error)
        client = await self._temporal_client()
        handle = client.get_workflow_handle(change_workflow_id(request.case_id, request.change_no))
        answer = await _updating(context, handle.execute_update(ChangeWorkflow.review_decision, decision, id=update_id))
        return case_pb2.ReviewChangeResponse(outcome=answer.outcome, reason=answer.reason)

    async def GetSlaReport(self, request: case_pb2.GetSlaReportRequest,
                           context: grpc.aio.ServicerContext) -> case_pb2.SlaReport:
        if request.oldest < 0 or request.oldest > MAX_OLDEST:
            await abort_invalid(context, FieldViolations([("oldest", f"must be between 0 and {MAX_OLDEST}")]))
        async with case_api.read_snapshot(self._pool) as conn:
            report = await case_api.load_sla_report(conn, oldest=request.oldest or 10)
        return case_pb2.SlaReport(
            open_by_age=[case_pb2.SlaAgeBand(band=band, open=count) for band, count in report.open_by_band.items()],
            open_total=report.open_total,
            cleared_last_4_weeks=report.cleared_last_4_weeks,
            cleared_on_time_last_4_weeks=report.cleared_on_time_last_4_weeks,
            on_time_share=float(report.on_time_share or 0),
            breaches_open=report.breaches_open,
            breaches_last_4_weeks=report.breaches_last_4_weeks,
            oldest=[case_pb2.SlaOpenChange(
                case_id=item.case_id, change_no=item.change_no, kind=item.kind, age_days=item.age_days,
                assigned_team=item.assigned_team, needs_caseworker=item.needs_caseworker,
                sla_due_at=_timestamp(item.due_at), breached=item.breached) for item in report.oldest],
        )


    async def ListChanges(self, request: case_pb2.ListChangesRequest,
                          context: grpc.aio.ServicerContext) -> case_pb2.ChangeList:
        if not 0 <= request.limit <= MAX_LISTED:
            await abort_invalid(context, FieldViolations([("limit", f"must be between 0 and {MAX_LISTED}")]))
        if request.include_cleared and not request.case_id:
            await abort_invalid(context, FieldViolations([("include_cleared", "only with a case_id")]))
        due_before = request.due_before.ToDatetime(tzinfo=UTC) if request.HasField("due_before") else None
        async with self._pool.connection() as conn:
            rows = await case_api.load_changes(conn, request.case_id, request.waiting_for_review_only, due_before,
                                               request.include_cleared, request.limit or 100)
        return case_pb2.ChangeList(changes=[_change_item(row) for row in rows])


def _change_item(row: tuple[Any, ...]) -> case_pb2.ChangeItem:
    (case_id, change_no, kind, status, team, needs_caseworker, review_reason, reported, effective, received,
     due, breached, outcome, reason, cleared, weekly, reviewer, age_days) = row
    item = case_pb2.ChangeItem(
        case_id=case_id, change_no=change_no, kind=kind, status=status, assigned_team=team,
        needs_caseworker=needs_caseworker, review_reason=review_reason, reported_date=str(reported),
        effective_date=str(effective or ""), received_at=_timestamp(received), sla_due_at=_timestamp(due),
        breached=bool(breached), outcome=outcome, reason=reason, reviewer=reviewer,
        weekly_liability_pence=weekly or 0, has_weekly_liability=weekly is not None, age_days=age_days,
    )
    if cleared is not None:
        item.cleared_at.CopyFrom(_timestamp(cleared))
    return item


async def _updating(context: grpc.aio.ServicerContext, update: Any) -> Any:
    """Runs a workflow update; turns its validator's typed refusal into the matching gRPC status."""
    try:
        return await update
    except WorkflowUpdateFailedError as failure:
        cause = failure.cause
        if isinstance(cause, ApplicationError) and cause.type == "InvalidArgument":
            field = str(cause.details[0]) if cause.details else ""
            message = cause.message.removeprefix(f"{field}: ") if field else cause.message
            await abort_invalid(context, FieldViolations([(field, message)]))
        if isinstance(cause, ApplicationError) and cause.type == "FailedPrecondition":
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, cause.message)
        await context.abort(grpc.StatusCode.INTERNAL, "the update failed")
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            await context.abort(grpc.StatusCode.NOT_FOUND, "no such case or change")
        raise
