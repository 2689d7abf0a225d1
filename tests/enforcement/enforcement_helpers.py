"""Helpers shared by the enforcement workflow tests (a unique module name: test folders have no
packages)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable

from temporalio.client import WorkflowHandle

from cms_proto.payments.v1 import payments_pb2 as pb
from tests.payments.payments_helpers import new_schedule
from workflows.enforcement import EnforcementWorkflow
from workflows.enforcement_messages import (
    ApprovalRequest,
    EnforcementInput,
    EnforcementStatus,
    OutcomeRequest,
    PayerMeans,
)

# A short case calendar rather than time skipping (as the payments workflow tests): a day is 10 ms.
SECONDS_PER_DAY = 0.01
EMPLOYER = "Northgate Foods Ltd, 4 Mill Lane, Leeds"
_counter = itertools.count(1)


def next_case_id() -> str:
    return f"enf-{next(_counter):05d}"


def enforcement_input(case_id: str, *, employed: bool = True, bank_account: bool = True, net: int = 100_000,
                      other: int = 0, arrears: int = 60_000, requested: int = 0) -> EnforcementInput:
    means = PayerMeans(employed, bank_account, net, other, EMPLOYER if employed else "")
    return EnforcementInput(case_id, 1, f"pp-{case_id}", f"rp-{case_id}", arrears, means, today="2026-03-02",
                            requested_per_period_pence=requested, seconds_per_day=SECONDS_PER_DAY,
                            publish_search_attributes=False)


async def start(env: dict, data: EnforcementInput) -> WorkflowHandle:
    # Payments takes charges only for a case it holds a schedule for.
    await new_schedule(env["payments"], data.case_id)
    return await env["start"](data)


async def until(handle: WorkflowHandle, predicate: Callable[[EnforcementStatus], bool], what: str,
                attempts: int = 2000) -> EnforcementStatus:
    """Polls the status query until `predicate` holds (bounded by attempts, not by time)."""
    status = None
    for _ in range(attempts):
        status = await handle.query(EnforcementWorkflow.status)
        if predicate(status):
            return status
        await asyncio.sleep(0.02)
    raise AssertionError(f"never reached: {what}; last status {status}")


def step_open(step: str) -> Callable[[EnforcementStatus], bool]:
    return lambda s: bool(s.steps) and s.steps[-1].step == step and not s.steps[-1].outcome


def pending(step: str) -> Callable[[EnforcementStatus], bool]:
    return lambda s: s.pending_approval == step


async def fail_step(handle: WorkflowHandle, step: str, outcome: str = "ineffective") -> None:
    """Records how an open step ended (a liability order once it has been applied for)."""
    ready = step_open(step)
    if step == "liability_order":
        await until(handle, lambda s: ready(s) and s.steps[-1].detail == "applied to the court", "the application")
    await until(handle, ready, f"{step} open")
    await handle.execute_update(EnforcementWorkflow.record_outcome,
                                OutcomeRequest(step, outcome, "cw-1", f"{step} did not clear the arrears"))


async def approve(handle: WorkflowHandle, step: str, *approvers: tuple[str, str]) -> None:
    await until(handle, pending(step), f"{step} waiting for approval")
    for staff_id, role in approvers:
        await handle.execute_update(EnforcementWorkflow.approve,
                                    ApprovalRequest(step, staff_id, role, "wilful refusal to pay"))


async def charges_in_ledger(env: dict, case_id: str) -> int:
    balance = await env["payments"].GetBalance(pb.GetBalanceRequest(case_id=case_id))
    return balance.enforcement_charges_pence
