"""The scenario's output (docs/design.md, The `cms scenario` command), read from where each fact lives:

- stage, closure, the liability history and the children's last qualifying days: the case
  workflow's `state` and `liability_history` queries;
- the balance: payments' `GetBalance` on the `until` day;
- the timeline: the case read model (`GetTimeline`), every entry the case wrote;
- enforcement: the steps of each enforcement the case started (`case-<id>/enforcement-<n>`, its
  `status` query), in date order.

Liability: each entry of the history the case handed to payments is in force from its date until
the day before the next (`to` inclusive, null while open). After a closure nothing is due from the
closure date (the first day without liability): the last segment ends the day before it. Two
neighbouring segments with the same rate and amount are one.
"""

from __future__ import annotations

import itertools
from datetime import date, timedelta
from typing import Any

import grpc
from temporalio.service import RPCError, RPCStatusCode

from cms.scenario.stack import ScenarioServices
from cms_proto.case.v1 import case_pb2
from cms_proto.payments.v1 import payments_pb2
from workflows.case import CaseWorkflow
from workflows.case_messages import LiabilityHistory, RateInForce
from workflows.enforcement import EnforcementWorkflow
from workflows.enforcement_messages import enforcement_workflow_id


async def read_result(services: ScenarioServices, case_id: str, until: date) -> dict[str, Any]:
    handle = services.client.get_workflow_handle(f"case-{case_id}")
    view = await handle.query(CaseWorkflow.state)
    history = await handle.query(CaseWorkflow.liability_history)
    closed_on = view.closure.closed_on if view.closure else None
    return {
        "case_id": case_id,
        "stage": view.stage,
        "closed_on": closed_on,
        "liability": liability_segments(history.rates, closed_on),
        "children": children(history),
        "balance": await balance(services, case_id, until),
        "enforcement": await enforcement(services, case_id),
        "timeline": await timeline(services, case_id),
    }


def liability_segments(rates: list[RateInForce], closed_on: str | None) -> list[dict[str, Any]]:
    segments: list[dict[str, Any]] = []
    for rate in rates:
        if closed_on is not None and rate.effective_from >= closed_on:
            break
        if segments and (segments[-1]["weekly_liability_pence"], segments[-1]["rate"]) == \
                (rate.weekly_liability_pence, rate.rate):
            continue
        if segments:
            segments[-1]["to"] = _day_before(rate.effective_from)
        segments.append({"from": rate.effective_from, "to": None,
                         "weekly_liability_pence": rate.weekly_liability_pence, "rate": rate.rate})
    if segments and closed_on is not None:
        segments[-1]["to"] = _day_before(closed_on)
    return segments


def children(history: LiabilityHistory) -> list[dict[str, str]]:
    return [{"child_id": child.child_id, "qualifies_until": child.qualifies_until} for child in history.children]


async def balance(services: ScenarioServices, case_id: str, until: date) -> dict[str, int]:
    try:
        found = await services.payments.GetBalance(payments_pb2.GetBalanceRequest(case_id=case_id,
                                                                                  as_of=until.isoformat()))
    except grpc.aio.AioRpcError as error:
        if error.code() != grpc.StatusCode.NOT_FOUND:   # payments never heard of the case: nothing due
            raise
        return {"arrears_pence": 0, "paid_pence": 0, "enforcement_charges_pence": 0}
    return {"arrears_pence": found.arrears_pence, "paid_pence": found.paid_to_date_pence,
            "enforcement_charges_pence": found.enforcement_charges_pence}


async def enforcement(services: ScenarioServices, case_id: str) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = []
    for n in itertools.count(1):
        handle = services.client.get_workflow_handle(enforcement_workflow_id(case_id, n))
        try:
            status = await handle.query(EnforcementWorkflow.status)
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:   # enforcements are numbered from 1 without gaps
                break
            raise
        steps += [{"step": view.step, "started_on": view.started_on, "ended_on": view.ended_on or None,
                   "charge_pence": view.charge_pence, "outcome": view.outcome or None} for view in status.steps]
    return sorted(steps, key=lambda step: step["started_on"])


async def timeline(services: ScenarioServices, case_id: str) -> list[dict[str, str]]:
    entries = await services.cases.GetTimeline(case_pb2.GetTimelineRequest(case_id=case_id))
    return [{"day": entry.day, "kind": entry.kind, "text": entry.text} for entry in entries.entries]


def _day_before(day: str) -> str:
    return (date.fromisoformat(day) - timedelta(days=1)).isoformat()
