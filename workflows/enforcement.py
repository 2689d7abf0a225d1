"""EnforcementWorkflow: enforcement of one case's arrears, a child of the case
(`case-<case_id>/enforcement-<n>`, task queue cms-cases).

contact -> arrears notice -> a deduction order (from earnings for an employed payer, else from a
bank account) -> a liability order (court) -> later remedies, each only with its approvals
(domain/enforcement.py decides what may come next; this workflow carries it out). Each step
writes to the parents through the case's letters activity, every letter redacted for its
addressee; each step with a charge posts it once through payments (`post_enforcement_charge`,
keyed by the workflow id and the step).

Arrears paid in full close enforcement at any point; an agreed repayment plan pauses it (kept, it
closes; broken, it resumes at the step it left); a caseworker may withdraw it. Caseworkers act
through validated updates: a refused request leaves nothing in history. Time runs on the case
calendar (`seconds_per_day`).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.case_messages import CaseNotice
    from activities.case_notifications import CaseNoticeActivities
    from activities.payments_messages import EnforcementChargeRequest, PostingOutcome
    from cms.search_attributes import ARREARS_PENCE, CASE_STAGE, ENFORCEMENT_STEP, NEEDS_CASEWORKER
    from domain import enforcement as rules
    from domain.money import format_pence
    from domain.rulesets import RuleSet, rules_for
    from domain.safeguarding import Viewer, redact_for_viewer
    from workflows.enforcement_messages import (
        ENFORCEMENT_CLOSED_STAGE,
        ENFORCEMENT_ENDED_SIGNAL,
        ENFORCEMENT_STAGE,
        ApprovalRequest,
        ApprovalView,
        ArrearsUpdate,
        EnforcementInput,
        EnforcementStatus,
        OutcomeRequest,
        PlanRequest,
        StepView,
        WithdrawRequest,
    )

_SERVICE_TIMEOUT = timedelta(minutes=2)
_SERVICE_RETRY = RetryPolicy(maximum_interval=timedelta(minutes=5))
# How each step may end by a caseworker's word (the rest end by time, payment or withdrawal).
_RECORDED_OUTCOMES: dict[str, tuple[str, ...]] = {
    **{step: (rules.INEFFECTIVE,) for step in (*rules.DEDUCTION_ORDERS, *rules.AFTER_LIABILITY_ORDER,
                                                *rules.COURT_SANCTIONS)},
    rules.LIABILITY_ORDER: (rules.GRANTED, rules.NOT_MADE),
    rules.REPAYMENT_PLAN: (rules.BROKEN,),
}


APPLIED_TO_COURT = "applied to the court"


@workflow.defn(name="EnforcementWorkflow")
class EnforcementWorkflow:
    @workflow.init
    def __init__(self, data: EnforcementInput) -> None:
        self._input = data
        self._started = workflow.now()
        self._day = timedelta(seconds=data.seconds_per_day)
        self._rules: RuleSet = rules_for(date.fromisoformat(data.today))
        self._status = EnforcementStatus(data.case_id, data.n, arrears_pence=data.arrears_pence,
                                         arrears_at_start_pence=data.arrears_pence)
        self._arrears_events: set[str] = set()
        self._outcome: OutcomeRequest | None = None
        self._plan: PlanRequest | None = None
        self._withdrawn: WithdrawRequest | None = None
        self._charged: set[str] = set()
        self._letters = 0
        self._memo: dict[str, object] = {}

    # --- main flow ------------------------------------------------------------------------

    @workflow.run
    async def run(self, data: EnforcementInput) -> EnforcementStatus:
        resume_at: str | None = None
        while not self._status.closed:
            step = resume_at or rules.next_step(self._records(), self._payer())
            resume_at = None
            if step is None:
                await self._nothing_left()
                continue
            if rules.needs_approval(step):
                waited = await self._approved(step)
                if waited == rules.PAUSED:
                    resume_at = await self._run_plan(step)
                if waited != rules.GRANTED:
                    continue
            outcome = await self._take(step)
            if outcome == rules.PAUSED:
                resume_at = await self._run_plan(step)
        self._publish(ENFORCEMENT_CLOSED_STAGE, "closed")
        if data.parent_workflow_id:
            await workflow.get_external_workflow_handle(data.parent_workflow_id).signal(ENFORCEMENT_ENDED_SIGNAL, data.n)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._status

    async def _take(self, step: str) -> str:
        """Opens `step`, carries it out, and returns how it ended."""
        view = self._open(step)
        if step == rules.CONTACT:
            await self._write(step, "We have not received a payment. Contact us within "
                              f"{self._rules.enforcement.days['put_right_after_contact']} days to arrange it.")
            self._ask_caseworker("call the paying parent about the missed payment")
            return await self._end(view, await self._wait(rules.put_right_by(self._today(), self._rules), rules.NOT_PUT_RIGHT))
        self._settle_caseworker()
        if step == rules.ARREARS_NOTICE:
            await self._write(step, "What happens next if the arrears are not paid: a deduction order or a court "
                              "application, with charges.")
            deadline = rules.pay_after_arrears_notice_by(self._today(), self._rules)
            return await self._end(view, await self._wait(deadline, rules.NOT_PUT_RIGHT))
        if step in rules.DEDUCTION_ORDERS:
            return await self._deduction_order(view)
        if step == rules.LIABILITY_ORDER:
            return await self._liability_order(view)
        await self._charge(view)
        await self._write(step, "A caseworker has approved this step.")
        return await self._end(view, await self._wait(None, ""))

    async def _deduction_order(self, view: StepView) -> str:
        means = self._input.means
        wanted = self._input.requested_per_period_pence or self._status.arrears_pence
        if view.step == rules.DEDUCTION_FROM_EARNINGS_ORDER:
            period = rules.earnings_deduction(means.net_income_per_period_pence, wanted, self._rules,
                                              means.other_deductions_per_period_pence)
            per_period = period.deduction_pence
            problem = "" if per_period else rules.affordability_problem(1, period.means)
            detail = (f"{format_pence(per_period)} a period; protected earnings "
                      f"{format_pence(period.means.protected_pence)}")
        elif view.step == rules.REGULAR_DEDUCTION_ORDER:
            ability = self._ability()
            per_period, problem = wanted, rules.affordability_problem(wanted, ability)
            detail = f"{format_pence(per_period)} a period"
        else:
            per_period, problem, detail = self._status.arrears_pence, "", "one lump sum"
        if problem:
            # Refused: the payer would fall below protected earnings; a caseworker decides.
            view.detail = f"refused: {problem}"
            self._ask_caseworker(f"{view.step} refused on ability to pay: {problem}")
            return await self._end(view, await self._wait(None, ""))
        view.detail = detail
        await self._charge(view)
        await self._write(view.step, f"A {view.step.replace('_', ' ')} has been made: {detail}.",
                          amount_pence=per_period, employer_instruction=view.step == rules.DEDUCTION_FROM_EARNINGS_ORDER)
        return await self._end(view, await self._wait(None, ""))

    async def _liability_order(self, view: StepView) -> str:
        """Notice of intention, then the application; the court's decision comes as a caseworker's
        update, and a caseworker is asked for it once the expected time has passed."""
        await self._write(view.step, "We intend to apply to the court for a liability order.")
        outcome = await self._wait(rules.liability_order_application_from(self._today(), self._rules), "")
        if outcome:
            return await self._end(view, outcome)
        view.detail = APPLIED_TO_COURT
        outcome = await self._wait(rules.liability_order_hearing_by(self._today(), self._rules), "")
        if not outcome:
            self._ask_caseworker("the court's decision on the liability order is overdue: record it")
            outcome = await self._wait(None, "")
        self._settle_caseworker()
        if outcome == rules.GRANTED:
            await self._charge(view)
            await self._write(view.step, "The court has made a liability order.")
        return await self._end(view, outcome)

    async def _run_plan(self, left_step: str) -> str | None:
        """Runs an agreed plan; returns the step to resume at (None: enforcement closed)."""
        plan = self._plan
        assert plan is not None
        view = self._open(rules.REPAYMENT_PLAN)
        view.detail = f"{format_pence(plan.amount_per_period_pence)} for {plan.periods} periods"
        await self._write(rules.REPAYMENT_PLAN, f"Repayment plan agreed: {view.detail}.",
                          amount_pence=plan.amount_per_period_pence)
        term_ends = self._today() + timedelta(days=plan.period_days * plan.periods)
        outcome = await self._wait(term_ends, "")
        if not outcome:
            outcome = rules.KEPT if self._status.arrears_pence == 0 else rules.BROKEN
        if outcome == rules.PAID_IN_FULL:
            outcome = rules.KEPT
        self._plan = None
        await self._end(view, outcome)
        if outcome == rules.BROKEN:
            return rules.after_plan(rules.RepaymentPlan(plan.amount_per_period_pence, plan.periods, left_step),
                                    outcome)
        return None

    async def _approved(self, step: str) -> str:
        """Waits for the approvals `step` needs: GRANTED once given, PAUSED if a repayment plan
        was agreed first, or the outcome that closed enforcement meanwhile."""
        self._status.pending_approval = step
        self._ask_caseworker(f"{step} needs approval")
        self._publish(ENFORCEMENT_STAGE, step)

        def approved() -> bool:
            return rules.approvals_complete(step, [self._approval(a) for a in self._status.approvals if a.step == step])

        await workflow.wait_condition(lambda: bool(self._closing()) or self._plan is not None or approved())
        self._status.pending_approval = ""
        self._remember()
        self._settle_caseworker()
        if self._closing():
            await self._close_without_step(step)
            return self._closing()
        return rules.GRANTED if approved() else rules.PAUSED

    async def _nothing_left(self) -> None:
        """No step may start: a caseworker decides (withdraw, a plan, or the arrears are paid)."""
        self._ask_caseworker("no further enforcement step is available")
        await workflow.wait_condition(lambda: self._closing() != "" or self._plan is not None)
        if self._plan is not None:
            resume = await self._run_plan(self._status.current_step)
            if resume is not None:
                self._ask_caseworker("the repayment plan was broken and no further step is available")
            return
        await self._close_without_step(self._status.current_step)

    async def _close_without_step(self, step: str) -> None:
        """Enforcement ends between steps (paid or withdrawn while nothing was open)."""
        self._status.closed, self._status.ended_because = True, self._closing()
        self._settle_caseworker()
        await self._write(step, self._closing_text(self._closing()))

    # --- waiting --------------------------------------------------------------------------

    def _closing(self) -> str:
        """The outcome that ends enforcement now, if any."""
        if self._withdrawn is not None:
            return rules.WITHDRAWN
        if self._status.arrears_pence == 0:
            return rules.PAID_IN_FULL
        return ""

    async def _wait(self, deadline: date | None, on_time_out: str) -> str:
        """Waits until the open step ends: paid, withdrawn, a plan agreed, an outcome recorded,
        or (with a deadline) the case-calendar day passes. Returns the outcome ("" when the
        deadline passed and `on_time_out` is "")."""
        step = self._status.current_step

        def ended() -> bool:
            plan_pauses = self._plan is not None and step != rules.REPAYMENT_PLAN
            recorded = self._outcome is not None and self._outcome.step == step
            return bool(self._closing()) or plan_pauses or recorded

        timeout = None
        if deadline is not None:
            timeout = max((self._instant(deadline) - workflow.now()).total_seconds(), 0.001)
        try:
            await workflow.wait_condition(ended, timeout=timeout)
        except TimeoutError:
            return on_time_out
        if self._closing():
            return self._closing()
        if self._outcome is not None and self._outcome.step == step:
            outcome, self._outcome = self._outcome.outcome, None
            return outcome
        return rules.PAUSED

    async def _end(self, view: StepView, outcome: str) -> str:
        """Closes the open step with its outcome; a closing outcome ends enforcement."""
        view.outcome, view.ended_on = outcome, self._today().isoformat()
        if outcome in rules.CLOSING_OUTCOMES:
            self._status.closed, self._status.ended_because = True, outcome
            self._settle_caseworker()
            await self._write(view.step, self._closing_text(outcome),
                              employer_instruction=view.step == rules.DEDUCTION_FROM_EARNINGS_ORDER)
        return outcome

    def _closing_text(self, outcome: str) -> str:
        if outcome == rules.WITHDRAWN:
            return "Enforcement has stopped."
        return "The arrears have been paid: enforcement has ended."

    # --- caseworker updates -----------------------------------------------------------------

    @workflow.update
    def approve(self, request: ApprovalRequest) -> EnforcementStatus:
        self._status.approvals.append(ApprovalView(request.step, request.staff_id, request.role, request.reason))
        return self._status

    @approve.validator
    def _validate_approval(self, request: ApprovalRequest) -> None:
        pending = self._status.pending_approval or None
        given = [self._approval(a) for a in self._status.approvals if a.step == pending]
        self._refuse_if(rules.approval_problem(self._approval(request), pending, given))

    @staticmethod
    def _approval(request: ApprovalRequest | ApprovalView) -> rules.Approval:
        return rules.Approval(request.step, request.staff_id, request.role, request.reason)

    @workflow.update
    def agree_plan(self, request: PlanRequest) -> EnforcementStatus:
        self._plan = request
        return self._status

    @agree_plan.validator
    def _validate_plan(self, request: PlanRequest) -> None:
        self._refuse_if(self._staff_problem(request.staff_id, request.reason) or self._open_problem())
        if self._plan is not None:
            self._refuse_if("a repayment plan is already running")
        if request.period_days <= 0:
            self._refuse_if("a repayment plan needs a period of at least one day")
        plan = rules.RepaymentPlan(request.amount_per_period_pence, request.periods, self._status.current_step)
        self._refuse_if(rules.repayment_plan_problem(plan, self._status.arrears_pence, self._ability()))

    @workflow.update
    def record_outcome(self, request: OutcomeRequest) -> EnforcementStatus:
        self._outcome = request
        return self._status

    @record_outcome.validator
    def _validate_outcome(self, request: OutcomeRequest) -> None:
        self._refuse_if(self._staff_problem(request.staff_id, request.reason) or self._open_problem())
        current = self._status.current_step
        open_step = current if self._status.steps and not self._status.steps[-1].outcome else ""
        if request.step != open_step:
            self._refuse_if(f"{request.step} is not open; the open step is {open_step or 'none'}")
        if open_step == rules.LIABILITY_ORDER and self._status.steps[-1].detail != APPLIED_TO_COURT:
            self._refuse_if("the liability order has not been applied for yet: the notice period is running")
        allowed = _RECORDED_OUTCOMES.get(open_step, ())
        if request.outcome not in allowed:
            self._refuse_if(f"{open_step} cannot be recorded as {request.outcome!r}"
                            + (f" (allowed: {', '.join(allowed)})" if allowed else ""))
        if self._outcome is not None:
            self._refuse_if("an outcome for this step is already being recorded")

    @workflow.update
    def withdraw(self, request: WithdrawRequest) -> EnforcementStatus:
        self._withdrawn = request
        return self._status

    @withdraw.validator
    def _validate_withdraw(self, request: WithdrawRequest) -> None:
        self._refuse_if(self._staff_problem(request.staff_id, request.reason) or self._open_problem())

    @workflow.signal
    def arrears_changed(self, update: ArrearsUpdate) -> None:
        """Arrears as payments reports them; a repeated event is dropped."""
        if update.event_id in self._arrears_events or type(update.arrears_pence) is not int \
                or update.arrears_pence < 0:
            return
        self._arrears_events.add(update.event_id)
        self._status.arrears_pence = update.arrears_pence
        self._publish_arrears()

    @workflow.query
    def status(self) -> EnforcementStatus:
        return self._status

    def _open_problem(self) -> str:
        return "enforcement is closed" if self._status.closed else ""

    @staticmethod
    def _staff_problem(staff_id: str, reason: str) -> str:
        if not reason.strip():
            return "a reason is required"
        if not staff_id.strip():
            return "the caseworker's staff id is required"
        return ""

    @staticmethod
    def _refuse_if(problem: str) -> None:
        if problem:
            raise ApplicationError(problem, type="InvalidArgument")

    # --- effects ----------------------------------------------------------------------------

    async def _charge(self, view: StepView) -> None:
        """Posts the step's charge once: the key is the workflow's and the step's, so a retried
        activity, a replay or a resumed step finds the first posting."""
        amount = rules.charge_pence(view.step, self._rules)
        if not amount or view.step in self._charged:
            return
        self._charged.add(view.step)
        request = EnforcementChargeRequest(self._input.case_id, view.step, self._today().isoformat(),
                                           f"charge-{view.step}", decision_ref=workflow.info().workflow_id)
        await workflow.execute_activity("post_enforcement_charge", request, result_type=PostingOutcome,
                                        task_queue=self._input.payments_task_queue,
                                        start_to_close_timeout=_SERVICE_TIMEOUT, retry_policy=_SERVICE_RETRY)
        view.charge_pence = amount
        self._status.charges_posted_pence += amount
        self._remember()

    async def _write(self, step: str, text: str, amount_pence: int = 0, employer_instruction: bool = False) -> None:
        """The step's letters: to the paying parent, to the receiving parent, and for an earnings
        order the employer's instruction. Every letter is redacted for its addressee."""
        data = self._input
        self._letters += 1
        about_payer = {"employer": data.means.employer} if data.means.employer else {}
        facts = {"step": step, "text": text, "arrears_pence": str(self._status.arrears_pence),
                 "amount_pence": str(amount_pence), **about_payer}
        addressees = [(data.paying_parent_id, f"enforcement_{step}")]
        addressees.append((data.receiving_parent_id, "enforcement_update"))
        if employer_instruction:
            addressees.append((f"{data.paying_parent_id}:employer", "deduction_from_earnings_instruction"))
        notices = [
            CaseNotice(f"{workflow.info().workflow_id}/letter-{self._letters}/{recipient}", data.case_id, recipient,
                       template, redact_for_viewer(dict(facts), data.paying_parent_id, Viewer(party_id=recipient)))
            for recipient, template in addressees
        ]
        try:
            await workflow.execute_activity_method(CaseNoticeActivities.send_case_notices, notices,
                                                   start_to_close_timeout=_SERVICE_TIMEOUT,
                                                   retry_policy=_SERVICE_RETRY)
        except ActivityError:
            # Only a permanent refusal ends the retries (e.g. notifications has no such letter):
            # enforcement goes on, and a caseworker checks and resends the letter.
            self._ask_caseworker(f"the {step} letters were refused by notifications: check and resend")

    # --- state, calendar, search attributes --------------------------------------------------

    def _open(self, step: str) -> StepView:
        view = StepView(step, self._today().isoformat())
        self._status.steps.append(view)
        self._status.current_step = step
        self._publish(ENFORCEMENT_STAGE, step)
        return view

    def _records(self) -> list[rules.StepRecord]:
        return [rules.StepRecord(view.step, view.outcome) for view in self._status.steps
                if view.step in rules.LADDER]

    def _payer(self) -> rules.Payer:
        means = self._input.means
        return rules.Payer(employed=means.employed, has_bank_account=means.has_bank_account)

    def _ability(self) -> rules.AbilityToPay:
        means = self._input.means
        return rules.ability_to_pay(means.net_income_per_period_pence, means.other_deductions_per_period_pence,
                                    self._rules)

    def _ask_caseworker(self, reason: str) -> None:
        self._status.needs_caseworker, self._status.caseworker_reason = True, reason
        self._publish(ENFORCEMENT_STAGE, self._status.current_step)

    def _settle_caseworker(self) -> None:
        self._status.needs_caseworker, self._status.caseworker_reason = False, ""

    def _today(self) -> date:
        elapsed = (workflow.now() - self._started).total_seconds()
        return date.fromisoformat(self._input.today) + timedelta(days=int(elapsed // self._day.total_seconds()))

    def _instant(self, day: date) -> datetime:
        return self._started + (day - date.fromisoformat(self._input.today)).days * self._day

    def _publish(self, stage: str, step: str) -> None:
        if not self._input.publish_search_attributes:
            return
        workflow.upsert_search_attributes([
            CASE_STAGE.value_set(stage), ENFORCEMENT_STEP.value_set(step),
            NEEDS_CASEWORKER.value_set(self._status.needs_caseworker),
            ARREARS_PENCE.value_set(self._status.arrears_pence),
        ])
        self._remember()

    def _remember(self) -> None:
        """The figures operations count (services/case_api/enforcement_metrics.py), in the memo:
        they change a few times a year, and a listing reads them without querying each workflow."""
        if not self._input.publish_search_attributes:
            return
        memo = {"arrears_at_start_pence": self._status.arrears_at_start_pence,
                "charges_posted_pence": self._status.charges_posted_pence,
                "pending_approval": self._status.pending_approval}
        if memo != self._memo:
            self._memo = memo
            workflow.upsert_memo(memo)

    def _publish_arrears(self) -> None:
        if self._input.publish_search_attributes:
            workflow.upsert_search_attributes([ARREARS_PENCE.value_set(self._status.arrears_pence)])

