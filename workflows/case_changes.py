"""Changes of circumstances on the case workflow: the `report_change` update and the
`change_cleared` signal, as a mixin the CaseWorkflow inherits (Temporal collects handlers from
base classes), so the case file only gains a base class, one state field and two hooks.

The host workflow provides:

* ``self._change_ledger() -> ChangeLedger``: the ledger, kept in the state carried across
  continue-as-new;
* ``self._change_case_facts() -> ChangeCaseFacts``: the case as the rules need it (its current
  calculation request as SPEC.md section 3 JSON, closed, safeguarded, dates, calendar);
* ``async self._change_applied(outcome, inputs)``: take a cleared change into the case (new
  calculation inputs after every applied change in effective-date order, the liability, the
  timeline; closure when the change ends the case).

Each change runs as a child `case-<case_id>/change-<n>` with parent-close policy ABANDON (a
case that continues-as-new at its annual review must not cancel open changes) and reports back
with the `change_cleared` signal, which reaches the case's latest run by workflow ID.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from domain import changes as rules
    from workflows.change import ChangeInput, ChangeOutcome, ChangeWorkflow, ReportedChange, change_workflow_id


@dataclass
class ChangeReceipt:
    change_no: int
    workflow_id: str
    already_existed: bool
    needs_caseworker: bool
    assigned_team: str
    sla_due_at: str          # ISO instant


@dataclass
class ChangeLedger:
    """What the case knows about its changes; carried whole across continue-as-new."""

    last_no: int = 0
    receipts: dict[str, ChangeReceipt] = field(default_factory=dict)   # idempotency key -> first answer
    open: list[int] = field(default_factory=list)
    # Inputs before the changes below, and the changes that counted: replaying them in
    # effective-date order gives the case's inputs whatever order they cleared in.
    base_inputs: dict[str, Any] | None = None
    applied: list[dict[str, Any]] = field(default_factory=list)        # {"n": int, "change": raw change}
    cleared: list[int] = field(default_factory=list)

    def rebase(self, inputs: dict[str, Any]) -> None:
        """After an annual review took the applied changes in: start again from its inputs."""
        self.base_inputs = copy.deepcopy(inputs)
        self.applied = []


@dataclass
class ChangeCaseFacts:
    case_id: str
    inputs: dict[str, Any]
    today: date
    closed: bool = False
    safeguarded: bool = False
    initial_effective_date: date | None = None
    annual_review_date: date | None = None
    seconds_per_day: float = 86400.0
    publish_search_attributes: bool = True

    def context(self) -> rules.CaseContext:
        return rules.CaseContext(safeguarded=self.safeguarded, closed=self.closed,
                                 initial_effective_date=self.initial_effective_date,
                                 annual_review_date=self.annual_review_date)


def _invalid(error: rules.ChangeValidationError) -> ApplicationError:
    if error.field == "case_id":
        return ApplicationError(error.message, type="FailedPrecondition")
    return ApplicationError(f"{error.field}: {error.message}", error.field, type="InvalidArgument")


def _with_reported_date(request: ReportedChange, today: date) -> ReportedChange:
    """No reported date means today on the case calendar (what a channel reporting now means)."""
    if request.reported_date:
        return request
    return dataclasses.replace(request, reported_date=today.isoformat())


class CaseChanges:
    """Mixin: changes of circumstances for a case workflow (see the module docstring)."""

    def _change_ledger(self) -> ChangeLedger:
        raise NotImplementedError

    def _change_case_facts(self) -> ChangeCaseFacts:
        raise NotImplementedError

    async def _change_applied(self, outcome: ChangeOutcome, inputs: dict[str, Any]) -> None:
        raise NotImplementedError

    @workflow.update
    async def report_change(self, request: ReportedChange) -> ChangeReceipt:
        ledger = self._change_ledger()
        if request.idempotency_key in ledger.receipts:
            first = ledger.receipts[request.idempotency_key]
            return ChangeReceipt(**{**first.__dict__, "already_existed": True})
        facts = self._change_case_facts()
        request = _with_reported_date(request, facts.today)
        change = rules.parse_change(request.as_raw(), facts.today)
        decision = rules.decide(change, facts.inputs, facts.context())
        ledger.last_no += 1
        n = ledger.last_no
        if ledger.base_inputs is None:
            ledger.base_inputs = copy.deepcopy(facts.inputs)
        child_id = change_workflow_id(facts.case_id, n)
        await workflow.start_child_workflow(
            ChangeWorkflow.run,
            ChangeInput(case_id=facts.case_id, n=n, change=request, current_inputs=facts.inputs,
                        safeguarded=facts.safeguarded, seconds_per_day=facts.seconds_per_day,
                        publish_search_attributes=facts.publish_search_attributes, today=facts.today.isoformat(),
                        initial_effective_date=facts.initial_effective_date.isoformat()
                        if facts.initial_effective_date else "",
                        annual_review_date=facts.annual_review_date.isoformat() if facts.annual_review_date else "",
                        parent_workflow_id=workflow.info().workflow_id),
            id=child_id,
            parent_close_policy=ParentClosePolicy.ABANDON,
        )
        due = workflow.now() + timedelta(seconds=rules.SLA_DAYS * facts.seconds_per_day)
        receipt = ChangeReceipt(n, child_id, False, decision.needs_review, decision.team, due.isoformat())
        if request.idempotency_key:
            ledger.receipts[request.idempotency_key] = receipt
        ledger.open.append(n)
        return receipt

    @report_change.validator
    def _validate_report_change(self, request: ReportedChange) -> None:
        if request.idempotency_key in self._change_ledger().receipts:
            return  # a resubmission: answered with the first result
        facts = self._change_case_facts()
        try:
            change = rules.parse_change(_with_reported_date(request, facts.today).as_raw(), facts.today)
            rules.check_against_case(change, facts.inputs, facts.context())
        except rules.ChangeValidationError as error:
            raise _invalid(error) from None

    @workflow.signal
    async def change_cleared(self, outcome: ChangeOutcome) -> None:
        ledger = self._change_ledger()
        if outcome.n in ledger.cleared:
            return  # a duplicate signal is harmless
        ledger.cleared.append(outcome.n)
        if outcome.n in ledger.open:
            ledger.open.remove(outcome.n)
        if outcome.outcome in ("recalculated", "case_closure") and outcome.applied_change:
            ledger.applied.append({"n": outcome.n, "change": outcome.applied_change})
        inputs = self._replay_applied(ledger)
        await self._change_applied(outcome, inputs)

    def _replay_applied(self, ledger: ChangeLedger) -> dict[str, Any]:
        facts = self._change_case_facts()
        base = ledger.base_inputs if ledger.base_inputs is not None else facts.inputs
        # Already validated when reported; parse with a far "today" so a date check cannot refuse it now.
        numbered = [(a["n"], rules.parse_change(a["change"], date.max - timedelta(days=366)))
                    for a in ledger.applied]
        final, _ = rules.apply_in_order(base, numbered, facts.context())
        return final

    @workflow.query
    def open_changes(self) -> list[int]:
        return list(self._change_ledger().open)
