"""Plays one scenario: the application on its date, each event on its case-calendar day in date
order, then the case runs on until `until`, and the result is read.

Time: the case calendar counts whole days from the instant the case started (CaseState's
anchor), and on the time-skipping server that instant is the server's clock when the case is
created. Day D of the case is therefore `start + (D - application date) days`; the clock is moved
an hour into that day, so the case reads D whatever the few milliseconds the start took. Moving
the clock fires every timer on the way (reviews, children's dates, collections), each handled
before time moves on: the server skips only while nothing is in flight.

A request the service refuses (the case API's or payments' validation, a closed case) ends the
scenario with `ScenarioError(<the event's path>.<field>, <the service's words>)`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import grpc
from temporalio.service import RPCError, RPCStatusCode

from activities.payments_messages import DirectPaymentReport
from cms.scenario.result import read_result
from cms.scenario.script import CaseworkerAction, Event, HmrcFigure, IncomingPayment, Scenario, ScenarioError
from cms.scenario.stack import ScenarioServices
from cms_proto.case.v1 import case_pb2
from cms_proto.payments.v1 import payments_pb2
from services.common.errors import field_violations_of
from workflows.case import CaseWorkflow
from workflows.case_messages import IncomeReport
from workflows.payments import DirectPayReportInput, DirectPayReportWorkflow

# How far into a case day the clock is moved for that day's events.
INTO_THE_DAY = timedelta(hours=1)


@dataclass
class _Played:
    """One scenario as it is played: its case, the clock's origin and the workflows it started."""

    case_id: str
    started_at: datetime
    application_date: date
    workflow_ids: list[str] = field(default_factory=list)
    direct_pay_reports: int = 0

    def instant_of(self, day: date) -> datetime:
        return self.started_at + timedelta(days=(day - self.application_date).days) + INTO_THE_DAY


class ScenarioPlayer:
    """Plays scenarios one after another on the same services."""

    def __init__(self, services: ScenarioServices) -> None:
        self._services = services
        self._runs = 0

    async def play(self, scenario: Scenario) -> dict[str, Any]:
        services = self._services
        self._runs += 1
        services.hmrc.use(scenario.hmrc)
        with services.env.auto_time_skipping_disabled():
            played = await self._apply(scenario)
            try:
                for event in scenario.events:
                    await self._move_clock_to(played.instant_of(event.on))
                    await self._happen(played, event)
                await self._move_clock_to(played.instant_of(scenario.until))
                return await read_result(services, played.case_id, scenario.until)
            finally:
                await self._end(played)

    async def _apply(self, scenario: Scenario) -> _Played:
        request = case_pb2.CreateApplicationRequest()
        request.CopyFrom(scenario.application)
        # One process plays many scenarios on one database: each is a case of its own.
        request.idempotency_key = f"{request.idempotency_key}/{self._runs}"
        started_at = await self._services.env.get_current_time()
        response = await _call(self._services.cases.CreateApplication(request), "application")
        return _Played(response.case_id, started_at, scenario.application_date,
                       workflow_ids=[response.workflow_id])

    async def _move_clock_to(self, instant: datetime) -> None:
        env = self._services.env
        remaining = (instant - await env.get_current_time()).total_seconds()
        if remaining > 0:
            await env.sleep(remaining)

    async def _happen(self, played: _Played, event: Event) -> None:
        services = self._services
        request = event.request
        if event.kind == "report_change":
            change = case_pb2.ReportChangeRequest()
            change.CopyFrom(request)
            change.case_id = played.case_id
            receipt = await _call(services.cases.ReportChange(change), event.path)
            played.workflow_ids.append(receipt.workflow_id)
        elif event.kind == "review_change":
            review = case_pb2.ReviewChangeRequest()
            review.CopyFrom(request)
            review.case_id = played.case_id
            await _call(services.cases.ReviewChange(review), event.path)
        elif event.kind == "signal_case":
            assert isinstance(request, CaseworkerAction)
            await _call(services.cases.SignalCase(case_pb2.SignalCaseRequest(
                case_id=played.case_id, action=request.action, payload_json=json.dumps(request.payload),
                actor=request.actor)), f"{event.path}.payload")
        elif event.kind == "payment":
            assert isinstance(request, IncomingPayment)
            await _call(services.payments.RecordIncomingPayment(payments_pb2.RecordIncomingPaymentRequest(
                idempotency_key=f"{played.case_id}/{event.path}", case_id=played.case_id,
                amount_pence=request.amount_pence, received_on=event.on.isoformat(),
                method=payments_pb2.Method.Value(request.method))), event.path)
        elif event.kind == "report_direct_payment":
            await self._report_direct_payment(played, event)
        elif event.kind == "hmrc_income":
            await self._hmrc_sends(played, request)
        else:   # read_scenario accepts only the kinds above
            raise ScenarioError(event.path, f"unknown action {event.kind!r}")

    async def _hmrc_sends(self, played: _Played, figure: HmrcFigure) -> None:
        """As the HMRC feed delivers a figure: a signal to the case, which records it as a fact
        (the case decides when it counts); with a tax year, later requests read it too."""
        if figure.tax_year:
            self._services.hmrc.incomes[figure.tax_year] = figure.annual_pence
        await self._services.client.get_workflow_handle(played.workflow_ids[0]).signal(
            CaseWorkflow.income_received, IncomeReport(figure.annual_pence, source="hmrc"))

    async def _report_direct_payment(self, played: _Played, event: Event) -> None:
        """As the receiving parent's channel reports it: payments' DirectPayReportWorkflow, which
        records it and tells the case of a missed or short payment."""
        request = event.request
        played.direct_pay_reports += 1
        workflow_id = f"case-{played.case_id}/direct-pay-report-{played.direct_pay_reports}"
        report = DirectPaymentReport(played.case_id, request.due_date, request.received, request.amount_pence,
                                     request.idempotency_key or f"{played.case_id}/{event.path}")
        await self._services.client.execute_workflow(
            DirectPayReportWorkflow.run, DirectPayReportInput(report), id=workflow_id,
            task_queue=self._services.payments_queue)

    async def _end(self, played: _Played) -> None:
        """Stops whatever the scenario left running: the clock is shared, and a timer of a workflow
        nobody works on would hold it for the next scenario."""
        client = self._services.client
        ids = [*played.workflow_ids, f"case-{played.case_id}/collections"]
        try:
            collections = await client.get_workflow_handle(ids[-1]).describe()
            ids += [child.workflow_id for child in collections.raw_description.pending_children]
        except RPCError as error:
            if error.status != RPCStatusCode.NOT_FOUND:
                raise
        for workflow_id in ids:
            try:
                await client.get_workflow_handle(workflow_id).terminate("scenario finished")
            except RPCError as error:
                if error.status not in (RPCStatusCode.NOT_FOUND, RPCStatusCode.FAILED_PRECONDITION):
                    raise


async def _call(call: Any, path: str) -> Any:
    """Awaits a gRPC call; a refusal becomes a ScenarioError at `path` (and the field it names)."""
    try:
        return await call
    except grpc.aio.AioRpcError as error:
        violations = field_violations_of(error)
        if violations:
            where, text = violations[0]
            raise ScenarioError(f"{path}.{where}" if where else path, text) from None
        raise ScenarioError(path, f"refused ({error.code().name.lower()}): {error.details()}") from None
